"""Persons from pairs: connected components, the constraints, stable person ids.

Constraints a person expert would use, applied when pairs become persons:

1. **One partner, one id per person.** A partner's local id names one person within
   that partner (a district's student id, a program's participant number), so two
   different local ids of one partner are two people. The model never compares them
   and no cluster may hold two of them. A steward who knows a partner issued a
   duplicate id says so by review ("same"), which overrides this rule for that pair.
2. **One state student id per person.** Two records carrying different state
   student ids are different people, whatever their names say.
3. **A reviewer's "different" is final.** Two records a reviewer called different
   never end up in one person, directly or through others.

Pairs are first joined by connected components (Splink's, in SQL). Only clusters that break
a rule are re-formed, greedily from the strongest pair down, refusing any join that
would break one; those clusters are few, so this small loop never sees the bulk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backbone.engines import Connection, create_table_as
from backbone.engines.sql import literal

if TYPE_CHECKING:
    from splink.internals.database_api import DatabaseAPISubClass

__all__ = [
    "CONSTRAINTS",
    "METHOD_RANK",
    "connected_components",
    "method_rank_sql",
    "resolve_conflicts",
    "violating_clusters_sql",
]

CONSTRAINTS = (
    "two different local ids of one partner are two people",
    "two different state student ids are two people",
    "records a reviewer called different are never one person",
)

# Which evidence joins first when clusters are re-formed: people over identifiers
# over the model over encodings.
METHOD_RANK = {"review": 0, "deterministic": 1, "model": 2, "encoded": 3}


def method_rank_sql(column: str = "method") -> str:
    """``METHOD_RANK`` as a SQL expression over ``column``."""
    whens = " ".join(f"WHEN {literal(m)} THEN {r}" for m, r in METHOD_RANK.items())
    return f"(CASE {column} {whens} ELSE {len(METHOD_RANK)} END)"


def connected_components(
    db_api: DatabaseAPISubClass,
    con: Connection,
    nodes: str,
    edges: str,
    out: str,
) -> None:
    """Create ``out(unique_id, cluster_id)``: Splink's connected components.

    ``nodes(unique_id)``, ``edges(unique_id_l, unique_id_r)`` (every edge a link).
    The label is the smallest unique_id in the component, so it does not depend on
    the order rows arrive.
    """
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    clusters = cluster_pairwise_predictions_at_threshold(
        nodes, edges, db_api, node_id_column_name="unique_id"
    )
    create_table_as(
        con,
        out,
        "SELECT unique_id, min(unique_id) OVER (PARTITION BY cluster_id) AS cluster_id "
        f"FROM {clusters.physical_name}",
        replace=True,
    )
    clusters.drop_table_from_database_and_remove_from_cache()


def violating_clusters_sql(clusters: str, records: str, different: str) -> str:
    """SELECT cluster_id of clusters that break a constraint.

    ``clusters(unique_id, cluster_id)``, ``records(unique_id, partner_id,
    state_student_id)``, ``different(unique_id_l, unique_id_r)``: reviewed as different.
    """
    return f"""
    SELECT cluster_id FROM {clusters} c JOIN {records} r USING (unique_id)
    GROUP BY cluster_id
    HAVING count(*) > count(DISTINCT r.partner_id)
        OR count(DISTINCT r.state_student_id) > 1
    UNION
    SELECT a.cluster_id FROM {different} d
    JOIN {clusters} a ON a.unique_id = d.unique_id_l
    JOIN {clusters} b ON b.unique_id = d.unique_id_r
    WHERE a.cluster_id = b.cluster_id
    """


@dataclass
class _Component:
    members: set[int]
    partners: dict[str, set[int]]
    state_ids: set[str]


def resolve_conflicts(
    records: Iterable[tuple[int, str, str | None]],
    edges: Iterable[tuple[int, int, str, float]],
    different: set[tuple[int, int]],
) -> tuple[dict[int, int], list[tuple[int, int, str]]]:
    """Re-form conflicted clusters greedily, strongest evidence first.

    ``records``: (unique_id, partner_id, state_student_id); ``edges``: (l, r, method,
    probability) with l < r; ``different``: reviewed-different pairs (l < r).
    Returns (unique_id -> cluster label, refused edges as (l, r, reason)).
    """
    parent: dict[int, int] = {}
    comps: dict[int, _Component] = {}
    for uid, partner, state_id in records:
        parent[uid] = uid
        comps[uid] = _Component(
            {uid}, {partner: {uid}}, {state_id} if state_id else set()
        )

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    refused: list[tuple[int, int, str]] = []
    ordered = sorted(edges, key=lambda e: (METHOD_RANK.get(e[2], 9), -e[3], e[0], e[1]))
    for left, right, method, _p in ordered:
        a, b = find(left), find(right)
        if a == b:
            continue
        ca, cb = comps[a], comps[b]
        reason = None
        if method != "review":
            if set(ca.partners) & set(cb.partners):
                reason = CONSTRAINTS[0]
            elif ca.state_ids and cb.state_ids and ca.state_ids != cb.state_ids:
                reason = CONSTRAINTS[1]
        if reason is None and any(
            (min(x, y), max(x, y)) in different for x in ca.members for y in cb.members
        ):
            reason = CONSTRAINTS[2]
        if reason:
            refused.append((left, right, reason))
            continue
        if len(ca.members) < len(cb.members):
            a, b, ca, cb = b, a, cb, ca
        parent[b] = a
        ca.members |= cb.members
        for partner, ids in cb.partners.items():
            ca.partners.setdefault(partner, set()).update(ids)
        ca.state_ids |= cb.state_ids
        del comps[b]
    labels = {uid: min(comps[find(uid)].members) for uid in parent}
    return labels, refused
