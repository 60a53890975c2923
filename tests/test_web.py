"""The web door, served by a real `backbone serve` process on the loopback address,
driven over HTTP and by Debian's Chromium through Playwright: sign-in, CSRF, the
throttle, security headers, pages by role, and a partner's upload with a planted
error. Screenshots of each role's main page go to reports/."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from backbone import Warehouse
from tests.demo_build import DemoBuild, copy_demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPORTS = Path(__file__).resolve().parent.parent / "reports"
SIGN_IN = re.compile(r"^\s+(\S+) / (\S+)\s+\((.+)\)$", re.MULTILINE)


@dataclass(frozen=True)
class Site:
    url: str
    warehouse: Path
    community: Path
    passwords: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(out: Path, passwords: dict[str, str]) -> Iterator[Site]:
    """`backbone serve` on the demo folder ``out``'s warehouse, on a free loopback
    port, until the block ends (then it must have logged no traceback)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "backbone", "serve", "--warehouse",
         str(out / "warehouse"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/sign-in", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, "the server stopped"
                time.sleep(0.1)
        yield Site(url, out / "warehouse", out / "community", passwords)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
        assert "Traceback" not in errors, errors[-3000:]


def demo_passwords(build: DemoBuild) -> dict[str, str]:
    return {user: pw for user, pw, _ in SIGN_IN.findall(build.output)}


@pytest.fixture(scope="module")
def site(
    demo_build: DemoBuild, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    out = copy_demo(demo_build, tmp_path_factory.mktemp("web") / "demo")
    passwords = demo_passwords(demo_build)
    assert {"steward", "c02-eastside.uploader"} <= set(passwords), demo_build.output
    with serving(out, passwords) as site:
        yield site


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _password(client: httpx.Client, user: str, password: str) -> httpx.Response:
    """The sign-in form fetched and posted with ``user``'s password."""
    form = client.get("/sign-in")
    return client.post(
        "/sign-in", data={"csrf": _csrf(form.text), "user": user, "password": password}
    )


def guesser(site: Site, address: str, **options: Any) -> httpx.Client:
    """A client whose requests come from ``address`` (another loopback address):
    a test's deliberate failures slow that source, not every other test's.
    Linux answers on all of 127.0.0.0/8; elsewhere add the address to the
    loopback interface first (macOS: ``sudo ifconfig lo0 alias 127.0.0.2``)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=site.url, timeout=60, transport=transport, **options)


def _signed_in(site: Site, user: str) -> httpx.Client:
    client = httpx.Client(base_url=site.url, follow_redirects=True, timeout=60)
    try:
        return _sign_in(client, site, user)
    except BaseException:
        client.close()
        raise


def _sign_in(client: httpx.Client, site: Site, user: str) -> httpx.Client:
    done = _password(client, user, site.passwords[user])
    if str(done.url).endswith("/sign-in/setup"):  # an agreement asks for a 2nd factor
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', done.text)
        assert secret, done.text[:500]
        SECRETS[user] = secret.group(1)
        TAKEN.pop(user, None)  # a new app: no code of it taken yet
        done = client.post(
            "/sign-in/setup",
            data={"csrf": _csrf(done.text), "code": fresh_code(user)},
        )
    elif str(done.url).endswith("/sign-in/code"):
        done = client.post(
            "/sign-in/code",
            data={"csrf": _csrf(done.text), "code": fresh_code(user)},
        )
    assert done.status_code == 200 and "/home" in str(done.url), done.text[:500]
    return client


SECRETS: dict[str, str] = {}  # second factors set up during the module's tests
TAKEN: dict[str, int] = {}  # each user's last code step taken (a code works once)


def fresh_code(user: str) -> str:
    """A code of ``user``'s app the warehouse has not taken yet, the oldest it
    still accepts (the step before the current one, unless that ends in a moment;
    then the current, then the next), so that a user signing in again soon seldom
    waits for a new step."""
    app = pyotp.TOTP(SECRETS[user])
    while True:
        current = app.timecode(datetime.now())
        oldest = current - 1 if 30 - time.time() % 30 > 3 else current
        step = max(oldest, TAKEN.get(user, -1) + 1)
        if step <= current + 1:
            break
        time.sleep(1)
    TAKEN[user] = step
    return str(app.generate_otp(step))


def _ready(client: httpx.Client, path: str, **params: str) -> httpx.Response:
    """``path`` once its release is ready: a costly one is prepared away from the
    pages (202, "Preparing ...") the first time its audience asks today."""
    deadline = time.monotonic() + 300
    while (answer := client.get(path, params=params)).status_code == 202:
        assert "data-reload-when" in answer.text, answer.text[:500]
        assert time.monotonic() < deadline, f"{path} was not ready in 300 s"
        time.sleep(1)
    return answer


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it stands (axe as
    the package ships it: nothing fetched)."""
    from axe_playwright_python.sync_playwright import Axe

    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _visit(page: Any, url: str) -> None:
    """Open ``url`` in the browser and wait while it prepares (it reloads itself
    once its release is ready)."""
    page.goto(url)
    page.wait_for_selector("[data-reload-when]", state="detached", timeout=300_000)
    page.wait_for_load_state()


def _browser_sign_in(page: Any, site: Site, user: str) -> None:
    """Sign in as a person would: password, then the app's code (setting the
    second factor up first when it is the user's first time)."""
    page.goto(site.url + "/sign-in")
    page.fill("#user", user)
    page.fill("#password", site.passwords[user])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if page.url.endswith("/sign-in/setup"):
        SECRETS[user] = page.inner_text("#totp-secret").strip()
        TAKEN.pop(user, None)  # a new app: no code of it taken yet
    if "/sign-in/" in page.url:
        page.fill("#code", fresh_code(user))
        page.click("main button[type=submit]")
    page.wait_for_url(re.compile(".*/home$"))


def test_every_page_is_locked_down_by_headers_and_sign_in(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=60) as anonymous:
        page = anonymous.get("/sign-in")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert (
            "unsafe-inline" not in csp and page.headers["cache-control"] == "no-store"
        )
        assert "<script>" not in page.text  # no inline script anywhere
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        # nothing but the sign-in form without signing in
        for path in (
            "/home",
            "/dashboard",
            "/submissions",
            "/submissions/1",
            "/upload",
        ):
            assert anonymous.get(path).headers["location"] == "/sign-in"
        # a form without the session's CSRF token is refused, password unchecked
        refused = anonymous.post(
            "/sign-in", data={"csrf": "forged", "user": "steward", "password": "x"}
        )
        assert refused.status_code == 403 and "Traceback" not in refused.text


def test_wrong_passwords_slow_then_lock_out_and_every_attempt_is_audited(
    site: Site,
) -> None:
    user = "steward.analyst"

    def guess(_: int) -> httpx.Response:
        with guesser(site, "127.0.0.2") as client:
            return _password(client, user, "guess")

    with ThreadPoolExecutor(4) as pool:  # in parallel: no more guesses for it
        said = [answer.text for answer in pool.map(guess, range(8))]
    assert any("too many failed sign-ins" in t for t in said)
    with guesser(site, "127.0.0.2") as client:
        for _ in range(6):  # guessing on, each after the wait it is told
            wait = re.search(r"try again in (\d+) s", said[-1])
            if "locked until" in said[-1]:
                break
            time.sleep(int(wait.group(1)) if wait else 0)
            said.append(_password(client, user, "guess").text)
        assert "locked until" in said[-1], said[-1]
        # the right password is refused while the user is locked out
        locked = _password(client, user, site.passwords[user])
        assert locked.status_code == 401 and "locked until" in locked.text
    from backbone import Warehouse

    with Warehouse.open(site.warehouse, read_only=True) as wh:
        entries = [
            r[0] for r in wh._con.execute("SELECT entry FROM gov.audit_log").fetchall()
        ]
    attempts = [e for e in entries if '"login"' in e and user in e]
    assert len(attempts) >= 9, attempts
    # attempts are checked one at a time: parallel requests cannot all slip in
    # before the lockout
    assert 3 <= sum("wrong password" in e for e in attempts) <= 5, attempts
    assert all('"from":"ip:127.0.0.2"' in e for e in attempts), attempts
    # the guesser's address was slowed, not everyone's: another user from
    # another address signs in at once
    _signed_in(site, "steward").close()
    # unlocked again (a steward admin's step), for the other tests of this site
    with Warehouse.open(site.warehouse) as wh, wh.session(wh.users.get("steward")) as s:
        assert wh.users.unlock(s, user)


def test_a_partner_sees_its_own_submissions_only_even_by_a_changed_id(
    site: Site,
) -> None:
    client = _signed_in(site, "c02-eastside.uploader")
    with contextlib.closing(client):
        listed = client.get("/submissions")
        assert listed.status_code == 200
        ids = [int(i) for i in re.findall(r'href="/submissions/(\d+)"', listed.text)]
        assert ids and "c02-eastside" in listed.text
        assert "d01-northfield" not in listed.text
        own = client.get(f"/submissions/{ids[0]}")
        assert own.status_code == 200 and "Validation report" in own.text
        others = [i for i in range(1, max(ids) + 5) if i not in ids]
        for other in others[:5]:
            answer = client.get(f"/submissions/{other}")
            assert answer.status_code in (403, 404), answer.text[:300]
            assert "Traceback" not in answer.text and "SELECT" not in answer.text
        assert client.get("/dashboard").status_code == 403  # the steward's page


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"
)
def test_in_a_browser_a_steward_reads_the_dashboard_and_a_partner_fixes_a_quarantined_row(
    site: Site, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    REPORTS.mkdir(exist_ok=True)
    roster = sorted(
        (site.community / "partners" / "c02-eastside").glob("roster_*.csv")
    )[-1]
    lines = roster.read_text(encoding="utf-8").splitlines()
    planted = lines[1].split(",")
    planted[3] = "13/45/2010"  # BIRTHDATE: no such date
    lines[1] = ",".join(planted)
    bad = tmp_path / roster.name
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            steward = browser.new_page()
            _browser_sign_in(steward, site, "steward")
            assert "steward" in SECRETS  # the demo's agreements ask for a 2nd factor
            steward.click("nav >> text=Dashboard")
            expect(steward.locator("h1")).to_contain_text("The partnership on")
            expect(steward.locator(".tiles")).to_contain_text(
                "pairs waiting for review"
            )
            steward.screenshot(
                path=str(REPORTS / "web-steward-dashboard.png"), full_page=True
            )

            partner = browser.new_page(accept_downloads=True)
            _browser_sign_in(partner, site, "c02-eastside.uploader")
            partner.click("nav >> text=Upload")
            partner.set_input_files("#file", str(bad))
            partner.click("#upload-form button[type=submit]")
            expect(partner.locator("section[aria-label=Result]")).to_contain_text(
                "quarantined", timeout=60_000
            )
            partner.screenshot(
                path=str(REPORTS / "web-partner-upload.png"), full_page=True
            )
            with partner.expect_download() as download:
                partner.click("text=Download the quarantined rows")
            fixed = tmp_path / "quarantine.csv"
            download.value.save_as(fixed)
            text = fixed.read_text(encoding="utf-8")
            assert "13/45/2010" in text and planted[0] in text
            # the partner fixes the date and sends the fixed rows back
            fixed.write_text(text.replace("13/45/2010", "09/03/2010"), encoding="utf-8")
            partner.set_input_files("form.resubmit input[type=file]", str(fixed))
            partner.click("form.resubmit button[type=submit]")
            result = partner.locator("section[aria-label=Result]")
            expect(result).to_contain_text("loaded", timeout=60_000)
            partner.screenshot(
                path=str(REPORTS / "web-partner-resubmit.png"), full_page=True
            )
            assert "13/45/2010" not in result.inner_text()
            partner.goto(site.url + "/submissions/1")  # a district's, by a typed URL
            expect(partner.locator("h1")).to_have_text(
                re.compile("Not allowed|Not found")
            )
        finally:
            browser.close()


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"
)
def test_in_a_browser_the_steward_approves_a_widening_amendment_marked_as_such(
    site: Site, tmp_path: Path
) -> None:
    import yaml
    from playwright.sync_api import expect, sync_playwright

    from backbone import Warehouse

    with Warehouse.open(site.warehouse) as wh:
        steward = wh.users.get("steward")
        agreement_id = "DSA-C02"
        current = wh.agreements.in_force(agreement_id, wh.today())
        assert current is not None
        doc = current.document.model_dump(mode="json", exclude_none=True)
        doc["version"] = current.version + 1
        doc["purposes"].append(
            {"id": "college_outcomes", "description": "Follow alumni into college."}
        )
        (tmp_path / "v2.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        with wh.session(steward) as s:
            amended = wh.agreements.amend(
                s,
                agreement_id,
                tmp_path / "v2.yaml",
                effective=wh.today(),
                summary="Follow program alumni into college.",
            )
        version = amended.version.version
        parties = amended.version.awaiting
    assert amended.version.status == "pending" and "b00-backbone" in parties
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _browser_sign_in(page, site, "steward")
            page.click("nav >> text=Agreements")
            page.click(f"text={agreement_id} >> nth=0")
            pending = page.locator(f"section.version:has(h2#v{version})")
            expect(pending.locator("h2")).to_contain_text("pending")
            expect(pending.locator("tr.widening")).to_contain_text("college_outcomes")
            page.screenshot(
                path=str(REPORTS / "web-steward-agreement.png"), full_page=True
            )
            for party in parties:  # the steward records each party's approval
                pending.locator(
                    f"form:has(input[value='{party}']) input[name=title]"
                ).fill("Director")
                pending.locator(f"form:has(input[value='{party}']) button").click()
                page.wait_for_load_state()
            expect(page.locator(f"h2#v{version}")).not_to_contain_text("pending")
        finally:
            browser.close()
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        now = wh.agreements.version(agreement_id, version)
        assert now.status == "approved"
        assert {a[0] for a in now.approvals} == set(parties)


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"
)
def test_every_page_passes_axe_with_no_serious_or_critical_violation(
    site: Site,
) -> None:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[str]] = {}

    def check(page: Any, path: str) -> None:
        _visit(page, site.url + path)
        bad = serious_violations(page)
        if bad:
            found[path] = bad

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            check(page, "/sign-in")
            check(page, "/no-such-page")
            for user in sorted(site.passwords):  # every role the demo has
                page = browser.new_page()
                _browser_sign_in(page, site, user)
                menu = [
                    str(a.get_attribute("href"))
                    for a in page.locator("nav[aria-label=Main] a").all()
                ]
                assert "/home" in menu, (user, menu)
                for path in menu:
                    check(page, path)
                    # and the first thing each page links to in its tables
                    first = page.locator("main table a[href^='/']").first
                    if first.count():
                        check(page, str(first.get_attribute("href")))
                page.close()
        finally:
            browser.close()
    assert not found, found


def test_a_password_alone_never_replaces_or_skips_a_users_second_factor(
    site: Site,
) -> None:
    # the attacker knows a fresh user's password (whose app is not set up yet)
    # and the victim's password; the victim has a second factor
    attacker, attackers_password = "d01-northfield.newcomer", "a-fresh-password-1"
    with Warehouse.open(site.warehouse) as wh, wh.session(wh.users.get("steward")) as s:
        wh.users.add(
            s,
            attacker,
            partner="d01-northfield",
            role="partner_analyst",
            password=attackers_password,
        )
    victim = "c02-eastside.uploader"
    if victim not in SECRETS:
        _signed_in(site, victim).close()
    before = SECRETS[victim]
    with guesser(site, "127.0.0.3", follow_redirects=True) as client:
        setup = _password(client, attacker, attackers_password)
        assert setup.url.path == "/sign-in/setup"
        theirs = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text)
        assert theirs
        asked = _password(client, victim, site.passwords[victim])
        assert asked.url.path == "/sign-in/code"
        sneaked = client.post(
            "/sign-in/setup",
            data={"csrf": _csrf(asked.text), "code": pyotp.TOTP(theirs.group(1)).now()},
        )
        assert sneaked.url.path == "/sign-in", sneaked.text[:300]
        # wrong codes count even when the password is given again in between
        said = []
        for _ in range(3):
            asked = _password(client, victim, site.passwords[victim])
            for _ in range(2):
                wrong = client.post(
                    "/sign-in/code", data={"csrf": _csrf(asked.text), "code": "000000"}
                )
                said.append(wrong.text)
        assert any("too many failed sign-ins" in t for t in said)
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        kept = wh._con.execute(
            "SELECT totp_secret FROM gov.principal WHERE user_id = ?", [victim]
        ).fetchall()[0][0]
    assert kept == before


def _job(client: httpx.Client, **form: str) -> tuple[str, httpx.Response]:
    """Start a job through the form; follow it until it is done (bounded)."""
    page = client.get("/jobs")
    started = client.post("/jobs", data={"csrf": _csrf(page.text), **form})
    assert started.status_code == 200, started.text[:500]
    path = started.url.path
    assert re.fullmatch(r"/jobs/\d+", path), path
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = client.get(path + "/status")
        if "data-done" in status.text:
            return path, status
        time.sleep(0.5)
    raise AssertionError(f"{path} did not finish in 300 s")


def _follow_a_job_while_reading(steward: httpx.Client, funder: httpx.Client) -> str:
    page = steward.get("/jobs")
    started = steward.post(
        "/jobs", data={"csrf": _csrf(page.text), "kind": "indicators"}
    )
    path = started.url.path
    served: list[float] = []
    while "data-done" not in (status := steward.get(path + "/status")).text:
        begun = time.perf_counter()
        assert steward.get("/dashboard").status_code == 200
        served.append(time.perf_counter() - begun)
        time.sleep(0.3)
    text = status.text
    assert "Finished" in text and "early-warning snapshots" in text, text[:2000]
    assert "computing indicators" in text  # the command's progress, step by step
    assert served, "the job finished before any page was asked for"
    # its page is the starter's own: another user is told there is no such job
    assert funder.get(path).status_code == 404
    return path


def test_a_long_job_runs_as_its_own_process_while_pages_keep_answering(
    site: Site,
) -> None:
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        since = wh.audit.head().seq
    steward = _signed_in(site, "steward")
    funder = _signed_in(site, "f01-unitedfund.viewer")
    with contextlib.closing(steward), contextlib.closing(funder):
        _follow_a_job_while_reading(steward, funder)
    # the job ran as the steward, under a token issued for it and revoked after
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        said = [
            (e.actor, e.what) for e in wh.audit.entries(since_seq=since, action="token")
        ]
    issued = {w.split()[2] for u, w in said if u == "steward" and "issued" in w}
    revoked = {w.split()[2] for u, w in said if u == "steward" and "revoked" in w}
    assert issued and issued <= revoked, said


def test_a_job_the_users_role_may_not_run_fails_with_the_stages_reason(
    site: Site,
) -> None:
    with contextlib.closing(_signed_in(site, "f01-unitedfund.viewer")) as funder:
        path, status = _job(funder, kind="link")
        assert "Failed" in status.text and "What went wrong" in status.text
        assert "Traceback" not in status.text
        assert path in funder.get("/jobs").text  # listed as theirs
        # what it may do, it does: an evaluation of its own initiative
        offered = re.findall(
            r'<option value="([^"]+)">[^<]*\(\1\)</option>', funder.get("/jobs").text
        )
        assert offered, "the funder is offered its initiatives"
        said = [_job(funder, kind="evaluate", initiative=i)[1].text for i in offered]
        assert all("release" in text and "Traceback" not in text for text in said)
        # (an initiative whose programs are too small for an effect fails, saying so)
        assert any("Finished" in text for text in said), said


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"
)
def test_in_a_browser_an_upload_and_a_cli_submit_run_at_once_and_both_land(
    site: Site, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    def changed(partner: str) -> Path:
        """The partner's latest roster less its last row: a new file to send."""
        latest = sorted((site.community / "partners" / partner).glob("roster_*"))[-1]
        (tmp_path / partner).mkdir()
        sent = tmp_path / partner / latest.name
        rows = latest.read_text(encoding="utf-8").splitlines()[:-1]
        sent.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return sent

    through_site, through_cli = changed("c02-eastside"), changed("c03-stepup")
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        before = len(wh.ingest.list())
    token = (site.warehouse.parent / "steward.token").read_text().strip()
    env = {**os.environ, "BACKBONE_TOKEN": token}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _browser_sign_in(page, site, "c02-eastside.uploader")
            page.click("nav >> text=Upload")
            cli = subprocess.Popen(
                [sys.executable, "-m", "backbone", "submit", "--partner", "c03-stepup",
                 "--feed", "rosters", str(through_cli), "--warehouse",
                 str(site.warehouse)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            page.select_option("#feed", "rosters")
            page.set_input_files("#file", str(through_site))
            page.click("#upload-form button[type=submit]")
            expect(page.locator("section[aria-label=Result]")).to_contain_text(
                "loaded", timeout=120_000
            )
            out, err = cli.communicate(timeout=300)
            assert cli.returncode == 0, (out, err)
        finally:
            browser.close()
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        added = wh.ingest.list()[before:]
    assert sorted(s.partner_id for s in added) == ["c02-eastside", "c03-stepup"]
    assert all(s.rows_loaded for s in added), added
