"""Descriptor maps: each partner's local codes to canonical code values.

Ed-Fi classifies code sets such as attendance categories as *local*, so every
district's codes differ; like Ed-Fi's Analytics Middle Tier ``DescriptorMap``, the
warehouse keeps one row per (partner, descriptor, local code) in ``ref.descriptor_map``.
:func:`canonical_code_sql` is the pure SQL builder ingestion uses to translate a
column; :class:`DescriptorMaps` records and reads the maps.
"""

from __future__ import annotations

from backbone.engines import Connection
from backbone.engines.sql import literal
from backbone.errors import UserError
from backbone.model.descriptors import descriptor_value_problem
from backbone.session import Session

__all__ = ["DescriptorMaps", "canonical_code_sql"]


def canonical_code_sql(column: str, partner_id: str, descriptor_name: str) -> str:
    """SQL for the canonical code of ``column`` (NULL where the partner's code is unmapped).

    A value that is already canonical passes through, so partners may send either.
    """
    return (
        f"coalesce("
        f"(SELECT m.code_value FROM ref.descriptor_map m "
        f"WHERE m.partner_id = {literal(partner_id)} "
        f"AND m.descriptor_name = {literal(descriptor_name)} "
        f"AND m.local_code_value = CAST({column} AS VARCHAR)), "
        f"(SELECT d.code_value FROM ref.descriptor d "
        f"WHERE d.descriptor_name = {literal(descriptor_name)} "
        f"AND d.code_value = CAST({column} AS VARCHAR)))"
    )


class DescriptorMaps:
    """Read and record partners' code maps."""

    def __init__(self, con: Connection) -> None:
        self._con = con

    def set(
        self,
        s: Session,
        partner_id: str,
        descriptor_name: str,
        mapping: dict[str, str],
    ) -> None:
        """Map local codes to canonical values (a steward admin's, audited: the maps
        decide how every later submission is coded); refuses values Ed-Fi does not
        know."""
        s.require(
            "administer",
            f"map {partner_id}'s {descriptor_name} codes",
            action="partner",
        )
        for value in sorted(mapping.values()):
            problem = descriptor_value_problem(descriptor_name, value)
            if problem:
                raise UserError(f"Cannot map {partner_id}'s codes: {problem}.")
        s.con.executemany(
            "INSERT OR REPLACE INTO ref.descriptor_map VALUES (?, ?, ?, ?)",
            [[partner_id, descriptor_name, k, v] for k, v in mapping.items()],
        )
        s.record(
            "partner",
            f"mapped {len(mapping)} of {partner_id}'s {descriptor_name} codes",
            providers=(partner_id,),
        )

    def get(self, partner_id: str, descriptor_name: str) -> dict[str, str]:
        rows = self._con.execute(
            "SELECT local_code_value, code_value FROM ref.descriptor_map "
            "WHERE partner_id = ? AND descriptor_name = ? ORDER BY 1",
            [partner_id, descriptor_name],
        ).fetchall()
        return dict(rows)
