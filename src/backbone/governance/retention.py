"""Retention: a provider's data is destroyed when the agreements that let it in end.

For every provider and every entity it has sent, the data may stay while some
agreement of that provider in force today shares the entity. Once none does, the
data is due for destruction at the earliest of the ended agreement's
``retention.destroy_by``, its end plus ``retention.destroy_after_days``, and (when
it was terminated) its end plus ``termination.destroy_within_days``. On that day
:meth:`Retention.run` (a steward admin's step, ``backbone retention run``, run
daily on a schedule) deletes the rows everywhere they flowed: the analytic tables,
identifying records and their links, clerical-review decisions, linkage encodings,
quarantined rows and the raw files; persons left with no record are retired.
Access ends with the agreement (the policy layer denies it from the end date), users
of a partner left with no agreement at all are disabled, and a destruction
certificate is appended to the audit log.

The release ledger keeps its keyed hashes of the persons counted: they identify no
one, and without them a later table could difference an earlier one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from backbone.engines import Connection
from backbone.engines.duckdb import next_id, transaction
from backbone.engines.exchange import sweep
from backbone.engines.sql import literal
from backbone.errors import WarehouseError
from backbone.governance.audit import AuditEntry, AuditLog, StewardCheck, canonical_json
from backbone.model.schema import ALL_TABLES, DERIVED_FROM
from backbone.partners.agreements.document import AgreementDocument, Status
from backbone.partners.agreements.inforce import came_into_force, end_of
from backbone.partners.agreements.store import AgreementRegistry, VersionRecord
from backbone.session import Session

__all__ = [
    "Certificate",
    "DestructionCertificate",
    "Due",
    "Purge",
    "Retention",
    "RetentionState",
    "destruction_due",
]


@dataclass(frozen=True)
class Due:
    provider: str
    entity: str
    agreement: str
    """``id@version`` of the last agreement version that shared the entity."""
    ended_on: date
    due_on: date


@dataclass(frozen=True)
class DestructionCertificate:
    """What one destruction destroyed, and under which agreements: kept in
    ``gov.purge`` and in the audit log as JSON (:meth:`as_json`), sealed by the
    SHA-256 of the rest of its text."""

    name: str
    """``destruction-N``, N the purge's id"""
    provider: str
    entities: tuple[str, ...]
    agreements: tuple[str, ...]
    ended_on: date
    due_on: date
    destroyed_at: datetime
    destroyed_by: str
    method: str
    rows: dict[str, int]
    """rows destroyed per table (and persons retired, pairs scrubbed)"""
    raw_files: tuple[str, ...]
    """the SHA-256 of each raw file unlinked"""
    reports_deleted: int
    sha256: str

    def as_json(self) -> dict[str, object]:
        """The certificate as stored and sealed."""
        return {**_certificate_body(self), "sha256": self.sha256}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> DestructionCertificate:
        return cls(
            name=str(stored["certificate"]),
            provider=str(stored["provider"]),
            entities=tuple(stored["entities"]),
            agreements=tuple(stored["agreements"]),
            ended_on=date.fromisoformat(str(stored["ended_on"])),
            due_on=date.fromisoformat(str(stored["due_on"])),
            destroyed_at=datetime.fromisoformat(str(stored["destroyed_at"])),
            destroyed_by=str(stored["destroyed_by"]),
            method=str(stored["method"]),
            rows={str(k): int(v) for k, v in stored["rows"].items()},
            raw_files=tuple(stored["raw_files"]),
            reports_deleted=int(stored["reports_deleted"]),
            sha256=str(stored["sha256"]),
        )


def _certificate_body(c: DestructionCertificate) -> dict[str, object]:
    """What the seal covers: everything but the seal."""
    return {
        "certificate": c.name,
        "provider": c.provider,
        "entities": list(c.entities),
        "agreements": list(c.agreements),
        "ended_on": str(c.ended_on),
        "due_on": str(c.due_on),
        "destroyed_at": c.destroyed_at.isoformat(timespec="seconds"),
        "destroyed_by": c.destroyed_by,
        "method": c.method,
        "rows": dict(c.rows),
        "raw_files": list(c.raw_files),
        "reports_deleted": c.reports_deleted,
    }


def _seal(body: dict[str, object]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Purge:
    purge_id: int
    provider: str
    entities: tuple[str, ...]
    rows: dict[str, int]
    raw_files: int
    certificate: DestructionCertificate

    @property
    def destroyed(self) -> int:
        """Rows destroyed (persons retired are not rows destroyed)."""
        return _destroyed(self.rows)


@dataclass(frozen=True)
class Certificate:
    """A destruction done (``gov.purge``); ``certificate`` is its full text."""

    purge_id: int
    provider: str
    agreement: str
    due_on: date
    purged_at: datetime
    rows_destroyed: int
    certificate: DestructionCertificate


@dataclass(frozen=True)
class RetentionState:
    """What is due for destruction today and what was destroyed so far."""

    on: date
    due: list[Due]
    certificates: list[Certificate]


def _due(ended: date, doc: AgreementDocument) -> date:
    days: list[date] = []
    if doc.retention is not None:
        if doc.retention.destroy_by is not None:
            days.append(doc.retention.destroy_by)
        if doc.retention.destroy_after_days is not None:
            days.append(ended + timedelta(days=doc.retention.destroy_after_days))
    if (
        doc.status is Status.terminated
        and doc.termination is not None
        and doc.termination.destroy_within_days is not None
    ):
        days.append(ended + timedelta(days=doc.termination.destroy_within_days))
    # no retention terms at all: nothing is kept past the end
    return min(days) if days else ended


def destruction_due(
    versions: list[VersionRecord], holdings: dict[str, set[str]], today: date
) -> list[Due]:
    """What must be destroyed today. Pure: ``holdings`` maps each provider to the
    entities it has rows of."""
    by_agreement: dict[str, list[VersionRecord]] = {}
    for v in versions:
        by_agreement.setdefault(v.agreement_id, []).append(v)
    # per provider and entity: is it shared today; else the latest end and due day
    live: set[tuple[str, str]] = set()
    ended: dict[tuple[str, str], tuple[date, date, str]] = {}
    for history in by_agreement.values():
        in_force = came_into_force(history, today)
        if not in_force:
            continue
        current = in_force[-1]
        doc = current.document
        provider = doc.parties.provider
        end = end_of(current)
        entities = {d.entity for d in doc.datasets}
        destroy_by = doc.retention.destroy_by if doc.retention else None
        if destroy_by is not None and destroy_by <= today:
            # a fixed destruction date holds even while the agreement runs on
            for e in entities:
                ended[(provider, e)] = max(
                    ended.get((provider, e), (destroy_by, destroy_by, current.ref)),
                    (destroy_by, destroy_by, current.ref),
                )
            continue
        if end is None or end >= today:
            if doc.status is not Status.draft:
                live |= {(provider, e) for e in entities}
            # an entity dropped by a narrowing amendment ends with that amendment
            for older in in_force[:-1]:
                for e in {d.entity for d in older.document.datasets} - entities:
                    assert current.in_force_from is not None
                    day = current.in_force_from
                    due = _due(day, older.document)
                    ended[(provider, e)] = max(
                        ended.get((provider, e), (day, due, older.ref)),
                        (day, due, older.ref),
                    )
            continue
        for e in entities:
            due = _due(end, doc)
            ended[(provider, e)] = max(
                ended.get((provider, e), (end, due, current.ref)),
                (end, due, current.ref),
            )
    out = []
    for (provider, entity), (end, due, ref) in sorted(ended.items()):
        if (provider, entity) in live or entity not in holdings.get(provider, set()):
            continue
        if due <= today:
            out.append(Due(provider, entity, ref, end, due))
    return out


# Where each entity's rows of a provider live: (table, provider column).
def _flows(entity: str) -> list[tuple[str, str]]:
    if entity == "partner_record":
        return [
            ("identity.encoding", "partner_id"),
            ("identity.record_person", "partner_id"),
            ("identity.link_edge", "partner_id_l"),
            ("identity.link_edge", "partner_id_r"),
            ("identity.review_decision", "partner_id_l"),
            ("identity.review_decision", "partner_id_r"),
            ("identity.partner_record", "partner_id"),
            ("gov.held_confirmation", "partner_id"),
        ]
    return [(f"analytic.{entity}", "provider_partner_id")]


class Retention:
    """``wh.retention``: what is due, and the purge."""

    def __init__(
        self,
        con: Connection,
        root: Path,
        agreements: AgreementRegistry,
        audit: AuditLog,
        clock: Callable[[], datetime],
        exchange: str = "",
    ) -> None:
        self._con = con
        self._root = root
        self._exchange = exchange
        self._agreements = agreements
        self._audit = audit
        self._clock = clock

    def _holdings(self, con: Connection) -> dict[str, set[str]]:
        parts = [
            f"SELECT DISTINCT provider_partner_id, {literal(t.name)} FROM {t.qualified_name}"
            for t in ALL_TABLES
            if t.schema == "analytic" and t.person_level
        ]
        parts.append(
            "SELECT DISTINCT partner_id, 'partner_record' FROM identity.partner_record"
        )
        held: dict[str, set[str]] = {}
        for provider, entity in con.execute(" UNION ALL ".join(parts)).fetchall():
            held.setdefault(provider, set()).add(entity)
        return held

    def due(
        self, today: date | None = None, con: Connection | None = None
    ) -> list[Due]:
        """What is due for destruction on ``today`` (as ``con``, a session's cursor,
        sees the holdings)."""
        today = today or self._clock().date()
        return destruction_due(
            self._agreements.all_versions(), self._holdings(con or self._con), today
        )

    def due_for(self, reader: StewardCheck) -> RetentionState:
        """What is due today and the destructions done, for the steward; anyone
        else is refused, and the refusal audited."""
        reader.require_steward("aggregate", "what is due for destruction")
        today = self._clock().date()
        return RetentionState(today, self.due(today), self.certificates())

    def certificates(self) -> list[Certificate]:
        """Every destruction done so far, oldest first."""
        return [
            Certificate(
                int(i),
                p,
                a,
                due,
                at,
                int(n),
                DestructionCertificate.from_json(json.loads(c)),
            )
            for i, p, a, due, at, n, c in self._con.execute(
                "SELECT purge_id, provider_partner_id, agreement, due_on, purged_at, "
                "rows_destroyed, certificate FROM gov.purge ORDER BY purge_id"
            ).fetchall()
        ]

    def run(self, s: Session) -> list[Purge]:
        """Destroy everything due today, one certificate per provider, and disable
        the users of partners no agreement names any more: a steward admin's step
        (``backbone retention run``, scheduled daily), in one unit of work. Each
        destruction appends its certificate (``purge``) to the audit log, and the
        run its own entry (``retention``). Rows a Spark job that died left in the
        exchange go too (the job folder of a process that is gone)."""
        who = s.require("administer", "run the retention schedule", action="retention")
        try:  # an exchange out of reach does not hold up the day's destruction
            swept = sweep(self._exchange) if self._exchange else 0
            unswept = ""
        except WarehouseError as exc:
            swept, unswept = 0, str(exc)
        due = self.due(s.today(), s.con)
        files: list[Path] = []
        purges = [
            self._purge(
                s,
                provider,
                [d for d in due if d.provider == provider],
                who.user_id,
                files,
            )
            for provider in sorted({d.provider for d in due})
        ]
        disabled = self._revoke(s) if purges else []
        done = (
            "; ".join(
                f"destroyed {p.provider}'s {', '.join(p.entities)} "
                f"({p.certificate.name})"
                for p in purges
            )
            or "nothing was due"
        )
        s.record(
            "retention",
            f"retention run: {done}"
            + (f"; disabled {', '.join(u for u, _ in disabled)}" if disabled else "")
            + (f"; removed {swept} dead Spark job(s)' exchange files" if swept else ""),
            providers=tuple(p.provider for p in purges),
            rows=sum(p.destroyed for p in purges),
            detail={
                "certificates": [p.certificate.name for p in purges],
                "disabled": {
                    u: f"no agreement in force names {partner}"
                    for u, partner in disabled
                },
                **({"exchange_jobs_removed": swept} if swept else {}),
                **({"exchange_not_swept": unswept} if unswept else {}),
            },
        )
        # Files go last, once every row is written: should the commit still fail,
        # what was already due is gone from disk and the next run destroys the rows
        # and certifies; a certificate never names a file that is still there.
        for path in files:
            path.unlink(missing_ok=True)
        return purges

    def _purge(
        self, s: Session, provider: str, due: list[Due], by: str, files: list[Path]
    ) -> Purge:
        """Delete a provider's due data in ``s`` and append its certificate; the
        files to unlink once the rows are gone are added to ``files``."""
        con, now = s.con, s.clock()
        entities = sorted({d.entity for d in due})
        counts: dict[str, int] = {}
        # what the warehouse derived from the destroyed facts goes with them
        derived = sorted(
            {d for d, sources in DERIVED_FROM.items() if set(sources) & set(entities)}
            - set(entities)
        )
        with transaction(con):
            for entity in [*entities, *derived]:
                for table, column in _flows(entity):
                    n = con.execute(
                        f"SELECT count(*) FROM {table} WHERE {column} = ?", [provider]
                    ).fetchall()[0][0]
                    if n:
                        con.execute(
                            f"DELETE FROM {table} WHERE {column} = ?", [provider]
                        )
                    counts[table] = counts.get(table, 0) + int(n)
            # quarantined rows of the purged entities
            n = con.execute(
                "SELECT count(*) FROM ops.quarantine q JOIN ops.submission s USING (submission_id) "
                "WHERE s.partner_id = ? AND list_contains(?, q.entity)",
                [provider, entities],
            ).fetchall()[0][0]
            con.execute(
                "DELETE FROM ops.quarantine WHERE list_contains(?, entity) AND submission_id IN "
                "(SELECT submission_id FROM ops.submission WHERE partner_id = ?)",
                [entities, provider],
            )
            counts["ops.quarantine"] = int(n)
            if "partner_record" in entities:
                counts["identity.person_event (pairs scrubbed)"] = _scrub_events(
                    con, provider
                )
                # persons with no record left are retired, never reused
                retired = con.execute(
                    "UPDATE identity.person SET retired_at = ? WHERE retired_at IS NULL "
                    "AND person_id NOT IN (SELECT person_id FROM identity.record_person)",
                    [now],
                ).fetchall()
                counts["identity.person (retired)"] = (
                    int(retired[0][0]) if retired else 0
                )
            raw = _raw_files(con, provider, entities)
            reports = [
                int(r[0])
                for r in con.execute(
                    "SELECT DISTINCT submission_id FROM ops.submission_target "
                    "JOIN ops.submission USING (submission_id) "
                    "WHERE partner_id = ? AND list_contains(?, entity)",
                    [provider, entities],
                ).fetchall()
            ]
            purge_id = next_id(con, "gov.purge_id_seq")
            unsealed = DestructionCertificate(
                name=f"destruction-{purge_id}",
                provider=provider,
                entities=tuple(entities),
                agreements=tuple(sorted({d.agreement for d in due})),
                ended_on=max(d.ended_on for d in due),
                due_on=min(d.due_on for d in due),
                destroyed_at=now.replace(microsecond=0),
                destroyed_by=by,
                method="deleted from the database; raw files unlinked",
                rows=counts,
                raw_files=tuple(r[0] for r in raw),
                reports_deleted=len(reports),
                sha256="",
            )
            certificate = replace(unsealed, sha256=_seal(_certificate_body(unsealed)))
            con.execute(
                "INSERT INTO gov.purge VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    purge_id,
                    provider,
                    ",".join(sorted({d.agreement for d in due})),
                    min(d.due_on for d in due),
                    now,
                    _destroyed(counts),
                    json.dumps(certificate.as_json(), sort_keys=True),
                ],
            )
        # the files go once every row of the unit of work is written (see run)
        files.extend(self._root / relative for _sha, relative in raw)
        # validation reports quote rows as sent
        files.extend(
            self._root / "reports" / f"submission-{sid}{suffix}"
            for sid in reports
            for suffix in (".html", ".csv")
        )
        s.append(
            AuditEntry(
                "purge",
                by,
                actor_partner=s.actor().partner_id,
                providers=(provider,),
                agreements=tuple(sorted({d.agreement for d in due})),
                what=f"destroyed {provider}'s {', '.join(entities)}",
                rows=_destroyed(counts),
                reason="retention period ended",
                detail={"certificate": certificate.as_json()},
            )
        )
        return Purge(purge_id, provider, tuple(entities), counts, len(raw), certificate)

    def _revoke(self, s: Session) -> list[tuple[str, str]]:
        """Disable users of partners no agreement in force names any more; the
        (user, partner) pairs disabled."""
        con, now = s.con, s.clock()
        today = now.date()
        parties: set[str] = set()
        for aid in self._agreements.ids():
            state = self._agreements.state(aid, today)
            # an agreement not yet begun still names its parties' users
            if state.version is not None and state.active and not state.ended:
                doc = state.version.document
                parties |= set(doc.parties.all())
                parties |= {r.partner for r in doc.recipients}
        stale = [
            (str(u), str(p))
            for u, p in con.execute(
                "SELECT p.user_id, p.partner_id FROM gov.principal p JOIN ref.partner r "
                "USING (partner_id) WHERE p.disabled_at IS NULL AND r.kind <> 'backbone' "
                "AND NOT list_contains(?, p.partner_id) ORDER BY p.user_id",
                [sorted(parties)],
            ).fetchall()
        ]
        for user_id, _partner in stale:
            con.execute(
                "UPDATE gov.principal SET disabled_at = ?, disabled_reason = ? "
                "WHERE user_id = ?",
                [now, "no agreement in force names the partner", user_id],
            )
            con.execute(
                "UPDATE gov.api_token SET revoked_at = ? WHERE user_id = ? "
                "AND revoked_at IS NULL",
                [now, user_id],
            )
        return stale


def _destroyed(counts: dict[str, int]) -> int:
    """Rows destroyed (persons retired are not rows destroyed)."""
    return sum(v for k, v in counts.items() if "retired" not in k)


def _scrub_events(con: Connection, provider: str) -> int:
    """Drop the provider's records from the evidence of merges and splits (the
    events stay: other persons' histories need them)."""
    prefix = f"{provider}:"
    rows = con.execute(
        "SELECT rowid, evidence FROM identity.person_event WHERE contains(evidence, ?)",
        [json.dumps(prefix)[1:-1]],
    ).fetchall()
    scrubbed = 0
    for rowid, evidence in rows:
        pairs = json.loads(evidence)
        kept = [
            p
            for p in pairs
            if not str(p.get("left", "")).startswith(prefix)
            and not str(p.get("right", "")).startswith(prefix)
        ]
        scrubbed += len(pairs) - len(kept)
        con.execute(
            "UPDATE identity.person_event SET evidence = ? WHERE rowid = ?",
            [json.dumps(kept), rowid],
        )
    return scrubbed


def _raw_files(
    con: Connection, provider: str, entities: list[str]
) -> list[tuple[str, str]]:
    """Raw files of the provider all of whose sections were purged, and that no
    other submission still needs."""
    return [
        (r[0], r[1])
        for r in con.execute(
            """
            SELECT DISTINCT s.sha256, s.raw_path FROM ops.submission s
            WHERE s.partner_id = ?
              AND NOT EXISTS (SELECT 1 FROM ops.submission_target t
                              WHERE t.submission_id = s.submission_id
                                AND NOT list_contains(?, t.entity))
              AND NOT EXISTS (SELECT 1 FROM ops.submission o
                              WHERE o.sha256 = s.sha256 AND o.partner_id <> s.partner_id)
            """,
            [provider, entities],
        ).fetchall()
    ]
