from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from backbone import Warehouse
from backbone.errors import InputFileError, UserError
from backbone.partners.agreements import lint_document, load_document
from backbone.partners.feeds import (
    DuePeriod,
    Feed,
    LateFeed,
    RecentSubmission,
    last_due,
)
from backbone.partners.status import (
    build_digest,
    digest_html,
    digest_text,
    partnership_status,
)

from .governance_fixtures import agreement, register_partners, write


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.init(tmp_path / "wh") as w:
        register_partners(w)
        with w.session() as s:
            w.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
        yield w


def _monthly_attendance(wh: Warehouse, since: date) -> None:
    """d1's monthly attendance feed under DSA-D1, expected from ``since``."""
    with wh.session() as s:
        wh.feeds.add(
            s,
            Feed(
                "d1",
                "attendance",
                ("attendance_event",),
                "monthly",
                "DSA-D1",
                None,
                since,
            ),
        )


@pytest.mark.parametrize(
    ("cadence", "on", "expected"),
    [
        ("monthly", date(2026, 11, 30), (date(2026, 10, 31), date(2026, 11, 15))),
        (
            "monthly",
            date(2026, 11, 15),
            (date(2026, 9, 30), date(2026, 10, 15)),
        ),  # late only after the due date
        ("monthly", date(2026, 11, 14), (date(2026, 9, 30), date(2026, 10, 15))),
        ("term", date(2026, 11, 30), (date(2026, 6, 30), date(2026, 7, 15))),
        ("term", date(2027, 2, 20), (date(2027, 1, 31), date(2027, 2, 15))),
        ("yearly", date(2026, 7, 14), (date(2025, 6, 30), date(2025, 7, 15))),
        ("yearly", date(2024, 7, 14), None),  # first period not yet due
    ],
)
def test_last_due_period_by_cadence(
    cadence: str, on: date, expected: tuple[date, date] | None
) -> None:
    assert last_due(cadence, date(2024, 9, 1), on, 7) == (
        DuePeriod(*expected) if expected else None
    )


@pytest.mark.parametrize(
    ("cadence", "start_month", "on", "expected"),
    [
        # school years from September: the year ends on August 31, the first term
        # with March
        ("yearly", 9, date(2026, 9, 20), (date(2026, 8, 31), date(2026, 9, 15))),
        ("term", 9, date(2026, 4, 20), (date(2026, 3, 31), date(2026, 4, 15))),
        # one calendar year
        ("yearly", 1, date(2026, 1, 20), (date(2025, 12, 31), date(2026, 1, 15))),
        ("monthly", 9, date(2026, 11, 30), (date(2026, 10, 31), date(2026, 11, 15))),
    ],
)
def test_yearly_and_term_feeds_follow_the_school_year(
    cadence: str, start_month: int, on: date, expected: tuple[date, date]
) -> None:
    assert last_due(cadence, date(2024, 9, 1), on, start_month) == DuePeriod(*expected)


def _submit(wh: Warehouse, partner: str, feed: str, at: datetime) -> None:
    wh._con.execute(
        "INSERT INTO ops.submission VALUES ((SELECT count(*) + 1 FROM ops.submission), ?, ?, 'f.csv', "
        "'abc', 10, 'raw/ab/abc', ?, 'loaded', 10, 9, 1, NULL, 0)",
        [partner, feed, at],
    )


def test_a_feed_is_late_until_something_arrives_after_the_period(wh: Warehouse) -> None:
    _monthly_attendance(wh, date(2026, 1, 1))
    on = date(2026, 11, 30)
    assert wh.feeds.late(on, school_year_start_month=7) == [
        LateFeed(wh.feeds.get("d1", "attendance"), date(2026, 11, 15), None)
    ]
    _submit(
        wh, "d1", "attendance", datetime(2026, 10, 20, 9, 0)
    )  # before October ended
    assert len(wh.feeds.late(on, school_year_start_month=7)) == 1
    _submit(wh, "d1", "attendance", datetime(2026, 11, 3, 9, 0))
    assert wh.feeds.late(on, school_year_start_month=7) == []


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        (
            Feed(
                "d1", "x", ("enrollment",), "weekly", "DSA-D1", None, date(2026, 1, 1)
            ),
            "Cadence 'weekly'",
        ),
        (
            Feed(
                "d1", "x", ("enrollment",), "term", "DSA-NONE", None, date(2026, 1, 1)
            ),
            "Unknown agreement",
        ),
        (
            Feed("c1", "x", ("enrollment",), "term", "DSA-D1", None, date(2026, 1, 1)),
            "covers data from d1",
        ),
        (
            Feed("zz", "x", ("enrollment",), "term", "DSA-D1", None, date(2026, 1, 1)),
            "Unknown partner 'zz'",
        ),
    ],
)
def test_bad_feeds_are_refused(wh: Warehouse, feed: Feed, message: str) -> None:
    with pytest.raises(UserError, match=message), wh.session() as s:
        wh.feeds.add(s, feed)
    assert wh.feeds.list() == []


REQUEST = {
    "request_id": "REQ-1",
    "requester": "f1",
    "title": "Outcomes of the clubs",
    "purpose": {
        "id": "initiative_outcomes",
        "description": "Compare participants with peers.",
    },
    "data": [
        {
            "provider": "c1",
            "entity": "program_participation",
            "fields": ["program_id", "begin_date"],
            "level": "aggregate",
        },
        {
            "provider": "d1",
            "entity": "attendance_event",
            "fields": ["event_date"],
            "level": "aggregate",
        },
    ],
    "begin": "2027-01-01",
    "end": "2028-06-30",
    "audience": ["Fund board"],
    "publication": "Annual brief, cells of 10 or more.",
}


def test_a_request_approved_by_every_provider_yields_draft_agreements(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        r = wh.requests.file(
            s, write(tmp_path / "req.yaml", REQUEST), on=date(2026, 11, 1)
        )
    assert (r.status, r.awaiting) == ("in_review", ["c1", "d1"])
    with wh.session() as s:
        r = wh.requests.review(
            s,
            "REQ-1",
            provider="c1",
            decision="approve",
            fit=4,
            protections=3,
            minimum_necessary=4,
            on=date(2026, 11, 5),
        )
    assert r.status == "in_review" and r.awaiting == ["d1"] and r.drafts == ()
    with wh.session() as s:
        r = wh.requests.review(
            s,
            "REQ-1",
            provider="d1",
            decision="approve_with_conditions",
            fit=3,
            protections=3,
            minimum_necessary=2,
            on=date(2026, 11, 9),
            conditions="No school-level cells below 20.",
        )
    assert r.status == "approved"
    assert r.drafts == ("DUL-REQ-1-c1", "DUL-REQ-1-d1")
    for draft_id in r.drafts:
        path = wh.path / "agreements" / "drafts" / f"{draft_id}.yaml"
        doc = load_document(path)
        assert doc.parties.licensees == ("f1",)
        assert doc.recipients[0].access.value == "aggregate"
        assert [f for f in lint_document(doc) if f.severity.value == "error"] == []
    assert (
        "No school-level cells below 20."
        in (wh.path / "agreements/drafts/DUL-REQ-1-d1.yaml").read_text()
    )
    # the draft, once signed, records like any agreement
    signed = yaml.safe_load(
        (wh.path / "agreements/drafts/DUL-REQ-1-c1.yaml").read_text()
    )
    signed["signatories"] = [
        {"partner": p, "name": "X", "signed": "2026-12-01"} for p in ("c1", "b0", "f1")
    ]
    with wh.session() as s:
        assert (
            wh.agreements.add(s, write(tmp_path / "signed.yaml", signed)).status
            == "approved"
        )


def test_a_decline_closes_the_request(wh: Warehouse, tmp_path: Path) -> None:
    with wh.session() as s:
        wh.requests.file(s, write(tmp_path / "req.yaml", REQUEST), on=date(2026, 11, 1))
    with wh.session() as s:
        r = wh.requests.review(
            s,
            "REQ-1",
            provider="d1",
            decision="decline",
            fit=1,
            protections=2,
            minimum_necessary=1,
            on=date(2026, 11, 2),
            comments="Not the minimum necessary.",
        )
    assert r.status == "declined"
    with pytest.raises(UserError, match="reviews are closed"), wh.session() as s:
        wh.requests.review(
            s,
            "REQ-1",
            provider="c1",
            decision="approve",
            fit=4,
            protections=4,
            minimum_necessary=4,
            on=date(2026, 11, 3),
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "maybe"}, "not one of approve"),
        ({"fit": 5}, "from 1 \\(poor\\) to 4"),
        ({"decision": "approve_with_conditions"}, "needs the conditions"),
        ({"provider": "a1"}, "provides none of the data"),
    ],
)
def test_bad_reviews_are_refused(
    wh: Warehouse, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with wh.session() as s:
        wh.requests.file(s, write(tmp_path / "req.yaml", REQUEST), on=date(2026, 11, 1))
    args: dict[str, object] = dict(
        provider="c1",
        decision="approve",
        fit=3,
        protections=3,
        minimum_necessary=3,
        on=date(2026, 11, 5),
    )
    args.update(kwargs)
    with pytest.raises(UserError, match=message), wh.session() as s:
        wh.requests.review(s, "REQ-1", **args)  # type: ignore[arg-type]
    assert wh.requests.get("REQ-1").reviews == ()


def test_bad_requests_are_refused(wh: Warehouse, tmp_path: Path) -> None:
    with (
        pytest.raises(InputFileError, match="unknown partner 'zz'"),
        wh.session() as s,
    ):
        wh.requests.file(
            s,
            write(tmp_path / "r.yaml", {**REQUEST, "requester": "zz"}),
            on=date(2026, 11, 1),
        )
    with (
        pytest.raises(InputFileError, match="end \\(2020-01-01\\) is before begin"),
        wh.session() as s,
    ):
        wh.requests.file(
            s,
            write(tmp_path / "r.yaml", {**REQUEST, "end": "2020-01-01"}),
            on=date(2026, 11, 1),
        )
    assert wh.requests.list() == []


def test_status_and_digest_show_what_to_chase(wh: Warehouse, tmp_path: Path) -> None:
    on = date(2027, 5, 15)
    with wh.session() as s:
        wh.commitments.add(
            s,
            "Collect <graduate> lists",
            owner="d1",
            owner_person="Ana",
            counterpart="a1",
            due=date(2027, 4, 1),
            made_on=date(2027, 3, 1),
        )
    with wh.session() as s:
        wh.commitments.add(
            s,
            "Match the lists",
            owner="a1",
            counterpart="d1",
            due=date(2027, 6, 1),
            made_on=date(2027, 3, 1),
        )
    _monthly_attendance(wh, date(2026, 9, 1))
    with wh.session() as s:
        wh.requests.file(s, write(tmp_path / "req.yaml", REQUEST), on=date(2027, 5, 1))
    v2 = agreement()
    v2["purposes"].append({"id": "college_outcomes", "description": "x"})
    with wh.session() as s:
        wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v2.yaml", v2),
            effective=date(2027, 6, 1),
            summary="Widen.",
        )
    # a file of another feed: the attendance feed stays late
    _submit(wh, "d1", "roster", datetime(2027, 5, 3, 9, 0))

    status = partnership_status(wh, on)
    assert [v.ref for v in status.expiring] == ["DSA-D1@1"]  # ends 2027-06-30
    assert [v.ref for v in status.pending] == ["DSA-D1@2"]
    assert list(status.overdue) == ["d1"]
    assert [f.feed.feed_id for f in status.late_feeds] == ["attendance"]
    assert [r.request_id for r in status.requests] == ["REQ-1"]
    last = {s.partner_id: s.received_at for s in status.last_submissions}
    assert last["d1"] == datetime(2027, 5, 3, 9, 0)

    digest = build_digest(wh, "d1", on)
    assert digest.submissions == [
        RecentSubmission(
            datetime(2027, 5, 3, 9, 0), "roster", "f.csv", "loaded", 10, 9, 1
        )
    ]
    assert [f.feed.feed_id for f in digest.late_feeds] == ["attendance"]
    text = digest_text(digest)
    assert (
        "2027-05-03 roster: f.csv — loaded; 10 rows read, 9 loaded, 1 quarantined"
        in text
    )
    assert (
        "#1 Collect <graduate> lists — OVERDUE by 44 days (due 2027-04-01), owed to a1"
        in text
    )
    assert "#2 Match the lists — a1 (no one named), due 2027-06-01" in text
    assert (
        "attendance (monthly: attendance_event) was due 2027-04-15; never received"
        in text
    )
    assert "DSA-D1@2 (widening, effective 2027-06-01): Widen." in text
    assert "REQ-1 from f1" in text
    page = digest_html(digest)
    assert "&lt;graduate&gt;" in page and "<graduate>" not in page
    assert "http" not in page  # self-contained: nothing to fetch


def test_a_feed_under_an_ended_agreement_is_not_late(wh: Warehouse) -> None:
    _monthly_attendance(wh, date(2026, 1, 1))
    assert partnership_status(wh, date(2027, 6, 1)).late_feeds != []
    assert (
        partnership_status(wh, date(2027, 9, 1)).late_feeds == []
    )  # DSA-D1 ended 2027-06-30


def test_feeds_carry_canonical_entities(wh: Warehouse) -> None:
    with pytest.raises(UserError, match="nonsense is not one"), wh.session() as s:
        wh.feeds.add(
            s,
            Feed("d1", "x", ("nonsense",), "term", "DSA-D1", None, date(2026, 1, 1)),
        )


def test_drafts_are_named_by_the_whole_partner_id(tmp_path: Path) -> None:
    from backbone.partners import Partner

    with Warehouse.init(tmp_path / "wh2") as w:
        for p in (
            Partner("b0", "B", "backbone"),
            Partner("city-schools", "S", "school_district"),
            Partner("city-parks", "P", "community_organization"),
            Partner("f1", "F", "funder"),
        ):
            with w.session() as s:
                w.partners.add(s, p)
        doc = {
            **REQUEST,
            "data": [
                {
                    "provider": "city-schools",
                    "entity": "enrollment",
                    "fields": ["school_id"],
                    "level": "aggregate",
                },
                {
                    "provider": "city-parks",
                    "entity": "program_participation",
                    "fields": ["program_id"],
                    "level": "aggregate",
                },
            ],
        }
        with w.session() as s:
            w.requests.file(s, write(tmp_path / "r.yaml", doc), on=date(2026, 11, 1))
        for provider in ("city-parks", "city-schools"):
            with w.session() as s:
                r = w.requests.review(
                    s,
                    "REQ-1",
                    provider=provider,
                    decision="approve",
                    fit=3,
                    protections=3,
                    minimum_necessary=3,
                    on=date(2026, 11, 2),
                )
        assert r.drafts == ("DUL-REQ-1-city-parks", "DUL-REQ-1-city-schools")
        assert len(list((w.path / "agreements" / "drafts").iterdir())) == 2
