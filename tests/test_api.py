"""The REST API, served by a real `backbone serve` on the loopback address: the
OpenAPI document and its offline docs (in Chromium), one error envelope on every
route, the same answer through the CLI, the Python API and the API, the remote
CLI (`backbone --server`), a partner's upload, a job, and agreements as ODCS."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backbone import Warehouse
from tests.demo_build import DemoBuild, copy_demo
from tests.test_web import CHROMIUM, REPORTS, Site, demo_passwords, serving

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]

USERS = (
    "steward",
    "c02-eastside.uploader",
    "d01-northfield.analyst",
    "f01-unitedfund.viewer",
)
LEAKS = re.compile(r"Traceback|SELECT |duckdb|/tmp/|\.py\b|File \"", re.IGNORECASE)


class Api:
    def __init__(self, site: Site, tokens: dict[str, str]) -> None:
        self.site, self.tokens = site, tokens
        self.url = site.url + "/api/v1"

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=300)

    def cli(self, *args: str, user: str = "steward", remote: bool = False) -> str:
        """`backbone` as ``user`` (by token, in the environment), on the folder or
        (``remote``) against the server; its standard output."""
        env = {
            **os.environ,
            "BACKBONE_TOKEN": self.tokens[user],
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
        env.pop("BACKBONE_WAREHOUSE", None)
        where = ["--server", self.site.url] if remote else []
        local = [] if remote else ["--warehouse", str(self.site.warehouse)]
        done = subprocess.run(
            [sys.executable, "-m", "backbone", *where, *args, *local],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stdout


def _issue_tokens(warehouse: Path) -> dict[str, str]:
    steward = (warehouse.parent / "steward.token").read_text().strip()
    tokens = {"steward": steward}
    with Warehouse.open(warehouse) as wh:
        me = wh.sign_in_token(steward)
        for user in USERS[1:]:
            with wh.session(me) as s:
                tokens[user] = wh.users.issue_token(s, user, days=1).token
    return tokens


@pytest.fixture(scope="module")
def api(
    demo_build: DemoBuild, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    out = copy_demo(demo_build, tmp_path_factory.mktemp("api") / "demo")
    tokens = _issue_tokens(out / "warehouse")
    with serving(out, demo_passwords(demo_build)) as site:
        yield Api(site, tokens)


def _envelope(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), (
        response.status_code,
        response.text[:300],
    )
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "detail"}, body
    assert body["error"]["message"], body
    assert not LEAKS.search(response.text), response.text
    return dict(body["error"])


# --- the document and its docs ---------------------------------------------------


def test_the_openapi_document_describes_every_route_with_its_errors(api: Api) -> None:
    doc = httpx.get(api.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/submissions",
        "/submissions/{submission_id}",
        "/submissions/{submission_id}/quarantine",
        "/rows/{entity}",
        "/counts/{entity}",
        "/agreements",
        "/agreements/{agreement_id}/diff",
        "/agreements/{agreement_id}/odcs",
        "/requests/{request_id}/reviews",
        "/disclosures",
        "/audit/verify",
        "/crosswalk",
        "/jobs",
        "/jobs/{job_id}",
    ):
        assert path in paths, sorted(paths)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in paths.items():
        for method, op in operations.items():
            for status in ("401", "403", "404", "409", "413", "422"):
                ref = op["responses"][status]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/Error"}, (path, method)
    # the answers are described by the stage's own types
    release = doc["components"]["schemas"]["Release"]
    assert {"release_id", "table", "cells", "suppressed"} <= set(release["properties"])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_interactive_docs_load_in_a_browser_from_this_server_only(
    api: Api,
) -> None:
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(api.site.url) or r.url.startswith("data:")
                    else elsewhere.append(r.url)
                ),
            )
            page.goto(api.url + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            titles = page.locator(".opblock-summary-path").all_inner_texts()
            REPORTS.mkdir(exist_ok=True)
            page.screenshot(path=str(REPORTS / "api-docs.png"), full_page=False)
        finally:
            browser.close()
    assert elsewhere == []
    assert any("/counts/" in t for t in titles), titles


# --- errors ------------------------------------------------------------------------


def _filled(path: str, value: str) -> str:
    return re.sub(r"{\w+}", value, path)


def test_every_route_answers_every_error_in_one_envelope(api: Api) -> None:
    doc = httpx.get(api.url + "/openapi.json").json()
    seen: dict[int, int] = {}
    with (
        api.client(None) as nobody,
        api.client("c02-eastside.uploader") as uploader,
        httpx.Client(
            base_url=api.url,
            headers={"Authorization": "Bearer bbt_000000000000_wrong"},
            timeout=300,
        ) as forged,
    ):
        for path, operations in doc["paths"].items():
            for method in operations:
                url = _filled(path, "1")
                for client, expected in ((nobody, 401), (forged, 401)):
                    r = client.request(method.upper(), url)
                    assert r.status_code == expected, (method, path, r.text)
                    _envelope(r)
                # a wrong role, then nonsense in every parameter
                for value in ("1", "nope", "..%2F..%2Fbackbone.toml", "1%27%3B--"):
                    r = uploader.request(
                        method.upper(),
                        _filled(path, value),
                        params={"purpose": "nope", "v1": "x", "partner": value},
                        json={"kind": value, "decision": value}
                        if method == "post"
                        else None,
                    )
                    if r.status_code < 400:
                        continue  # the uploader may read its own (the list of its files)
                    seen[r.status_code] = seen.get(r.status_code, 0) + 1
                    assert r.status_code in (400, 403, 404, 409, 422), (
                        method, path, value, r.status_code, r.text,
                    )  # fmt: skip
                    _envelope(r)
        _envelope(uploader.get("/no-such-route"))
        assert uploader.get("/no-such-route").status_code == 404
        r = uploader.delete("/submissions")
        assert r.status_code == 405
        _envelope(r)
    assert {403, 404, 422} <= set(seen), seen


def test_a_request_larger_than_the_limit_is_refused_before_it_is_read(
    api: Api,
) -> None:
    port = int(api.site.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            b"POST /api/v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + api.tokens["steward"].encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 99000000000\r\n\r\n"
        )
        answer = ""
        while "}}" not in answer:  # the head and the envelope, in as many reads
            part = s.recv(65536).decode()
            if not part:
                break
            answer += part
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"code":"too_large"' in answer


# --- the same answer through every door ----------------------------------------


def _audit_since(warehouse: Path, seq: int) -> list[tuple[str, str]]:
    with Warehouse.open(warehouse, read_only=True) as wh:
        return [
            (a, w)
            for a, w in wh._con.execute(
                "SELECT json_extract_string(entry, '$.action'), "
                "json_extract_string(entry, '$.what') FROM gov.audit_log "
                "WHERE seq > ? ORDER BY seq",
                [seq],
            ).fetchall()
        ]


def _last_seq(warehouse: Path) -> int:
    with Warehouse.open(warehouse, read_only=True) as wh:
        return int(wh._con.execute("SELECT max(seq) FROM gov.audit_log").fetchone()[0])


def test_the_same_count_through_the_cli_the_python_api_and_the_rest_api(
    api: Api,
) -> None:
    warehouse = api.site.warehouse
    before = _last_seq(warehouse)
    printed = api.cli(
        "count", "enrollment", "--purpose", "program_evaluation", "--by", "school_year"
    )
    with Warehouse.open(warehouse) as wh:
        access = wh.access(
            wh.sign_in_token(api.tokens["steward"]), "program_evaluation"
        )
        python = access.count("enrollment", ["school_year"])
    with api.client("steward") as c:
        rest = c.get(
            "/counts/enrollment",
            params={"purpose": "program_evaluation", "by": "school_year"},
        ).json()
    cells = {r["school_year"]: r["persons"] for r in rest["table"]["rows"]}
    assert cells == dict(
        zip(
            python.table.column("school_year").to_pylist(),
            python.table.column("persons").to_pylist(),
            strict=True,
        )
    )
    for year, persons in cells.items():  # the CLI printed the same cells
        assert re.search(rf"│ {re.escape(year)}\s+│\s+{persons}\s+│", printed), printed
    releases = [w for a, w in _audit_since(warehouse, before) if a == "release"]
    assert len(releases) == 3, releases  # one audit entry per ask
    first = int(re.search(r"release (\d+)", releases[0]).group(1))  # type: ignore[union-attr]
    # the second and third asks are the first release again, with its decisions
    assert all(f'"same_as":{first}' in w for w in releases[1:]), releases


def test_the_same_rows_through_the_python_api_and_the_rest_api_pages(
    api: Api,
) -> None:
    warehouse = api.site.warehouse
    with Warehouse.open(warehouse) as wh:
        access = wh.access(
            wh.sign_in_token(api.tokens["d01-northfield.analyst"]), "early_warning"
        )
        # rows sent to a program are an extract: what exporting is permitted
        python = access.rows("enrollment", export_to="a test").table.to_pylist()
    before = _last_seq(warehouse)
    got: list[dict[str, Any]] = []
    cursor = None
    with api.client("d01-northfield.analyst") as c:
        while True:
            params: dict[str, Any] = {"purpose": "early_warning", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/rows/enrollment", params=params).json()
            assert page["total_rows"] == len(python)
            got += page["table"]["rows"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert len(got) == len(python) > 1000
    # every row once, none skipped or repeated across the pages
    assert sorted(json.dumps(r, sort_keys=True, default=str) for r in python) == sorted(
        json.dumps(r, sort_keys=True, default=str) for r in got
    )
    pages = [w for a, w in _audit_since(warehouse, before) if a == "export"]
    assert len(pages) == -(-len(python) // 1000)  # one entry per page asked
    assert pages[0] == f"rows of enrollment (rows 1 to 1,000 of {len(python):,})"
    # a change between pages: the next page is refused rather than shifted
    with api.client("d01-northfield.analyst") as c:
        first = c.get(
            "/rows/enrollment", params={"purpose": "early_warning", "limit": 10}
        ).json()
        api.cli("user", "token", "d03-lakeview.analyst", "--days", "1")
        r = c.get(
            "/rows/enrollment",
            params={
                "purpose": "early_warning",
                "limit": 10,
                "cursor": first["next_cursor"],
            },
        )
        assert r.status_code == 409
        assert "start again" in _envelope(r)["message"]


def test_the_cli_against_the_server_prints_what_it_prints_locally(api: Api) -> None:
    for args in (
        # rows for a program (CSV): an extract on both
        (
            "rows",
            "enrollment",
            "--purpose",
            "early_warning",
            "--limit",
            "7",
            "--format",
            "csv",
        ),
        ("indicators", "roster", "--limit", "9", "--format", "csv"),
        ("submissions", "show", "3"),
        ("submissions", "list"),
    ):
        local = api.cli(*args, user="d01-northfield.analyst")
        remote = api.cli(*args, user="d01-northfield.analyst", remote=True)
        if args[0] == "rows":  # each release in its own random order: 7 rows of it
            assert local.splitlines()[0] == remote.splitlines()[0], args
            assert len(local.splitlines()) == len(remote.splitlines()) == 8, args
            continue
        assert local == remote, args
    for args in (
        ("count", "enrollment", "--purpose", "early_warning", "--by", "school_year"),
        ("indicators", "count", "--by", "tier"),
        # prepared by the server away from its requests (202), then answered
        ("outcomes", "scorecard"),
    ):
        local = api.cli(*args, user="d01-northfield.analyst")
        remote = api.cli(*args, user="d01-northfield.analyst", remote=True)
        assert "Release" in local or "students" in local, local
        # the same cells; only a release's number is its own
        assert re.sub(r"Release \d+", "Release N", local) == re.sub(
            r"Release \d+", "Release N", remote
        ), args


def test_a_command_that_needs_the_folder_says_so_against_a_server(api: Api) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backbone", "--server", api.site.url, "info"],
        env={**os.environ, "BACKBONE_TOKEN": api.tokens["steward"]},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "against a server (--server) run one of: submit" in done.stderr
    assert "Traceback" not in done.stderr


# --- a partner's systems ----------------------------------------------------------


def test_a_partner_submits_from_its_own_machine_and_reads_its_report(
    api: Api, tmp_path: Path
) -> None:
    latest = sorted(
        (api.site.community / "partners" / "c02-eastside").glob("roster_*")
    )[-1]
    rows = latest.read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    broken = rows[1].split(",")
    broken[1] = ""  # a required field left empty: that row is quarantined
    sent = tmp_path / latest.name
    sent.write_text("\n".join([rows[0], ",".join(broken), *rows[2:-1]]) + "\n", "utf-8")
    printed = api.cli(
        "submit", "--partner", "c02-eastside", "--feed", "rosters", str(sent),
        user="c02-eastside.uploader", remote=True,
    )  # fmt: skip
    assert "loaded" in printed, printed
    with api.client("c02-eastside.uploader") as c:
        mine = c.get("/submissions").json()
        assert {s["partner_id"] for s in mine} == {"c02-eastside"}
        newest = mine[0]
        assert newest["file_name"] == latest.name
        view = c.get(f"/submissions/{newest['submission_id']}").json()
        report = view["report"]
        assert (
            report["rows_read"]
            == len(rows) - 2
            == (
                report["rows_loaded"]
                + report["rows_quarantined"]
                + report["rows_skipped"]
            )
        )
        # another partner's feed is refused, in the envelope
        with sent.open("rb") as f:
            r = c.post(
                "/submissions",
                data={"partner": "c03-stepup", "feed": "rosters"},
                files={"file": (sent.name, f)},
            )
        assert r.status_code == 403, r.text
        _envelope(r)
    assert header  # the file had its header


def test_a_job_is_started_with_post_and_followed_to_its_end(api: Api) -> None:
    with api.client("steward") as c:
        started = c.post("/jobs", json={"kind": "indicators"})
        assert started.status_code == 202, started.text
        where = started.headers["location"]
        assert where == f"/api/v1/jobs/{started.json()['job_id']}"
        deadline = time.monotonic() + 600
        while True:
            job = c.get(where.removeprefix("/api/v1")).json()
            if job["state"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert job["state"] == "done", job
        assert job["progress"], job
        # another user's job is not theirs to see
    with api.client("c02-eastside.uploader") as other:
        r = other.get(where.removeprefix("/api/v1"))
        assert r.status_code == 404
        _envelope(r)


# --- agreements as open data contracts -------------------------------------------


def test_agreements_export_as_odcs_documents_valid_against_the_standard(
    api: Api, tmp_path: Path
) -> None:
    from importlib import resources

    import jsonschema
    import yaml

    printed = api.cli(
        "agreement", "export", "DSA-D01", "--format", "odcs", "--out", str(tmp_path),
        user="d01-northfield.analyst", remote=True,
    )  # fmt: skip
    files = sorted(tmp_path.glob("*.odcs.yaml"))
    assert files and all(str(f) in printed for f in files)
    # the standard's JSON schema, as its maintainers ship it with their model
    schema = json.loads(
        (resources.files("open_data_contract_standard") / "schema.json").read_text()
    )
    standard = jsonschema.Draft201909Validator(schema)
    for f in files:
        document = yaml.safe_load(f.read_text("utf-8"))
        assert not list(standard.iter_errors(document)), f
        assert document["apiVersion"].startswith("v3.")
        assert document["kind"] == "DataContract"
        props = {p["property"]: p["value"] for p in document["customProperties"]}
        assert props["provider"] == "d01-northfield"
        assert props["purposes"] and props["recipients"] and props["publication"]
        fields = document["schema"][0]["properties"]
        assert all(p["classification"] for p in fields)
    with api.client("f01-unitedfund.viewer") as funder:  # not a party to it
        r = funder.get("/agreements/DSA-D01/odcs")
        assert r.status_code in (403, 404)
        _envelope(r)


def test_a_revoked_token_is_refused_at_its_next_request(api: Api) -> None:
    issued = api.cli("user", "token", "d02-riverside.analyst", "--days", "1").strip()
    token_id = issued.split("_")[1]
    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {issued}"}
    ) as c:
        assert c.get("/submissions").status_code == 200
        api.cli("user", "revoke", token_id)
        r = c.get("/submissions")
        assert r.status_code == 401
        assert "revoked" in _envelope(r)["message"]


def test_a_token_issued_with_a_password_alone_is_no_second_factor(api: Api) -> None:
    """The agreements ask a second factor of the district's users: a token its
    user issued with a password alone opens nothing on the API (one a steward
    admin issued does)."""
    user = "d01-northfield.analyst"
    done = subprocess.run(
        [sys.executable, "-m", "backbone", "user", "token", user, "--days", "1",
         "--user", user, "--warehouse", str(api.site.warehouse)],
        env={**os.environ, "BACKBONE_PASSWORD": api.site.passwords[user]},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {done.stdout.strip()}"}
    ) as c:
        r = c.get("/submissions")
    assert r.status_code == 401
    assert "second factor" in _envelope(r)["message"]
    with api.client("d01-northfield.analyst") as c:  # issued by the steward
        assert c.get("/submissions").status_code == 200
