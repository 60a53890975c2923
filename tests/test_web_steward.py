"""The steward's pages of the web door (web/pages/steward.py), on a real `backbone
serve` over a copy of the demo: partners, feeds and mappings, the review queue
(decided by form and by keys), a person's records and evidence, the release
ledger, the audit log (paged, verified), retention and users. A partner's users
are refused each of them, by the stage, and the refusals are audited; a disabled
user's session ends at its next request. Screenshots of /review and /audit go
to reports/."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backbone import Warehouse
from tests.demo_build import DemoBuild, copy_demo
from tests.test_web import (
    CHROMIUM,
    REPORTS,
    Site,
    _browser_sign_in,
    _csrf,
    _signed_in,
    demo_passwords,
    guesser,
    serious_violations,
    serving,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]

PAGES = (
    "/partners",
    "/feeds",
    "/review",
    "/persons",
    "/unbacked",
    "/releases",
    "/audit",
    "/retention",
    "/users",
)
PLANTED_PAIRS = 4


def _plant_review_pairs(warehouse: Any) -> list[tuple[str, str, str, str]]:
    """The demo's link run leaves no pair for review (its model decides them all):
    the least certain pairs the model linked are put back in the queue, as a run
    with a wider review band would have left them."""
    with Warehouse.open(warehouse) as wh:
        con = wh._con
        pairs = con.execute(
            "SELECT partner_id_l, local_id_l, partner_id_r, local_id_r "
            "FROM identity.link_edge WHERE method = 'model' AND decision = 'link' "
            "ORDER BY match_probability LIMIT ?",
            [PLANTED_PAIRS],
        ).fetchall()
        for pair in pairs:
            con.execute(
                "UPDATE identity.link_edge SET decision = 'review' WHERE "
                "partner_id_l = ? AND local_id_l = ? AND partner_id_r = ? "
                "AND local_id_r = ?",
                list(pair),
            )
    assert len(pairs) == PLANTED_PAIRS
    return [tuple(p) for p in pairs]


@pytest.fixture(scope="module")
def site(
    demo_build: DemoBuild, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    out = copy_demo(demo_build, tmp_path_factory.mktemp("web-steward") / "demo")
    _plant_review_pairs(out / "warehouse")
    with serving(out, demo_passwords(demo_build)) as served:
        yield served


def _log(site: Site) -> list[dict[str, Any]]:
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        rows = wh._con.execute(
            "SELECT entry FROM gov.audit_log ORDER BY seq"
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, html[:800]
    return found.group(1)


def _rows(html: str) -> int:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    return body.group(1).count("<tr>") if body else 0


def _seqs(html: str) -> list[int]:
    """The entry numbers of an audit log page, in its order."""
    found = re.findall(r'<tr><td class="num">([\d,]+)</td><td>\d{4}-', html)
    return [int(s.replace(",", "")) for s in found]


def _linked_person(site: Site) -> tuple[int, str, str]:
    """A person two records of the queue's first planted pair belong to."""
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        row = wh._con.execute(
            "SELECT rp.person_id, e.local_id_l, e.local_id_r "
            "FROM identity.link_edge e JOIN identity.record_person rp "
            "ON rp.partner_id = e.partner_id_l AND rp.local_id = e.local_id_l "
            "WHERE e.method = 'model' AND e.decision = 'link' "
            "ORDER BY e.match_probability LIMIT 1"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), str(row[2])


def test_the_steward_sees_every_page_with_the_demos_data(site: Site) -> None:
    with contextlib.closing(_signed_in(site, "steward")) as client:
        home = client.get("/home").text
        for path in PAGES:  # each in the steward's menu
            assert f'href="{path}"' in home, path
        partners = client.get("/partners")
        assert partners.status_code == 200
        assert "Northfield Public Schools" in partners.text
        assert "school district" in partners.text and "@" in partners.text
        assert _rows(partners.text) >= 13
        feeds = client.get("/feeds").text
        assert "college-records" in feeds and "student-records" in feeds
        # the mapping document, as recorded
        assert "agency_student_id" in feeds and 'id="mapping-d01-northfield-' in feeds
        releases = client.get("/releases").text
        assert "evaluation of INIT-ACADEMIC" in releases
        assert (
            "f01-unitedfund.viewer (f01-unitedfund)" in releases
            and "suppression" in releases
        )
        retention = client.get("/retention").text
        assert "Nothing is due for destruction." in retention
        users = client.get("/users").text
        assert "c02-eastside.uploader" in users and "partner uploader" in users
        assert "not set" in users  # whose second factor is not set up yet
        assert 'name="user_id"' in users and 'id="disable-reason"' in users
        audit = client.get("/audit").text
        head = len(_log(site))
        assert f"{head:,} entries" in audit and "Verify the chain" in audit
        person_id, left, right = _linked_person(site)
        read_before = len(_log(site))
        person = client.get(f"/persons?person_id={person_id}")
        assert person.url.path == f"/persons/{person_id}"
        assert left in person.text and right in person.text
        assert " ~ " in person.text  # the evidence of the link
        # viewing a person is not exporting one: no file of their records
        assert "download=records" not in person.text
        taken = client.get(
            f"/persons/{person_id}", params={"download": "records", "format": "csv"}
        )
        assert taken.status_code == 404 and left not in taken.text
        # the person's records were a person-level read, recorded as one
        assert any(
            e["actor"] == "steward"
            and e["action"] == "read"
            and e["decision"] == "allow"
            and e["purpose"] == "identity_resolution"
            for e in _log(site)[read_before:]
        )
        # each table downloads as the page shows it
        csv = client.get("/partners?download=partners&format=csv")
        assert csv.status_code == 200 and "d01-northfield" in csv.text
        assert csv.headers["content-type"].startswith("text/csv")
        xlsx = client.get("/releases?download=releases&format=xlsx")
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


@pytest.mark.parametrize("user", ["c02-eastside.uploader", "d01-northfield.analyst"])
def test_a_partners_user_is_refused_every_steward_page_and_sees_no_data(
    site: Site, user: str
) -> None:
    person_id, left, right = _linked_person(site)
    before = len(_log(site))
    with contextlib.closing(_signed_in(site, user)) as client:
        home = client.get("/home").text
        for path in PAGES:
            assert f'href="{path}"' not in home, path
        for path in (*PAGES, f"/persons/{person_id}"):
            answer = client.get(path)
            assert answer.status_code in (403, 404), (path, answer.text[:300])
            text = answer.text
            assert "Traceback" not in text and "SELECT" not in text
            for data in (left, right, "agency_student_id", "INIT-ACADEMIC",
                         "Chain head", "steward.analyst", "Due for destruction"):  # fmt: skip
                assert data not in text, (path, data)
            # nor as a download
            table = {"/partners": "partners", "/audit": "audit"}.get(path)
            if table:
                got = client.get(f"{path}?download={table}&format=csv")
                assert got.status_code in (403, 404)
        csrf = _csrf(client.get("/home").text)
        for path, form in (
            (
                "/review",
                {"left": f"x:{left}", "right": f"y:{right}", "decision": "same"},
            ),
            ("/retention/run", {}),
            ("/users/disable", {"user_id": "steward", "reason": "taking over"}),
            ("/audit/verify", {}),
        ):
            answer = client.post(path, data={"csrf": csrf, **form})
            assert answer.status_code in (403, 404), (path, answer.text[:300])
    refused = [e for e in _log(site)[before:] if e["actor"] == user]
    denied = {e["what"] for e in refused if e["decision"] == "deny"}
    # the stage refused and recorded each (the review's by its own check)
    assert {"the audit log", "the list of users", "the partner directory",
            "the release ledger", "the review queue"} <= denied, denied  # fmt: skip
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        assert wh._con.execute(
            "SELECT count(*) FROM gov.principal WHERE user_id = 'steward' "
            "AND disabled_at IS NOT NULL"
        ).fetchone() == (0,)


def test_the_steward_analyst_reads_but_may_not_audit_run_retention_or_disable(
    site: Site,
) -> None:
    with contextlib.closing(_signed_in(site, "steward.analyst")) as client:
        assert client.get("/partners").status_code == 200
        assert client.get("/review").status_code == 200
        assert client.get("/audit").status_code == 403
        csrf = _csrf(client.get("/users").text)
        for path, form in (
            ("/retention/run", {}),
            ("/users/disable", {"user_id": "steward", "reason": "x"}),
        ):
            assert client.post(path, data={"csrf": csrf, **form}).status_code == 403


def test_the_steward_decides_a_pair_and_the_next_one_is_shown(site: Site) -> None:
    with contextlib.closing(_signed_in(site, "steward")) as client:
        shown = client.get("/review")
        assert shown.status_code == 200 and "Pair 1 of" in shown.text
        waiting = int(re.search(r"Pair 1 of (\d+)", shown.text).group(1))  # type: ignore[union-attr]
        left, right = _hidden(shown.text, "left"), _hidden(shown.text, "right")
        assert left.split(":", 1)[1] in shown.text  # the two records side by side
        assert "Match weight" in shown.text and "first_name" in shown.text
        decided = client.post(
            "/review",
            data={"csrf": _csrf(shown.text), "left": left, "right": right,
                  "decision": "same", "at": "0"},
        )  # fmt: skip
        assert decided.status_code == 200 and decided.url.path == "/review"
        if waiting > 1:
            assert f"Pair 1 of {waiting - 1}" in decided.text
            assert (_hidden(decided.text, "left"), _hidden(decided.text, "right")) != (
                left,
                right,
            )
            # skipping moves on without recording anything
            skipped = client.post(
                "/review",
                data={"csrf": _csrf(decided.text), "decision": "skip", "at": "0",
                      "left": _hidden(decided.text, "left"),
                      "right": _hidden(decided.text, "right")},
            )  # fmt: skip
            assert skipped.url.query == b"at=1"
        # the same pair decided again meanwhile (a stale page) is refused
        again = client.post(
            "/review",
            data={"csrf": _csrf(shown.text), "left": left, "right": right,
                  "decision": "different", "at": "0"},
        )  # fmt: skip
        assert again.status_code == 409 and "decided meanwhile" in again.text
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        decisions = {(str(d.left), str(d.right)): d for d in wh.linkage.decisions()}
    assert decisions[(left, right)].decision == "same"
    assert decisions[(left, right)].by == "steward"
    left_partner, right_partner = left.split(":")[0], right.split(":")[0]
    log = _log(site)
    assert any(
        e["action"] == "review"
        and e["actor"] == "steward"
        and e["decision"] == "allow"
        and e["what"].endswith(": same")
        and {left_partner, right_partner} <= set(e["providers"])
        for e in log
    )
    # the pair shown side by side was a person-level read, recorded as one
    assert any(
        e["action"] == "read"
        and e["actor"] == "steward"
        and e["purpose"] == "identity_resolution"
        and "side by side" in e["what"]
        for e in log
    )


def test_the_audit_log_pages_by_sequence_and_verifies_intact(site: Site) -> None:
    with contextlib.closing(_signed_in(site, "steward")) as client:
        first = client.get("/audit").text
        assert _rows(first) == 100  # a bounded page, the demo's log being longer
        seqs = _seqs(first)
        assert seqs == sorted(seqs, reverse=True) and len(seqs) == 100
        older = re.search(r'href="/audit\?before=(\d+)">Older entries', first)
        assert older and int(older.group(1)) == seqs[-1]
        second = client.get(f"/audit?before={older.group(1)}").text
        seqs2 = _seqs(second)
        assert seqs2[0] == seqs[-1] - 1 and len(seqs2) == 100
        assert "Newer entries" in second
        last = client.get("/audit?before=4").text
        assert _rows(last) == 3 and "Older entries" not in last
        assert client.get("/audit?before=x").status_code == 400
        verified = client.post("/audit/verify", data={"csrf": _csrf(first)})
        assert verified.status_code == 200
        entries = len(_log(site))
        assert "Audit log intact" in verified.text
        count = int(
            re.search(r"intact: ([\d,]+) entries", verified.text)
            .group(1)
            .replace(",", "")  # type: ignore[union-attr]
        )
        assert entries - 5 <= count <= entries  # reads while verifying are newer
        with Warehouse.open(site.warehouse, read_only=True) as wh:
            assert wh.audit.verify().ok
        forged = client.post("/audit/verify", data={"csrf": "forged"})
        assert forged.status_code == 403


def test_disabling_a_user_ends_their_session_at_the_next_request(site: Site) -> None:
    victim = "f01-unitedfund.viewer"
    with (
        contextlib.closing(_signed_in(site, "steward")) as steward,
        contextlib.closing(_signed_in(site, victim)) as them,
    ):
        assert them.get("/home").url.path == "/home"
        users = steward.get("/users")
        done = steward.post(
            "/users/disable",
            data={"csrf": _csrf(users.text), "user_id": victim,
                  "reason": "left the foundation"},
        )  # fmt: skip
        assert done.status_code == 200 and done.url.path == "/users"
        assert "disabled (left the foundation)" in done.text
        # not offered again
        assert f'<option value="{victim}"' not in done.text
        after = them.get("/home")
        assert after.url.path == "/sign-in"
        assert them.get("/agreements").url.path == "/sign-in"
    assert any(
        e["action"] == "user"
        and e["actor"] == "steward"
        and e["what"] == f"disabled user {victim}"
        for e in _log(site)
    )


def test_a_steward_admin_confirms_an_unbacked_record_and_withdraws_it_on_its_page(
    site: Site,
) -> None:
    with Warehouse.open(site.warehouse) as wh:  # a roster line with no facts behind
        person = wh._con.execute(
            "SELECT min(person_id) FROM identity.record_person "
            "WHERE partner_id = 'c02-eastside'"
        ).fetchone()
        assert person is not None
        wh._con.execute(
            "INSERT INTO identity.record_person VALUES ('d03-lakeview', "
            "'web-roster-1', ?, 'deterministic', now())",
            [person[0]],
        )
    record = "d03-lakeview:web-roster-1"
    with Warehouse.open(site.warehouse) as wh, wh.session(wh.users.get("steward")) as s:
        s.record("alert", "records linked to persons their partner never served: "
                 "d03-lakeview 12")  # fmt: skip
    # the dashboard shows the alert: a steward admin is sent to the page, an
    # analyst told who decides
    for who, said in (("steward", 'href="/unbacked"'),
                      ("steward.analyst", "A steward admin looks at them")):  # fmt: skip
        with contextlib.closing(_signed_in(site, who)) as client:
            board = client.get("/dashboard")
            assert board.status_code == 200, board.text[:300]
            assert "d03-lakeview 12" in board.text and said in board.text
    with contextlib.closing(_signed_in(site, "steward")) as steward:
        page = steward.get("/unbacked")
        assert page.status_code == 200 and "web-roster-1" in page.text
        assert f'<option value="{record}"' in page.text
        unexplained = steward.post(
            "/unbacked/confirm",
            data={"csrf": _csrf(page.text), "record": record, "reason": " "},
        )
        assert unexplained.status_code == 400 and "--reason" not in unexplained.text
        assert "reason" in unexplained.text and "Traceback" not in unexplained.text
        done = steward.post(
            "/unbacked/confirm",
            data={"csrf": _csrf(page.text), "record": record,
                  "reason": "enrollment form seen"},
        )  # fmt: skip
        assert done.status_code == 200 and done.url.path == "/unbacked"
        assert "enrollment form seen" in done.text
        assert f'<option value="{record}"' in done.text  # now offered to withdraw
        assert 'action="/unbacked/withdraw"' in done.text
        gone = steward.post(
            "/unbacked/withdraw",
            data={"csrf": _csrf(done.text), "record": record, "reason": "a mistake"},
        )
        assert gone.status_code == 200 and "enrollment form seen" not in gone.text
        forged = steward.post(
            "/unbacked/confirm",
            data={"csrf": "forged", "record": record, "reason": "x"},
        )
        assert forged.status_code == 403
    steps = [e["what"] for e in _log(site) if e["action"] == "holding"]
    person_said = f"d03-lakeview serves person {person[0]}"
    assert steps[-2:] == [
        f"confirmed that {person_said}",
        f"withdrew the confirmation that {person_said}",
    ]
    # a steward analyst may not look or decide: refused, and the refusal audited
    with contextlib.closing(_signed_in(site, "steward.analyst")) as analyst:
        assert analyst.get("/unbacked").status_code == 403
        home = analyst.get("/home").text
        refused = analyst.post(
            "/unbacked/confirm",
            data={"csrf": _csrf(home), "record": record, "reason": "x"},
        )
        assert refused.status_code == 403 and "Traceback" not in refused.text
    denied = [e for e in _log(site) if e["decision"] == "deny"][-2:]
    assert [(e["action"], e["actor"]) for e in denied] == [
        ("read", "steward.analyst"),
        ("holding", "steward.analyst"),
    ]
    # the partner's local id stays out of the log every provider named in it sees
    assert not any("web-roster-1" in e["what"] for e in _log(site))


def test_a_user_locked_out_by_wrong_passwords_is_unlocked_on_the_users_page(
    site: Site,
) -> None:
    victim = "d02-riverside.analyst"
    with guesser(site, "127.0.0.4") as guessing:
        said = ""
        for _ in range(8):  # each after the wait it is told, until locked out
            wait = re.search(r"try again in (\d+) s", said)
            time.sleep(int(wait.group(1)) if wait else 0)
            form = guessing.get("/sign-in")
            said = guessing.post(
                "/sign-in",
                data={"csrf": _csrf(form.text), "user": victim, "password": "guess"},
            ).text
            if "locked until" in said:
                break
        assert "locked until" in said
    with contextlib.closing(_signed_in(site, "steward")) as steward:
        users = steward.get("/users")
        assert "locked out (failed sign-ins)" in users.text
        assert 'action="/users/unlock"' in users.text
        done = steward.post(
            "/users/unlock", data={"csrf": _csrf(users.text), "user_id": victim}
        )
        assert done.status_code == 200 and "locked out" not in done.text
    assert any(
        e["action"] == "user"
        and e["actor"] == "steward"
        and e["what"] == f"unlocked {victim}"
        for e in _log(site)
    )


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"
)
def test_in_a_browser_the_keys_review_pairs_and_every_page_passes_axe(
    site: Site,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    REPORTS.mkdir(exist_ok=True)
    found: dict[str, list[str]] = {}

    def check(page: Any, path: str | None = None) -> None:
        if path is not None:
            page.goto(site.url + path)
        bad = serious_violations(page)
        if bad:
            found[path or page.url] = bad

    before = len(_log(site))
    person_id, _, _ = _linked_person(site)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _browser_sign_in(page, site, "steward")
            page.click("nav >> text=Review")
            expect(page.locator("main")).to_contain_text("Pair 1 of")
            check(page)
            page.screenshot(
                path=str(REPORTS / "web-steward-review.png"), full_page=True
            )
            first = page.locator("input[name=left]").get_attribute("value")
            page.keyboard.press("k")  # skip
            page.wait_for_url(re.compile(r".*/review\?at=1$"))
            page.goto(site.url + "/review")
            expect(page.locator("input[name=left]")).to_have_attribute(
                "value", first or ""
            )
            right = page.locator("input[name=right]").get_attribute("value")
            page.keyboard.press("d")  # different
            page.wait_for_url(re.compile(r".*/review\?at=0$"))
            page.click("nav >> text=Audit log")
            expect(page.locator("h1")).to_have_text("The audit log")
            check(page)
            page.screenshot(path=str(REPORTS / "web-steward-audit.png"), full_page=True)
            page.click("text=Verify the chain")
            expect(page.locator("main")).to_contain_text("Audit log intact")
            check(page)
            for path in ("/partners", "/feeds", "/persons", f"/persons/{person_id}",
                         "/releases", "/retention", "/users", "/unbacked"):  # fmt: skip
                check(page, path)
            page.screenshot(
                path=str(REPORTS / "web-steward-unbacked.png"), full_page=True
            )
        finally:
            browser.close()
    assert not found, found
    assert any(
        e["action"] == "review"
        and e["what"].endswith(": different")
        and e["actor"] == "steward"
        for e in _log(site)[before:]
    ), right
