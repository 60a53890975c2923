"""The ledger: every release recorded with its cells and the units they counted
(so that later releases are protected against it), in the audit log too, and
an earlier release of exactly the same cells found again."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from backbone.engines import Connection, arrow, register, unregister
from backbone.engines.duckdb import next_id, transaction
from backbone.governance.audit import AuditEntry, AuditLog, canonical_json
from backbone.governance.policy import Grant

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = ["Ledger", "LedgerEntry", "Protected"]

# the most releases one page of the ledger shows (the web door's /releases)
LEDGER_PAGE_LIMIT = 500


@dataclass(frozen=True)
class Protected:
    """A table's cells after suppression, as recorded in the ledger."""

    release_id: int
    labels: list[str]
    values: np.ndarray[Any, Any]
    suppressed: np.ndarray[Any, Any]
    primary: np.ndarray[Any, Any]
    """suppressed for being small (the rest of ``suppressed`` protects them)"""
    thresholds: np.ndarray[Any, Any]


@dataclass(frozen=True)
class LedgerEntry:
    """One release as the ledger records it (its cells' counts left out)."""

    release_id: int
    released_at: datetime
    user_id: str
    partner_id: str
    """the recipient's partner"""
    purpose: str
    name: str
    """the table asked for: its definition's name, or its entity and dimensions"""
    mode: str
    """suppression or dp"""
    cells: int
    suppressed: int
    epsilon: float | None
    agreements: tuple[str, ...]
    providers: tuple[str, ...]


def _release_name(definition: str) -> str:
    try:
        d = json.loads(definition)
    except ValueError:
        return ""
    if not isinstance(d, dict):
        return ""
    if d.get("name"):
        return str(d["name"])
    entity = d.get("entity") or ", ".join(d.get("entities") or ())
    by = d.get("by") or ()
    return f"{entity} by {', '.join(map(str, by))}" if by else str(entity)


class Ledger:
    """The release gate's ledger (:class:`ReleaseGate` is one)."""

    _con: Connection
    _audit: AuditLog
    _clock: Callable[[], datetime]
    _audit_capacity: int
    _hand_back: Callable[[], AbstractContextManager[bool]]

    def releases_for(
        self, reader: Access, *, before: int | None = None, limit: int = 100
    ) -> list[LedgerEntry]:
        """Up to ``limit`` releases numbered below ``before`` (the newest when
        None), newest first: what left, when, to whom, how much was suppressed.
        For the steward; anyone else is refused, and the refusal audited."""
        reader.require_steward("aggregate", "the release ledger")
        limit = max(1, min(int(limit), LEDGER_PAGE_LIMIT))
        rows = self._con.execute(
            "SELECT release_id, released_at, user_id, partner_id, purpose, definition, "
            "mode, cells, suppressed, epsilon, agreements, providers FROM gov.release "
            "WHERE ? IS NULL OR release_id < ? ORDER BY release_id DESC LIMIT ?",
            [before, before, limit],
        ).fetchall()
        return [
            LedgerEntry(
                int(r[0]),
                r[1],
                r[2],
                r[3],
                r[4],
                _release_name(r[5]),
                r[6],
                int(r[7]),
                int(r[8]),
                r[9],
                tuple(a for a in str(r[10]).split(",") if a),
                tuple(json.loads(r[11] or "[]")),
            )
            for r in rows
        ]

    def _previous_modes(
        self, definition: dict[str, Any], grants: list[Grant]
    ) -> set[str]:
        """How earlier releases with data of any of the same providers were made,
        of the same entity or of any of the same attributes (a dimension, a
        filter or a rate's numerator: ``sex`` counted from the demographics and from the indicators is
        one attribute of the same persons): one universe is released one way only
        (a noisy table and an exact one of overlapping cells can be combined)."""
        entities = sorted(
            {definition.get("entity", ""), *definition.get("entities", [])} - {""}
        )
        attributes = sorted(
            {
                *definition.get("by", []),
                *dict(definition.get("where") or {}),
                *dict(definition.get("numerator") or {}),
            }
        )
        # a table of several entities names them all ("entities"); one of one
        # entity its "entity": either way, any shared entity counts
        return {
            r[0]
            for r in self._con.execute(
                "SELECT DISTINCT mode FROM gov.release "
                "WHERE (list_contains(?, json_extract_string(definition, '$.entity')) "
                "OR list_has_any(?, coalesce(CAST(json_extract(definition, "
                "'$.entities') AS VARCHAR[]), [])) "
                "OR list_has_any(?, coalesce(CAST(json_extract(definition, '$.by') "
                "AS VARCHAR[]), []) || coalesce(json_keys(json_extract(definition, "
                "'$.where')), []) || coalesce(json_keys(json_extract(definition, "
                "'$.numerator')), []))) "
                "AND list_has_any(CAST(json(providers) AS VARCHAR[]), ?)",
                [entities, entities, attributes, sorted({g.provider for g in grants})],
            ).fetchall()
        }

    def _released_cells(self, definition: dict[str, Any], grants: list[Grant]) -> int:
        """Cells released with suppression from the same entity and any of the
        same providers: public (the ledger's table shapes), so a refusal for size
        reveals nothing about who is in them."""
        entities = sorted(
            {definition.get("entity", ""), *definition.get("entities", [])} - {""}
        )
        row = self._con.execute(
            "SELECT coalesce(sum(cells), 0) FROM gov.release "
            "WHERE mode = 'suppression' "
            "AND (list_contains(?, json_extract_string(definition, '$.entity')) "
            "OR list_has_any(?, coalesce(CAST(json_extract(definition, "
            "'$.entities') AS VARCHAR[]), []))) "
            "AND list_has_any(CAST(json(providers) AS VARCHAR[]), ?)",
            [entities, entities, sorted({g.provider for g in grants})],
        ).fetchone()
        return int(row[0]) if row else 0

    def _ledger_state(self) -> tuple[Any, ...]:
        """What an audit read that another process may change: the releases
        recorded and the links that map records to persons."""
        row = self._con.execute(
            "SELECT (SELECT count(*) FROM gov.release), "
            "(SELECT coalesce(max(release_id), 0) FROM gov.release), "
            "(SELECT count(*) FROM identity.record_person), "
            "(SELECT coalesce(sum(hash(partner_id, local_id, person_id)), 0) "
            "FROM identity.record_person)"
        ).fetchone()
        return tuple(row) if row else ()

    def _same_release(self, fingerprint: str) -> int | None:
        row = self._con.execute(
            "SELECT min(release_id) FROM gov.release WHERE mode = 'suppression' "
            "AND json_extract_string(definition, '$.fingerprint') = ?",
            [fingerprint],
        ).fetchall()
        return int(row[0][0]) if row and row[0][0] is not None else None

    def _repeat(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        earlier: int,
    ) -> Protected:
        """Record a release of exactly an earlier one's cells with its decisions
        (a new disclosure, so a new ledger entry; its persons are the earlier
        release's, which the ledger already holds)."""
        cells = arrow(
            self._con,
            "SELECT label, value, published, threshold FROM gov.release_cell "
            "WHERE release_id = ? ORDER BY cell",
            [earlier],
        )
        labels = cells.column("label").to_pylist()
        values = np.asarray(cells.column("value").to_pylist(), dtype=np.int64)
        suppressed = ~np.asarray(cells.column("published").to_pylist(), dtype=bool)
        thresholds = np.asarray(cells.column("threshold").to_pylist(), dtype=np.int64)
        definition["same_as"] = earlier
        release_id = self._record(
            access,
            definition,
            grants,
            "suppression",
            labels,
            values,
            suppressed,
            thresholds,
            None,
            None,
        )
        primary = suppressed & (values > 0) & (values < thresholds)
        return Protected(release_id, labels, values, suppressed, primary, thresholds)

    def _record(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        mode: str,
        labels: list[str],
        values: np.ndarray[Any, Any],
        suppressed: np.ndarray[Any, Any],
        thresholds: np.ndarray[Any, Any],
        pairs: pa.Table | None,
        epsilon: float | None,
        *,
        keep: Callable[[int], None] | None = None,
    ) -> int:
        # the release, its cells, its members and its audit entry, or none of them
        # (a ledger missing a release's members would under-audit later ones)
        with transaction(self._con):
            agreements = sorted({g.agreement for g in grants if g.agreement})
            providers = sorted({g.provider for g in grants})
            release_id = next_id(self._con, "gov.release_id_seq")
            self._con.execute(
                "INSERT INTO gov.release VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    release_id,
                    self._clock(),
                    access.principal.user_id,
                    access.principal.partner_id,
                    access.purpose,
                    canonical_json(definition),
                    ",".join(agreements),
                    json.dumps(providers),
                    mode,
                    len(labels),
                    int(suppressed.sum()),
                    epsilon,
                ],
            )
            cells = pa.table(
                {
                    "release_id": pa.array([release_id] * len(labels), pa.int64()),
                    "cell": pa.array(range(len(labels)), pa.int32()),
                    "label": pa.array(labels, pa.string()),
                    "value": pa.array([int(v) for v in values], pa.int64()),
                    "published": pa.array(
                        [not bool(s) for s in suppressed], pa.bool_()
                    ),
                    "threshold": pa.array([int(t) for t in thresholds], pa.int32()),
                }
            )
            register(self._con, "new_cells", cells)
            try:
                self._con.execute(
                    "INSERT INTO gov.release_cell SELECT * FROM new_cells"
                )
            finally:
                unregister(self._con, "new_cells")
            if pairs is not None and pairs.num_rows:
                register(self._con, "members", pairs)
                try:
                    self._con.execute(
                        "INSERT INTO gov.release_member "
                        "SELECT ?, CAST(cell AS INTEGER), unit, record FROM members",
                        [release_id],
                    )
                finally:
                    unregister(self._con, "members")
            if keep is not None:
                keep(release_id)  # the audit state, in step with the ledger
            self._audit.append(
                AuditEntry(
                    "release",
                    access.principal.user_id,
                    actor_partner=access.principal.partner_id,
                    purpose=access.purpose,
                    agreements=tuple(agreements),
                    providers=tuple(providers),
                    what=f"release {release_id}: {canonical_json(definition)}",
                    cells=len(labels),
                    suppressed=int(suppressed.sum()),
                    epsilon=epsilon,
                    reason="; ".join(g.reason for g in grants),
                    detail={"mode": mode},
                )
            )
        return release_id
