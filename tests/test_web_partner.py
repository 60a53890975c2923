"""The partner data staff's and funders' pages, and the scorecard, served by a
real `backbone serve` on a copy of the demo: a district analyst's early-warning
roster and its downloads, a community organization's feeds, crosswalk and
digest, a funder's outcomes with intervals and suppressed cells, and who is
refused what."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import httpx
import pytest

from backbone import Warehouse
from tests import test_web
from tests.test_web import (
    CHROMIUM,
    REPORTS,
    Site,
    _browser_sign_in,
    _ready,
    _signed_in,
    _visit,
    serious_violations,
)

site = test_web.site  # the fixture: `backbone serve` on a copy of the demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]

ANALYST = "d01-northfield.analyst"
UPLOADER = "c02-eastside.uploader"
FUNDER = "f01-unitedfund.viewer"
INTERVAL = re.compile(r"\[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]")


def _audit(site: Site) -> list[dict[str, object]]:
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        rows = wh._con.execute(
            "SELECT entry FROM gov.audit_log ORDER BY seq"
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def _releases(site: Site) -> int:
    with Warehouse.open(site.warehouse, read_only=True) as wh:
        row = wh._con.execute("SELECT count(*) FROM gov.release").fetchone()
    return int(row[0]) if row else 0


def _clean(answer: httpx.Response) -> None:
    assert "Traceback" not in answer.text and "SELECT" not in answer.text


def test_a_district_analyst_reads_and_downloads_its_roster_with_tiers_and_factors(
    site: Site,
) -> None:
    client = _signed_in(site, ANALYST)
    with contextlib.closing(client):
        page = _ready(client, "/roster")
        assert page.status_code == 200, page.text[:500]
        assert 'href="/roster"' in page.text  # in the analyst's menu
        for heading in ("Tier", "Top factors", "Attendance %", "School"):
            assert '<th scope="col"' in page.text and heading in page.text
        assert "high risk" in page.text and "on track" in page.text
        # only Northfield's students: the other districts' rows are withheld
        assert "d01-northfield" in page.text
        assert "Riverside" not in page.text.split("Not included")[0]

        high = _ready(client, "/roster", tier="high risk")
        assert high.status_code == 200
        got = client.get(
            "/roster",
            params={"tier": "high risk", "download": "roster", "format": "csv"},
        )
        assert got.status_code == 200 and got.headers["content-type"].startswith(
            "text/csv"
        )
        rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert rows and {r["Tier"] for r in rows} == {"high risk"}
        assert all(r["Top factors"] for r in rows)  # the trained model's words
        assert any("attendance" in r["Top factors"] for r in rows)
        assert f"{len(rows):,} students" in high.text  # the page and file agree
        shown = min(len(rows), 100)  # a page of the worst; the file has them all
        assert high.text.count("<tr>") - 1 == shown

        xlsx = client.get("/roster", params={"download": "roster", "format": "xlsx"})
        assert xlsx.status_code == 200 and xlsx.content[:4] == b"PK\x03\x04"
        import fastexcel

        sheet = fastexcel.read_excel(xlsx.content).load_sheet(0).to_arrow()
        assert "Tier" in sheet.column_names and sheet.num_rows > len(rows)

        bad = client.get("/roster", params={"tier": "doomed"})
        assert bad.status_code == 400 and "unknown tier" in bad.text
        _clean(bad)
    entries = _audit(site)
    reads = [e for e in entries if e.get("actor") == ANALYST]
    assert any(
        e.get("action") == "export" and "web site (csv)" in json.dumps(e) for e in reads
    ), reads[-5:]


def test_a_community_organization_sees_its_feeds_and_is_refused_the_crosswalk(
    site: Site,
) -> None:
    client = _signed_in(site, UPLOADER)
    with contextlib.closing(client):
        feeds = client.get("/feeds/mine")
        assert feeds.status_code == 200, feeds.text[:500]
        assert "rosters" in feeds.text  # its one feed
        assert "student-records" not in feeds.text  # a district's feed
        assert "Last received" in feeds.text and "Schedule" in feeds.text
        csv_feeds = client.get("/feeds/mine", params={"download": "feeds"})
        assert csv_feeds.status_code == 200 and "rosters" in csv_feeds.text
        # its role may not export microdata: the stage refuses, nothing leaks
        refused = client.get("/crosswalk/file")
        assert refused.status_code == 403, refused.text[:300]
        assert "local_id" not in refused.text
        _clean(refused)
        assert 'href="/crosswalk"' not in feeds.text  # not in its menu either
    analyst = _signed_in(site, ANALYST)
    with contextlib.closing(analyst):
        own = analyst.get("/crosswalk/file")
        assert own.status_code == 200
        assert own.text.splitlines()[0].replace('"', "") == "local_id,person_id"
        assert len(own.text.splitlines()) > 100


def test_a_partner_reads_its_own_digest_and_never_another_partners(
    site: Site,
) -> None:
    client = _signed_in(site, UPLOADER)
    with contextlib.closing(client):
        own = client.get("/digest")
        assert own.status_code == 200 and "Eastside Youth Center" in own.text
        assert "Late feeds" in own.text
        for path in ("/digest", "/digest/file"):
            other = client.get(path, params={"partner": "d01-northfield"})
            assert other.status_code in (403, 404), other.text[:300]
            assert "Northfield Public Schools" not in other.text
            _clean(other)
        text = client.get("/digest/file", params={"format": "txt"})
        assert text.status_code == 200 and "Eastside Youth Center" in text.text
    assert any(
        e.get("actor") == UPLOADER
        and e.get("decision") == "deny"
        and "digest of d01-northfield" in str(e.get("what"))
        for e in _audit(site)
    )


def test_a_funder_reads_its_initiatives_effects_with_intervals_and_suppressed_cells(
    site: Site,
) -> None:
    client = _signed_in(site, FUNDER)
    with contextlib.closing(client):
        page = _ready(client, "/outcomes")
        assert page.status_code == 200, page.text[:500]
        assert "Every Day Counts" in page.text and "Academic Boost" in page.text
        assert "Eastside After-School Club" in page.text
        assert INTERVAL.search(page.text)  # effects with their 95% intervals
        assert "baseline equivalence" in page.text
        # the demo suppresses the programs' participant counts (and some balance
        # rows): shown as suppressed with why, never as a number
        cells = re.findall(r'<span class="suppressed"[^>]*>([^<]*)</span>', page.text)
        assert cells and set(cells) == {"suppressed"}
        assert "too small to publish" in page.text
        assert 'src="data:image/svg+xml;base64,' in page.text  # server-side charts
        assert "None" not in re.sub(r"<[^>]+>", " ", page.text)
        side = client.get(
            "/outcomes", params={"download": "side-by-side", "format": "csv"}
        )
        assert side.status_code == 200 and "95% interval" in side.text
        # read again: the kept releases are shown, nothing is derived or released
        before = _releases(site)
        again = client.get("/outcomes")
        assert again.status_code == 200 and INTERVAL.search(again.text)
        assert _releases(site) == before
        # a funder sees no person: the roster and crosswalk are refused
        for path in ("/roster", "/crosswalk/file", "/feeds/mine"):
            refused = client.get(path)
            assert refused.status_code in (403, 404), (path, refused.text[:300])
            _clean(refused)
        assert 'href="/roster"' not in page.text


def test_the_scorecard_renders_for_a_funder_and_a_partner(site: Site) -> None:
    for user in (FUNDER, UPLOADER):
        client = _signed_in(site, user)
        with contextlib.closing(client):
            page = _ready(client, "/scorecard")
            assert page.status_code == 200, page.text[:500]
            assert "Shared-measurement scorecard" in page.text
            for label in ("Chronic absence", "Four-year graduation"):
                assert label in page.text
            # what the agreements do not give this reader says why, not a number
            assert "Not shown to you" in page.text or "release" in page.text
            assert 'href="/scorecard"' in page.text
            _clean(page)
            odd = client.get("/scorecard", params={"purpose": "marketing"})
            assert odd.status_code == 400


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"
)
def test_in_a_browser_the_funders_outcomes_and_the_analysts_roster(
    site: Site, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    REPORTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            funder = browser.new_page()
            _browser_sign_in(funder, site, FUNDER)
            funder.click("nav >> text=Outcomes")
            _visit(funder, funder.url)
            expect(funder.locator("h1")).to_contain_text("outcomes")
            expect(funder.locator("span.suppressed").first).to_be_visible()
            assert funder.locator("figure.chart img").count() >= 2
            funder.screenshot(
                path=str(REPORTS / "web-funder-outcomes.png"), full_page=True
            )
            analyst = browser.new_page(accept_downloads=True)
            _browser_sign_in(analyst, site, ANALYST)
            analyst.click("nav >> text=Early warning")
            analyst.select_option("#tier", "high risk")
            analyst.click("main form button[type=submit]")
            expect(analyst.locator("table tbody tr").first).to_contain_text("high risk")
            analyst.screenshot(
                path=str(REPORTS / "web-partner-roster.png"), full_page=True
            )
            with analyst.expect_download() as download:  # the filtered roster
                analyst.click("text=CSV")
            saved = tmp_path / "roster.csv"
            download.value.save_as(saved)
            assert "high risk" in saved.read_text(encoding="utf-8-sig")
            # every page of this area passes axe (no serious or critical finding)
            found: dict[str, list[str]] = {}
            for page, paths in (
                (funder, ("/outcomes", "/scorecard")),
                (analyst, ("/roster", "/feeds/mine", "/digest", "/what-we-get")),
            ):
                for path in paths:
                    _visit(page, site.url + path)
                    bad = serious_violations(page)
                    if bad:
                        found[path] = bad
            assert not found, found
        finally:
            browser.close()
