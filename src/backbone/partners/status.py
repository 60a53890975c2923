"""The partnership at a glance, and each partner's weekly digest.

``partnership_status`` gathers what a steward must chase: agreements expiring or
awaiting approval, overdue commitments by owner, late feeds, each partner's last
submission, requests awaiting review. ``build_digest`` cuts the same facts for one
partner; ``digest_text`` and ``digest_html`` render it to send (the HTML is
self-contained: no external assets).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from backbone.partners.agreements.store import AgreementRegistry, VersionRecord
from backbone.partners.commitments import Commitment, CommitmentBook
from backbone.partners.feeds import (
    DuePeriod,
    Feed,
    FeedRegistry,
    LateFeed,
    RecentSubmission,
    last_due,
)
from backbone.partners.registry import PartnerRegistry
from backbone.partners.requests import DataRequest, RequestBook
from backbone.settings import Settings

__all__ = [
    "Digest",
    "LastSubmission",
    "OwnFeed",
    "PartnershipStatus",
    "build_digest",
    "digest_html",
    "digest_sections",
    "digest_text",
    "feed_states",
    "late_feeds",
    "partnership_status",
]

EXPIRY_WINDOW_DAYS = 60
RECENT_DAYS = 30


class Partnership(Protocol):
    """The partner stages the status reads (a ``Warehouse`` is one); named here so
    that this package does not depend on the warehouse above it."""

    @property
    def partners(self) -> PartnerRegistry: ...
    @property
    def agreements(self) -> AgreementRegistry: ...
    @property
    def commitments(self) -> CommitmentBook: ...
    @property
    def feeds(self) -> FeedRegistry: ...
    @property
    def requests(self) -> RequestBook: ...
    @property
    def settings(self) -> Settings: ...


@dataclass(frozen=True)
class LastSubmission:
    """When a partner last sent anything."""

    partner_id: str
    name: str
    received_at: datetime | None
    """None: never"""


@dataclass(frozen=True)
class PartnershipStatus:
    on: date
    expiring: list[VersionRecord]
    pending: list[VersionRecord]
    overdue: dict[str, list[Commitment]]
    """open commitments past due, by the partner that owes them"""
    late_feeds: list[LateFeed]
    last_submissions: list[LastSubmission]
    requests: list[DataRequest]


def _covered(
    wh: Partnership,
    on: date,
    histories: dict[str, list[VersionRecord]] | None = None,
) -> Callable[[str], bool]:
    states = wh.agreements.states(on, histories)  # read once for every feed

    def covered(agreement_id: str) -> bool:
        # a suspended agreement's feed is still owed: only its dates matter here
        state = states.get(agreement_id)
        return state is not None and state.in_term

    return covered


def late_feeds(
    wh: Partnership,
    on: date,
    histories: dict[str, list[VersionRecord]] | None = None,
) -> list[LateFeed]:
    """Feeds late on ``on`` (not those whose agreement has ended: they are over),
    with the due date missed and the last submission; one rule for every door."""
    return wh.feeds.late(
        on,
        _covered(wh, on, histories),
        school_year_start_month=wh.settings["calendar.school_year_start_month"],
    )


@dataclass(frozen=True)
class OwnFeed:
    """One feed as its partner sees it: what is owed, when it last came, and
    whether it is late (by :func:`late_feeds`' rule)."""

    feed: Feed
    last_received: datetime | None
    """the feed's last submission (None: never)"""
    last_due: DuePeriod | None
    """the last period whose data is due by the day asked (None: none yet)"""
    late: LateFeed | None
    """set when the feed is late on the day asked"""


def feed_states(
    wh: Partnership, on: date, partner_id: str | None = None
) -> list[OwnFeed]:
    """Every feed of ``partner_id`` (None: of every partner) on ``on``: its last
    file, its last due date, and whether it is late."""
    start = wh.settings["calendar.school_year_start_month"]
    late = {
        (f.feed.partner_id, f.feed.feed_id): f
        for f in late_feeds(wh, on)
        if partner_id is None or f.feed.partner_id == partner_id
    }
    return [
        OwnFeed(
            feed,
            wh.feeds.last_submission(feed.partner_id, feed.feed_id),
            last_due(feed.cadence, feed.since, on, start),
            late.get((feed.partner_id, feed.feed_id)),
        )
        for feed in wh.feeds.list(partner_id)
    ]


def partnership_status(wh: Partnership, on: date) -> PartnershipStatus:
    overdue: dict[str, list[Commitment]] = {}
    for c in wh.commitments.list(on=on, overdue=True):
        overdue.setdefault(c.owner_partner_id, []).append(c)
    received = wh.feeds.last_submissions()
    last = [
        LastSubmission(p.partner_id, p.name, received.get(p.partner_id))
        for p in wh.partners.list()
        if p.kind not in ("backbone", "funder")
    ]
    histories = wh.agreements.histories()  # read once for all that follows
    return PartnershipStatus(
        on=on,
        expiring=wh.agreements.expiring(on, EXPIRY_WINDOW_DAYS, histories),
        pending=wh.agreements.pending(histories),
        overdue=overdue,
        late_feeds=late_feeds(wh, on, histories),
        last_submissions=last,
        requests=wh.requests.list(status="in_review"),
    )


@dataclass(frozen=True)
class Digest:
    partner_id: str
    partner_name: str
    on: date
    owes: list[Commitment] = field(default_factory=list)
    owed: list[Commitment] = field(default_factory=list)
    late_feeds: list[LateFeed] = field(default_factory=list)
    submissions: list[RecentSubmission] = field(default_factory=list)
    approvals: list[VersionRecord] = field(default_factory=list)
    reviews: list[DataRequest] = field(default_factory=list)
    expiring: list[VersionRecord] = field(default_factory=list)


def build_digest(wh: Partnership, partner_id: str, on: date) -> Digest:
    partner = wh.partners.get(partner_id)
    return Digest(
        partner_id,
        partner.name,
        on,
        owes=wh.commitments.list(on=on, owner=partner_id, open_only=True),
        owed=wh.commitments.list(on=on, counterpart=partner_id, open_only=True),
        late_feeds=[f for f in late_feeds(wh, on) if f.feed.partner_id == partner_id],
        submissions=wh.feeds.recent_submissions(
            partner_id, on - timedelta(days=RECENT_DAYS)
        ),
        approvals=[v for v in wh.agreements.pending() if partner_id in v.awaiting],
        reviews=[
            r
            for r in wh.requests.list()
            if r.status == "in_review" and partner_id in r.awaiting
        ],
        expiring=[
            v
            for v in wh.agreements.expiring(on, EXPIRY_WINDOW_DAYS)
            if partner_id in v.document.parties.all()
        ],
    )


def _due(c: Commitment, on: date) -> str:
    if c.overdue(on):
        return f"OVERDUE by {c.days_late(on)} days (due {c.due_date})"
    return f"due {c.due_date}"


def _sections(d: Digest) -> list[tuple[str, list[str]]]:
    on = d.on
    return [
        (
            "What you promised",
            [
                f"#{c.commitment_id} {c.title} — {_due(c, on)}"
                + (
                    f", owed to {c.counterpart_partner_id}"
                    if c.counterpart_partner_id
                    else ""
                )
                for c in d.owes
            ],
        ),
        (
            "What others promised you",
            [
                f"#{c.commitment_id} {c.title} — {c.owner_partner_id} ({c.owner_person or 'no one named'}), {_due(c, on)}"
                for c in d.owed
            ],
        ),
        (
            "Late feeds",
            [
                f"{late.feed.feed_id} ({late.feed.cadence}: "
                f"{', '.join(late.feed.entities)}) was due {late.due}; "
                + (
                    f"last received {late.last_received:%Y-%m-%d}"
                    if late.last_received
                    else "never received"
                )
                for late in d.late_feeds
            ],
        ),
        (
            f"Your submissions in the last {RECENT_DAYS} days",
            [
                f"{u.received_at:%Y-%m-%d} {u.feed}: {u.file_name} — {u.status}; "
                f"{u.rows_read or 0} rows read, {u.rows_loaded or 0} loaded, "
                f"{u.rows_quarantined or 0} quarantined"
                for u in d.submissions
            ],
        ),
        (
            "Agreements awaiting your approval",
            [
                f"{v.ref} ({v.change_class}, effective {v.effective_from}): {v.summary}"
                for v in d.approvals
            ],
        ),
        (
            "Data-use requests awaiting your review",
            [
                f"{r.request_id} from {r.requester}: {r.title} (filed {r.filed_on})"
                for r in d.reviews
            ],
        ),
        (
            "Agreements ending soon",
            [f"{v.ref} ends {v.document.effective_to}" for v in d.expiring],
        ),
    ]


def digest_sections(d: Digest) -> list[tuple[str, list[str]]]:
    """The digest's sections, each a title and its lines, as the text and HTML
    forms say them (for a door that renders the digest in its own page)."""
    return _sections(d)


def digest_text(d: Digest) -> str:
    lines = [f"Backbone digest for {d.partner_name} ({d.partner_id}), {d.on}", ""]
    for title, items in _sections(d):
        lines.append(f"{title}:")
        lines += [f"  - {item}" for item in items] or ["  (none)"]
        lines.append("")
    return "\n".join(lines)


def digest_html(d: Digest) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Backbone digest: {e(d.partner_name)} {d.on}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
        "color:#1d2733}h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.4rem}"
        ".late{color:#a4161a;font-weight:600}.none{color:#6b7785}</style></head><body>",
        f"<h1>Backbone digest for {e(d.partner_name)}</h1><p>{d.on}</p>",
    ]
    for title, items in _sections(d):
        parts.append(f"<h2>{e(title)}</h2>")
        if not items:
            parts.append("<p class='none'>None.</p>")
            continue
        parts.append("<ul>")
        for item in items:
            css = (
                " class='late'" if "OVERDUE" in item or "never received" in item else ""
            )
            parts.append(f"<li{css}>{e(item)}</li>")
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
