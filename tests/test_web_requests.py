"""Data-use requests on the web site, served by a real `backbone serve` process on
a copy of the demo: a researcher files a request through the form (in Chromium)
and sees it awaiting review; the reviewing district's analyst records its review;
a partner cannot open a request it neither filed nor reviews, whatever id it types;
and the demo's researcher, whose request is approved and licensed, takes its
pseudonymous extract but reaches no identified page, no name and no local id.
Screenshots of a request's page go to reports/."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests import test_web
from tests.test_web import (
    CHROMIUM,
    REPORTS,
    Site,
    _browser_sign_in,
    _csrf,
    _signed_in,
    serious_violations,
)

site = test_web.site  # the fixture: a `backbone serve` on a copy of the demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]

RESEARCHER = "a01-regionalcollege.researcher"
REVIEWER = "d01-northfield.analyst"  # its district provides the data asked for
LICENSED = "REQ-2026-11"  # the demo's researcher's request, approved and licensed
OTHERS = "REQ-2026-07"
NAME_COLUMNS = [
    "first_name",
    "last_surname",
]  # the demo's funder's request (f02; c04, a01, d02 review)
# nothing a research extract may carry (the policy's identifying fields)
IDENTIFYING = {
    "person_id", "local_id", "student_local_id", "first_name", "middle_name",
    "last_surname", "generation_code_suffix", "birth_date", "address",
    "postal_code", "state_student_id", "identification_system", "partner_id",
}  # fmt: skip


@pytest.fixture(scope="module")
def names(site: Site) -> set[str]:
    """Students' first and last names (from the demo's planted truth) and the
    partners' local ids that carry letters, to look for in what the researcher
    gets; long enough not to turn up inside ordinary words on a page."""
    truth = site.community / "truth"
    persons = pq.read_table(truth / "persons.parquet", columns=NAME_COLUMNS)
    records = pq.read_table(truth / "records.parquet", columns=["local_id"])
    found = {
        v
        for column in NAME_COLUMNS
        for v in persons.column(column).to_pylist()[:400]
        if v and len(v) >= 6
    }
    return found | {
        v
        for v in records.column("local_id").to_pylist()[::20]
        if re.search("[A-Za-z]", v) and len(v) >= 6
    }


@contextlib.contextmanager
def signed_in(site: Site, user: str) -> Iterator[httpx.Client]:
    client = _signed_in(site, user)
    with contextlib.closing(client):
        yield client


def _file(client: httpx.Client, request_id: str, **items: str) -> httpx.Response:
    """The filing form, fetched and posted with one data item from d01."""
    form = client.get("/requests/new")
    assert form.status_code == 200, form.text[:300]
    data = {
        "csrf": _csrf(form.text),
        "request_id": request_id,
        "title": "Attendance and college going",
        "purpose_id": "college_going_study",
        "purpose_description": "Whether ninth-grade attendance predicts enrolling.",
        "begin": "2027-01-01",
        "end": "2028-06-30",
        "audience": "the agency's research office\nthe district's counselors",
        "publication": "A brief with counts of 10 or more.",
        "provider_1": "d01-northfield",
        "entity_1": "enrollment",
        "fields_1": "school_year, entry_grade_level",
        "level_1": "pseudonymous",
        "provider_2": "",
        "fields_2": "",
        **items,
    }
    return client.post("/requests/new", data=data)


def _review(client: httpx.Client, request_id: str, **fields: str) -> httpx.Response:
    page = client.get(f"/requests/{request_id}")
    assert page.status_code == 200, page.text[:300]
    return client.post(
        f"/requests/{request_id}/review",
        data={
            "csrf": _csrf(page.text),
            "provider": "d01-northfield",
            "fit": "4",
            "protections": "3",
            "minimum_necessary": "4",
            **fields,
        },
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_in_a_browser_a_researcher_files_a_request_and_sees_it_awaiting_review(
    site: Site,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    REPORTS.mkdir(exist_ok=True)
    bad: dict[str, list[str]] = {}

    def accessible(page: Any) -> None:
        found = serious_violations(page)
        if found:
            bad[page.url] = found

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _browser_sign_in(page, site, RESEARCHER)
            page.click("nav >> text=Requests")
            expect(page.locator("h1")).to_have_text("Data-use requests")
            accessible(page)
            # its partner's own request is listed; the funder's (which a01 only
            # reviews as a provider) is not the researcher's to read
            expect(page.locator("main table")).to_contain_text(LICENSED)
            expect(page.locator("main table")).not_to_contain_text(OTHERS)
            page.click("text=File a data-use request")
            accessible(page)
            page.screenshot(path=str(REPORTS / "web-request-new.png"), full_page=True)
            page.fill("#request_id", "REQ-WEB-BROWSER")
            page.fill("#title", "Ninth-grade attendance and college going")
            page.fill("#purpose_id", "college_going_study")
            page.fill("#purpose_description", "Whether attendance predicts college.")
            page.fill("#begin", "2027-01-01")
            page.fill("#end", "2028-06-30")
            page.fill("#audience", "the agency's research office")
            page.fill("#publication", "Counts of 10 or more only.")
            page.select_option("#provider_1", "d01-northfield")
            page.select_option("#entity_1", "attendance_event")
            page.fill("#fields_1", "school_year, attendance_event_category")
            page.select_option("#level_1", "pseudonymous")
            page.click("main form button[type=submit]")
            page.wait_for_url(re.compile(".*/requests/REQ-WEB-BROWSER$"))
            expect(page.locator("h1")).to_contain_text("REQ-WEB-BROWSER")
            body = page.locator("main")
            expect(body).to_contain_text("in review")
            expect(body).to_contain_text("Awaiting review by d01-northfield")
            expect(body).to_contain_text("attendance_event")
            expect(body).to_contain_text("No reviews yet")
            # the researcher speaks for no provider: no review form for it
            expect(page.locator("form.review")).to_have_count(0)
            accessible(page)
            page.screenshot(path=str(REPORTS / "web-request-filed.png"), full_page=True)
            page.goto(site.url + "/requests")
            expect(page.locator("main table")).to_contain_text("REQ-WEB-BROWSER")

            # the reviewing district sees it waiting, with its review form
            reviewer = browser.new_page()
            _browser_sign_in(reviewer, site, REVIEWER)
            reviewer.goto(site.url + "/requests/REQ-WEB-BROWSER")
            expect(reviewer.locator("form.review")).to_have_count(1)
            accessible(reviewer)
            reviewer.screenshot(
                path=str(REPORTS / "web-request-review.png"), full_page=True
            )

            # the licensed request: its reviews, and its extracts for the researcher
            page.goto(site.url + f"/requests/{LICENSED}")
            expect(page.locator("main")).to_contain_text("approved")
            expect(page.locator("main")).to_contain_text("Approve with conditions")
            expect(page.locator("a[href$='/extract/1.csv']")).to_have_count(1)
            accessible(page)
            page.screenshot(
                path=str(REPORTS / "web-request-approved.png"), full_page=True
            )
        finally:
            browser.close()
    assert not bad, bad


def test_a_reviewing_partners_analyst_records_its_review(site: Site) -> None:
    with signed_in(site, RESEARCHER) as researcher:
        filed = _file(researcher, "REQ-WEB-REVIEW")
        assert filed.status_code == 200, filed.text[:500]
        assert str(filed.url).endswith("/requests/REQ-WEB-REVIEW")
        again = _file(researcher, "REQ-WEB-REVIEW")  # the same id twice
        assert again.status_code == 400 and "already filed" in again.text
        # an invalid document is refused whole, with a sentence, not a traceback
        wrong = _file(researcher, "REQ-WEB-WRONG", fields_1="no_such_field")
        assert wrong.status_code == 400 and "Nothing was filed" in wrong.text
        assert "Traceback" not in wrong.text
        assert researcher.get("/requests/REQ-WEB-WRONG").status_code == 404
        # a researcher does not review, even for its own partner's data
        assert _review(
            researcher,
            "REQ-WEB-REVIEW",
            decision="approve",
            provider="a01-regionalcollege",
        ).status_code in (400, 403)
    with signed_in(site, "c02-eastside.uploader") as other:
        # not a provider of the request: it may not even see it
        assert other.get("/requests/REQ-WEB-REVIEW").status_code == 404
    with signed_in(site, REVIEWER) as analyst:
        listed = analyst.get("/requests")
        assert "REQ-WEB-REVIEW" in listed.text  # the requests it must review
        page = analyst.get("/requests/REQ-WEB-REVIEW")
        assert "Review for d01-northfield" in page.text
        missing = _review(analyst, "REQ-WEB-REVIEW", decision="approve_with_conditions")
        assert missing.status_code == 400 and "conditions" in missing.text
        done = _review(
            analyst,
            "REQ-WEB-REVIEW",
            decision="approve_with_conditions",
            conditions="Grades 9 and 10 only.",
            comments="Welcome work.",
        )
        assert done.status_code == 200, done.text[:500]
        assert str(done.url).endswith("/requests/REQ-WEB-REVIEW")
        assert "approved" in done.text and "Grades 9 and 10 only." in done.text
        assert "DUL-REQ-WEB-REVIEW-d01-northfield" in done.text  # the draft license
        assert "d01-northfield.analyst" in done.text  # who reviewed
        assert "Review for d01-northfield" not in done.text  # reviews are closed
        twice = _review(analyst, "REQ-WEB-REVIEW", decision="decline")
        assert twice.status_code == 400
    with signed_in(site, RESEARCHER) as researcher:
        seen = researcher.get("/requests/REQ-WEB-REVIEW").text
        assert "Grades 9 and 10 only." in seen and "approved" in seen
    drafts = site.warehouse / "agreements" / "drafts"
    assert (drafts / "DUL-REQ-WEB-REVIEW-d01-northfield.yaml").is_file()


def test_a_partner_cannot_open_a_request_it_neither_filed_nor_reviews(
    site: Site,
) -> None:
    with signed_in(site, REVIEWER) as district:
        listed = district.get("/requests").text
        assert LICENSED in listed and OTHERS not in listed
        assert district.get(f"/requests/{LICENSED}").status_code == 200
        for request_id in (OTHERS, "REQ-2026-08", "req-2026-07"):
            answer = district.get(f"/requests/{request_id}")
            assert answer.status_code == 404, (request_id, answer.text[:300])
            assert "College Bound" not in answer.text  # the other's title
        # a reviewer may read the request, but the extract is the requester's
        assert district.get(f"/requests/{LICENSED}/extract/1.csv").status_code == 403
        assert district.get(f"/requests/{OTHERS}/extract/1.csv").status_code == 404
    with signed_in(site, "f01-unitedfund.viewer") as funder:
        assert funder.get(f"/requests/{OTHERS}").status_code == 404  # f02's
        assert OTHERS not in funder.get("/requests").text
    with signed_in(site, "steward") as steward:
        listed = steward.get("/requests").text
        assert LICENSED in listed and OTHERS in listed
        assert steward.get(f"/requests/{OTHERS}").status_code == 200


def test_a_researcher_takes_its_pseudonymous_extract_and_reaches_no_identified_data(
    site: Site, names: set[str]
) -> None:
    assert len(names) > 50
    with signed_in(site, RESEARCHER) as researcher:
        for path in (
            "/persons", "/persons/1", "/persons/100", "/roster", "/roster?download=roster&format=csv",
            "/crosswalk", "/crosswalk/file", "/review", "/submissions", "/submissions/1",
            "/submissions/1/quarantine.csv", "/dashboard", "/partners", "/feeds", "/audit",
            "/users", f"/requests/{OTHERS}", f"/requests/{OTHERS}/extract/1.csv",
        ):  # fmt: skip
            answer = researcher.get(path)
            if path == "/crosswalk":  # a page that shows no data, only links
                assert answer.status_code in (200, 403, 404)
                assert "local_id" not in answer.text
            elif path == "/crosswalk/file" and answer.status_code == 200:
                # the stage may hand a researcher its partner's crosswalk only
                # as its own pseudonyms: no local id, no person id
                header = next(csv.reader(io.StringIO(answer.text)))
                assert header == ["pseudonym"], (path, header)
            else:
                assert answer.status_code in (403, 404), (path, answer.text[:300])
            leaked = [n for n in names if n in answer.text]
            assert not leaked, (path, leaked[:3])
            assert "Traceback" not in answer.text
        page = researcher.get(f"/requests/{LICENSED}")
        assert page.status_code == 200 and "CSV of item 1" in page.text
        for item, entity_fields in (
            (1, {"school_id", "graduation_date", "class_of_school_year"}),
            (2, {"school_year", "cumulative_gpa", "cumulative_earned_credits"}),
        ):
            got = researcher.get(f"/requests/{LICENSED}/extract/{item}.csv")
            assert got.status_code == 200, got.text[:300]
            assert got.headers["content-type"].startswith("text/csv")
            assert "attachment" in got.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(got.text)))
            assert rows, f"item {item} is empty"
            columns = set(rows[0])
            # only the item's fields and the researcher's own pseudonym
            assert columns == entity_fields | {"pseudonym"}, columns
            assert not columns & IDENTIFYING
            assert not columns & {"provider_partner_id", "submission_id"}
            assert all(re.fullmatch(r"[0-9a-f]{20}", r["pseudonym"]) for r in rows)
            cells = {v for r in rows for v in r.values()}
            assert not cells & names, sorted(cells & names)[:3]
        # no such item, and an item asked for by a typed number
        assert researcher.get(f"/requests/{LICENSED}/extract/3.csv").status_code == 404
    # every download is in the audit log: who, which rows, where they went
    from backbone import Warehouse

    with Warehouse.open(site.warehouse, read_only=True) as wh:
        exports = wh.audit.entries(action="export", limit=100_000)
    mine = [
        e
        for e in exports
        if e.actor == RESEARCHER
        and e.decision == "allow"
        and f"request {LICENSED}" in (e.destination or "")
    ]
    assert len(mine) >= 2 and all(e.rows for e in mine), mine
    assert {a.split("@")[0] for e in mine for a in e.agreements} == {
        "DUL-REQ-2026-11-d01-northfield"
    }
