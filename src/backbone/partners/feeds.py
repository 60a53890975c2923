"""Feeds: the datasets each partner has agreed to send, how often, under which agreement.

A feed's periods follow its cadence; each period's data is due a grace period after
the period ends. A feed is *late* when the last due date has passed and nothing was
submitted for it since that period ended.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from backbone.engines import Connection
from backbone.errors import NotFoundError, UserError
from backbone.ids import checked_id
from backbone.model.calendar import school_year_bounds, school_year_of
from backbone.session import Session

__all__ = [
    "CADENCES",
    "DuePeriod",
    "Feed",
    "FeedRegistry",
    "LateFeed",
    "RecentSubmission",
    "last_due",
]

CADENCES = ("monthly", "term", "yearly")
MODES = ("replace-period", "append")
GRACE_DAYS = 15


@dataclass(frozen=True)
class Feed:
    partner_id: str
    feed_id: str
    entities: tuple[str, ...]
    cadence: str
    agreement_id: str
    description: str | None
    since: date
    mode: str = "replace-period"
    """replace-period: a new file replaces this feed's rows of the school years it
    covers (never another feed's rows of the same entity); append: new rows are
    added to what is there."""


@dataclass(frozen=True)
class DuePeriod:
    """A feed's period whose data is due."""

    period_end: date
    due: date
    """the period's end plus the grace days"""


@dataclass(frozen=True)
class LateFeed:
    """A feed whose data was due and has not come."""

    feed: Feed
    due: date
    """the due date missed (the last period's end plus the grace days)"""
    last_received: datetime | None
    """the feed's last submission, before that period ended (None: never)"""


@dataclass(frozen=True)
class RecentSubmission:
    """A file a partner sent, as its digest lists it."""

    received_at: datetime
    feed: str
    file_name: str
    status: str
    rows_read: int | None
    rows_loaded: int | None
    rows_quarantined: int | None


def _first_term_end(first_day: date) -> date:
    """A school year's first term ends with its seventh month (January for a
    school year starting in July)."""
    month = first_day.month - 1 + 7
    return date(first_day.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _period_ends(cadence: str, since: date, on: date, start_month: int) -> list[date]:
    """Ends of the periods between ``since`` and ``on`` (inclusive of partial ones):
    calendar months, or the terms or whole of each school year."""
    ends: list[date] = []
    if cadence == "monthly":
        for year in range(since.year - 1, on.year + 1):
            ends += [date(year, m, 1) - timedelta(days=1) for m in range(2, 13)]
            ends.append(date(year, 12, 31))
    else:
        first_year = school_year_of(since, start_month)
        for year in range(first_year, school_year_of(on, start_month) + 1):
            first_day, last_day = school_year_bounds(year, start_month)
            if cadence == "term":
                ends.append(_first_term_end(first_day))
            ends.append(last_day)
    return sorted(d for d in ends if since <= d)


def last_due(cadence: str, since: date, on: date, start_month: int) -> DuePeriod | None:
    """The last period whose data is due by ``on`` (None before the first is);
    school years start in ``start_month`` (``calendar.school_year_start_month``)."""
    due = [
        DuePeriod(end, end + timedelta(days=GRACE_DAYS))
        for end in _period_ends(cadence, since, on, start_month)
    ]
    due = [d for d in due if d.due < on]
    return due[-1] if due else None


class FeedRegistry:
    def __init__(self, con: Connection) -> None:
        self._con = con

    def add(self, s: Session, feed: Feed) -> None:
        """Declare a dataset a partner has agreed to send (a steward admin)."""
        s.require(
            "administer",
            f"declare the feed {feed.partner_id}/{feed.feed_id}",
            action="feed",
            providers=(feed.partner_id,),
        )
        con = s.con
        checked_id(feed.feed_id, "feed id")
        if feed.mode not in MODES:
            raise UserError(f"Mode {feed.mode!r} is not one of {', '.join(MODES)}.")
        if feed.cadence not in CADENCES:
            raise UserError(
                f"Cadence {feed.cadence!r} is not one of {', '.join(CADENCES)}."
            )
        if not con.execute(
            "SELECT 1 FROM ref.partner WHERE partner_id = ?", [feed.partner_id]
        ).fetchone():
            raise UserError(
                f"Unknown partner {feed.partner_id!r}; `backbone partner list` shows them."
            )
        provider = con.execute(
            "SELECT provider_partner_id FROM gov.agreement_version WHERE agreement_id = ? LIMIT 1",
            [feed.agreement_id],
        ).fetchone()
        if provider is None:
            raise UserError(
                f"Unknown agreement {feed.agreement_id!r}; a feed must be covered by a recorded agreement."
            )
        if provider[0] != feed.partner_id:
            raise UserError(
                f"Agreement {feed.agreement_id} covers data from {provider[0]}, not {feed.partner_id}."
            )
        from backbone.partners.agreements.document import SHAREABLE

        unknown = [e for e in feed.entities if e not in SHAREABLE]
        if unknown or not feed.entities:
            raise UserError(
                f"A feed carries canonical entities; {', '.join(unknown) or '(none)'} is not "
                f"one. Use: {', '.join(sorted(SHAREABLE))}."
            )
        if con.execute(
            "SELECT 1 FROM gov.feed WHERE partner_id = ? AND feed_id = ?",
            [feed.partner_id, feed.feed_id],
        ).fetchall():
            raise UserError(f"{feed.partner_id} already has a feed {feed.feed_id!r}.")
        con.execute(
            "INSERT INTO gov.feed (partner_id, feed_id, entities, cadence, agreement_id, "
            "description, since, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                feed.partner_id,
                feed.feed_id,
                list(feed.entities),
                feed.cadence,
                feed.agreement_id,
                feed.description,
                feed.since,
                feed.mode,
            ],
        )
        s.record(
            "feed",
            f"feed {feed.partner_id}/{feed.feed_id} ({feed.cadence}: "
            f"{', '.join(feed.entities)}) under {feed.agreement_id}",
            providers=(feed.partner_id,),
            agreements=(feed.agreement_id,),
        )

    def list(self, partner_id: str | None = None) -> list[Feed]:
        rows = self._con.execute(
            "SELECT partner_id, feed_id, entities, cadence, agreement_id, description, since, mode "
            "FROM gov.feed WHERE ? IS NULL OR partner_id = ? ORDER BY partner_id, feed_id",
            [partner_id, partner_id],
        ).fetchall()
        return [
            Feed(r[0], r[1], tuple(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows
        ]

    def get(self, partner_id: str, feed_id: str) -> Feed:
        for feed in self.list(partner_id):
            if feed.feed_id == feed_id:
                return feed
        raise NotFoundError(
            f"{partner_id} has no feed {feed_id!r}; `backbone feed list` shows them."
        )

    def last_submission(
        self, partner_id: str, feed_id: str | None = None
    ) -> datetime | None:
        row = self._con.execute(
            "SELECT max(received_at) FROM ops.submission WHERE partner_id = ? "
            "AND (? IS NULL OR feed = ?)",
            [partner_id, feed_id, feed_id],
        ).fetchone()
        return row[0] if row else None

    def last_submissions(self) -> dict[str, datetime]:
        """Each partner's last submission, read at once."""
        return dict(
            self._con.execute(
                "SELECT partner_id, max(received_at) FROM ops.submission GROUP BY ALL"
            ).fetchall()
        )

    def recent_submissions(
        self, partner_id: str, since: date
    ) -> builtins.list[RecentSubmission]:
        """The partner's submissions received since ``since``, newest first."""
        rows = self._con.execute(
            "SELECT received_at, feed, file_name, status, rows_read, rows_loaded, "
            "rows_quarantined FROM ops.submission "
            "WHERE partner_id = ? AND received_at >= ? ORDER BY received_at DESC",
            [partner_id, since],
        ).fetchall()
        return [RecentSubmission(*r) for r in rows]

    def late(
        self,
        on: date,
        covered: Callable[[str], bool] | None = None,
        *,
        school_year_start_month: int,
    ) -> builtins.list[LateFeed]:
        """Late feeds with the due date missed and the last submission (if any).

        ``covered(agreement_id)`` tells whether the feed's agreement still runs on
        ``on``; a feed under an ended agreement is not late, it is over. Yearly and
        term feeds follow the school year (``calendar.school_year_start_month``).
        """
        out = []
        latest = {  # each feed's last submission, read at once
            (partner, feed): at
            for partner, feed, at in self._con.execute(
                "SELECT partner_id, feed, max(received_at) FROM ops.submission "
                "GROUP BY ALL"
            ).fetchall()
        }
        for feed in self.list():
            if covered is not None and not covered(feed.agreement_id):
                continue
            due = last_due(feed.cadence, feed.since, on, school_year_start_month)
            if due is None:
                continue
            last = latest.get((feed.partner_id, feed.feed_id))
            if last is None or last.date() <= due.period_end:
                out.append(LateFeed(feed, due.due, last))
        return out
