"""The audit trail: an append-only, hash-chained log of every disclosure.

Each entry is canonical JSON (sorted keys, no spaces), and its hash is
``SHA-256(prev_hash || entry)``, so editing, deleting or reordering any entry breaks
every later link. :meth:`AuditLog.verify` walks the chain and names the first entry
that does not hold. A steward with write access to the database file could rewrite
the whole chain; the chain head printed by :meth:`AuditLog.head` (and in every
partner's disclosure report) is the anchor that exposes that: a partner who kept an
earlier head can check it with ``verify(anchor=...)``.

The log also serves FERPA's recordation requirement (34 CFR 99.32): :meth:`report`
lists every disclosure of one partner's data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from backbone.engines import Connection
from backbone.errors import Forbidden
from backbone.session import AuditEntry, Session
from backbone.spreadsheet import formula_safe

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditHead",
    "AuditLog",
    "AuditPage",
    "Disclosure",
    "DisclosureReport",
    "LoggedEntry",
    "StewardCheck",
    "Verification",
    "canonical_json",
    "chain_hash",
    "disclosure_csv",
    "last_change",
]

GENESIS = "0" * 64
# the most entries one page of the log shows (the web door's /audit)
AUDIT_PAGE_LIMIT = 500
# Actions that put a partner's data in someone's hands (recordation).
DISCLOSING = ("read", "export", "release", "link")
# Entries that record what happened rather than a change: kept even when the unit of
# work they were written in rolls back.
SURVIVES_ROLLBACK = frozenset({"read", "export", "release", "login"})
# entries that record a disclosure, not a change of what the warehouse holds
NOT_CHANGES = SURVIVES_ROLLBACK | {"publish"}


def canonical_json(value: Any) -> str:
    """RFC 8785-style canonical form: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def chain_hash(prev_hash: str, entry: str) -> str:
    return hashlib.sha256((prev_hash + entry).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditHead:
    """The chain's newest entry: the anchor a partner keeps, written ``SEQ:HASH``, to
    check later (``verify(anchor=...)``) that the history up to it was not rewritten."""

    seq: int
    """Its sequence number (entries are numbered from 1 without gaps, so in an intact
    chain also the number of entries); 0 for an empty log."""
    hash: str
    """Its chain hash (:data:`GENESIS` for an empty log)."""

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        """An anchor written ``SEQ:HASH`` (as ``backbone audit head`` prints it);
        ValueError if it is not one."""
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise ValueError(f"{text!r} is not SEQ:HASH")
        return cls(int(seq), digest)


def last_change(con: Connection) -> int:
    """The sequence number of the newest entry that records a change (not a read, a
    release, a publication, a sign-in or a refusal); 0 if none. Every write leaves one, so a long job
    that hands the file back while it computes compares it before and after to know
    whether anyone changed anything meanwhile."""
    row = con.execute(
        "SELECT coalesce(max(seq), 0) FROM gov.audit_log "
        "WHERE json_extract_string(entry, '$.decision') = 'allow' "
        "AND NOT list_contains(?, json_extract_string(entry, '$.action'))",
        [sorted(NOT_CHANGES)],
    ).fetchall()
    return int(row[0][0])


def _head(con: Connection) -> AuditHead:
    row = con.execute(
        "SELECT seq, row_hash FROM gov.audit_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return AuditHead(int(row[0]), str(row[1])) if row else AuditHead(0, GENESIS)


@dataclass(frozen=True, kw_only=True)
class LoggedEntry(AuditEntry):
    """An entry as the log holds it: what it records, its place in the chain and
    when it was written. ``entry["field"]`` reads it as stored (canonical JSON: lists
    for the tuples, the time as ISO text)."""

    seq: int
    at: datetime

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> LoggedEntry:
        """The entry of a stored text, parsed (entries older than a field lack it)."""
        return cls(
            str(stored["action"]),
            str(stored["actor"]),
            decision=str(stored.get("decision", "allow")),
            reason=str(stored.get("reason") or ""),
            actor_partner=stored.get("actor_partner"),
            on_behalf_of=stored.get("on_behalf_of"),
            purpose=stored.get("purpose"),
            agreements=tuple(stored.get("agreements") or ()),
            providers=tuple(stored.get("providers") or ()),
            what=str(stored.get("what") or ""),
            rows=stored.get("rows"),
            cells=stored.get("cells"),
            suppressed=stored.get("suppressed"),
            epsilon=stored.get("epsilon"),
            destination=stored.get("destination"),
            detail=dict(stored.get("detail") or {}),
            seq=int(stored["seq"]),
            at=datetime.fromisoformat(str(stored["at"])),
        )

    def as_json(self) -> dict[str, Any]:
        """The entry as stored."""
        return self.as_dict(self.at, self.seq)

    def __getitem__(self, name: str) -> Any:
        return self.as_json()[name]


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    """The sequence number of the first entry that does not hold."""
    problem: str = ""


class StewardCheck(Protocol):
    """Who asks for the steward's own records (the log, the users, retention):
    :class:`~backbone.governance.access.Access` refuses anyone but the steward
    whose role may do ``operation``, and audits the refusal."""

    def require_steward(self, operation: str, what: str) -> None: ...


@dataclass(frozen=True)
class AuditPage:
    """One page of the log, newest first (:meth:`AuditLog.page_for`)."""

    entries: tuple[LoggedEntry, ...]
    head: AuditHead
    older: int | None
    """``before`` for the next older page (None: this page reaches entry 1)"""
    newer: int | None
    """``before`` for the next newer page (None: this page starts at the head)"""


@dataclass(frozen=True)
class Disclosure:
    """One disclosure of a partner's data: a read, an export, a release or a link."""

    seq: int
    at: datetime
    action: str
    actor: str
    actor_partner: str | None
    purpose: str | None
    agreements: tuple[str, ...]
    what: str
    rows: int | None
    """the partner's rows disclosed (not the other providers' of the same read)"""
    cells: int | None
    suppressed: int | None
    destination: str | None


@dataclass(frozen=True)
class DisclosureReport:
    partner: str
    disclosures: tuple[Disclosure, ...]
    head: AuditHead
    """The chain's newest entry when it was made: the anchor a partner keeps to
    check later that this history was not rewritten."""


DISCLOSURE_COLUMNS = (
    "seq",
    "at",
    "action",
    "what",
    "who",
    "partner",
    "purpose",
    "agreements",
    "rows",
    "cells",
    "suppressed",
    "destination",
)


def disclosure_csv(report: DisclosureReport) -> bytes:
    """The report as a CSV file (UTF-8, one row per disclosure) to hand the partner."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(DISCLOSURE_COLUMNS)
    for e in report.disclosures:
        writer.writerow(
            formula_safe(str(cell)) if isinstance(cell, str) else cell
            for cell in [
                e.seq,
                _timestamp(e.at),
                e.action,
                e.what,
                e.actor,
                e.actor_partner,
                e.purpose,
                " ".join(e.agreements),
                e.rows,
                e.cells,
                e.suppressed,
                e.destination,
            ]
        )
    return text.getvalue().encode("utf-8")


def _timestamp(at: datetime) -> str:
    """A time as the log writes it."""
    return at.isoformat(timespec="microseconds")


class AuditLog:
    """``wh.audit``: append, verify, report."""

    def __init__(
        self,
        con: Connection,
        clock: Callable[[], datetime],
        lock: threading.RLock | None = None,
    ) -> None:
        self._con = con
        self._clock = clock
        # the warehouse's unit-of-work lock: while a session is open (its entries
        # uncommitted on its cursor), no other thread may append, or two entries
        # would take the same place in the chain
        self._lock = lock or threading.RLock()
        self.active: Session | None = None
        """The open unit of work, if any (set by the warehouse)."""
        self._changes_seen = (0, 0)  # (entries read up to, last change among them)

    def last_change(self) -> int:
        """:func:`last_change`, reading only the entries committed since the last
        time asked, so that asking on every page view costs the same however long
        the log is. Entries are appended under the unit-of-work lock, one
        transaction at a time, so none ever appears below one already read."""
        with self._lock:
            seen, last = self._changes_seen
            row = self._con.execute(
                "SELECT max(seq), max(seq) FILTER ("
                "json_extract_string(entry, '$.decision') = 'allow' "
                "AND NOT list_contains(?, json_extract_string(entry, '$.action'))) "
                "FROM gov.audit_log WHERE seq > ?",
                [sorted(NOT_CHANGES), seen],
            ).fetchall()[0]
            if row[0] is not None:
                self._changes_seen = (int(row[0]), int(row[1] or last))
            return self._changes_seen[1]

    def append(self, entry: AuditEntry, con: Connection | None = None) -> int:
        """Add one entry at the head of the chain; returns its sequence number.
        ``con`` is a session's cursor when the entry belongs to its transaction.

        An entry written while a unit of work is open goes into the unit's
        transaction (the chain has one head); one that records a disclosure or a
        refusal rather than a change is also kept aside, so that it is written again
        if the unit rolls back: a read is never unrecorded."""
        with self._lock:
            active = self.active
            if active is not None and (con is None or con is active.con):
                con = active.con
                if entry.decision == "deny" or entry.action in SURVIVES_ROLLBACK:
                    active.kept.append(entry)
            con = con or self._con
            head = con.execute(
                "SELECT seq, row_hash FROM gov.audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS)
            text = canonical_json(entry.as_dict(self._clock(), seq))
            con.execute(
                "INSERT INTO gov.audit_log VALUES (?, ?, ?, ?)",
                [seq, text, prev, chain_hash(prev, text)],
            )
            return seq

    def head(self) -> AuditHead:
        """The newest entry: the anchor to hand out."""
        return _head(self._con)

    def verify(
        self, *, anchor: AuditHead | None = None, anchors: Sequence[AuditHead] = ()
    ) -> Verification:
        """Walk the chain from the start; name the first entry that does not hold,
        or the first anchor (a head handed out earlier, a signed checkpoint's) the
        chain no longer holds: another hash there (rewritten), or a chain that
        ends before it (its newest entries deleted).

        Each entry carries its own sequence number inside the hashed text, so
        renumbering rows to hide a deletion or a swap breaks the chain too.
        """
        wanted: dict[int, list[str]] = {}
        for a in (*anchors, *([anchor] if anchor else [])):
            wanted.setdefault(a.seq, []).append(a.hash)
        cursor = self._con.execute(
            "SELECT seq, entry, prev_hash, row_hash FROM gov.audit_log ORDER BY seq"
        )
        prev, expected, count = GENESIS, 1, 0
        while batch := cursor.fetchmany(10_000):
            for seq, text, prev_hash, row_hash in batch:
                problem = _check(seq, text, prev_hash, row_hash, prev, expected)
                if problem:
                    return Verification(False, count, prev, expected, problem)
                if any(h != row_hash for h in wanted.pop(seq, ())):
                    return Verification(
                        False,
                        count,
                        prev,
                        seq,
                        f"entry {seq} does not match the anchor handed out "
                        "earlier: the chain was rewritten",
                    )
                prev, expected, count = row_hash, expected + 1, count + 1
        if wanted:
            first = min(wanted)
            return Verification(
                False,
                count,
                prev,
                first,
                f"the chain ends before entry {first}, which was handed out as "
                "an anchor: entries were deleted",
            )
        return Verification(True, count, prev)

    def latest(self, action: str, limit: int = 5) -> list[LoggedEntry]:
        """The newest entries of one ``action``, newest first (the dashboard's
        alerts)."""
        rows = self._con.execute(
            "SELECT entry FROM gov.audit_log "
            "WHERE json_extract_string(entry, '$.action') = ? "
            "ORDER BY seq DESC LIMIT ?",
            [action, limit],
        ).fetchall()
        return [LoggedEntry.from_json(json.loads(r[0])) for r in rows]

    def entries(
        self, *, since_seq: int = 0, action: str | None = None, limit: int = 1000
    ) -> list[LoggedEntry]:
        """Entries after ``since_seq`` (of one ``action``), oldest first."""
        rows = self._con.execute(
            "SELECT entry FROM gov.audit_log WHERE seq > ? "
            "AND (? IS NULL OR json_extract_string(entry, '$.action') = ?) "
            "ORDER BY seq LIMIT ?",
            [since_seq, action, action, limit],
        ).fetchall()
        return [LoggedEntry.from_json(json.loads(r[0])) for r in rows]

    def page_for(
        self, reader: StewardCheck, *, before: int | None = None, limit: int = 100
    ) -> AuditPage:
        """Up to ``limit`` entries older than ``before`` (from the head when None),
        newest first, for whoever may audit (the steward's admins); anyone else is
        refused, and the refusal audited. A page is a range of sequence numbers,
        so it costs the same however long the log grows."""
        reader.require_steward("audit", "the audit log")
        limit = max(1, min(int(limit), AUDIT_PAGE_LIMIT))
        head = _head(self._con)
        start = head.seq + 1 if before is None else max(1, min(before, head.seq + 1))
        # entries are numbered without gaps: the page is one range of seq, which
        # the table's zone maps find without reading the rest of the log
        rows = self._con.execute(
            "SELECT entry FROM gov.audit_log WHERE seq >= ? AND seq < ? "
            "ORDER BY seq DESC",
            [start - limit, start],
        ).fetchall()
        entries = tuple(LoggedEntry.from_json(json.loads(r[0])) for r in rows)
        oldest = entries[-1].seq if entries else start
        return AuditPage(
            entries,
            head,
            older=oldest if entries and oldest > 1 else None,
            newer=min(start + limit, head.seq + 1) if start <= head.seq else None,
        )

    def verify_for(self, reader: StewardCheck) -> Verification:
        """:meth:`verify` for whoever may audit (the steward's admins); anyone
        else is refused, and the refusal audited."""
        reader.require_steward("audit", "verify the audit chain")
        return self.verify()

    def report(
        self, s: Session, partner: str, *, since: datetime | None = None
    ) -> DisclosureReport:
        """Every disclosure of ``partner``'s data that was allowed (FERPA 99.32),
        with the chain head to keep as an anchor: for that partner's own users and
        whoever may audit (the steward's admins); anyone else is refused, and the
        refusal audited."""
        who = s.actor()
        why = who.lapsed(s.today())
        if why is None and who.partner_id != partner and not who.may("audit"):
            why = f"{who.user_id} may see only {who.partner_id}'s disclosure report"
        if why:
            s.denials.append(
                AuditEntry(
                    "read",
                    who.user_id,
                    decision="deny",
                    reason=why,
                    actor_partner=who.partner_id,
                    providers=(partner,),
                    what=f"the disclosure report of {partner}",
                )
            )
            raise Forbidden(f"{why}.")
        rows = s.con.execute(
            """
            SELECT entry FROM gov.audit_log
            WHERE json_extract_string(entry, '$.decision') = 'allow'
              AND list_contains(?, json_extract_string(entry, '$.action'))
              AND list_contains(
                    CAST(json_extract(entry, '$.providers') AS VARCHAR[]), ?)
              AND (? IS NULL OR json_extract_string(entry, '$.at') >= ?)
            ORDER BY seq
            """,
            [
                list(DISCLOSING),
                partner,
                since and since.isoformat(),
                since and since.isoformat(),
            ],
        ).fetchall()
        return DisclosureReport(
            partner,
            tuple(_disclosure(json.loads(r[0]), partner) for r in rows),
            _head(s.con),
        )


def _check(
    seq: int, text: str, prev_hash: str, row_hash: str, prev: str, expected: int
) -> str:
    if seq != expected:
        return (
            f"entry {expected} is missing or out of order (found entry {seq} in its "
            "place)"
        )
    if prev_hash != prev:
        return f"entry {seq} does not follow the entry before it (deleted or reordered)"
    if chain_hash(prev_hash, text) != row_hash:
        return f"entry {seq} was edited after it was written"
    try:
        recorded = json.loads(text).get("seq")
    except ValueError:
        return f"entry {seq} is not valid JSON"
    if recorded != seq:
        return f"entry {seq} carries sequence number {recorded}"
    return ""


def _disclosure(e: dict[str, Any], partner: str) -> Disclosure:
    by_provider = (e.get("detail") or {}).get("rows_by_provider")
    rows = by_provider.get(partner) if isinstance(by_provider, dict) else e.get("rows")
    return Disclosure(
        seq=e["seq"],
        at=datetime.fromisoformat(e["at"]),
        action=e["action"],
        actor=e["actor"],
        actor_partner=e.get("actor_partner"),
        purpose=e.get("purpose"),
        agreements=tuple(e.get("agreements") or ()),
        what=e.get("what", ""),
        rows=rows,
        cells=e.get("cells"),
        suppressed=e.get("suppressed"),
        destination=e.get("destination"),
    )


def system_clock() -> datetime:
    """Now, in UTC, without tzinfo (as DuckDB TIMESTAMPs are stored)."""
    return datetime.now(UTC).replace(tzinfo=None)
