"""``backbone link``: every partner record to a person, with a stable person index.

One run: standardize the partner records; link by shared state student id
(deterministic); train the Splink model by EM and score the blocked pairs; score
privacy-preserving encodings by Dice similarity; apply reviewers' decisions; join
pairs into persons under the constraints of :mod:`backbone.linkage.cluster`; give
each person the id it had before wherever its records did, log merges and splits
with the pairs behind them; write it all in one transaction.

Splink runs in a scratch database (see :mod:`backbone.engines.splink`); the
warehouse database only receives the results.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from backbone.engines import (
    Connection,
    arrow,
    create_table_as,
    next_id,
    next_ids,
    register,
    registered,
    transaction,
)
from backbone.engines.offload import EngineChoice
from backbone.engines.splink import model_place, scratch_api
from backbone.engines.sql import literal
from backbone.linkage import cluster, model, prepare
from backbone.linkage.pprl import dice_edges_sql, dice_scores_sql, dice_threshold_sql
from backbone.model.calendar import school_year_sql
from backbone.session import Session
from backbone.settings import Settings

__all__ = ["LinkSummary", "records_sql", "run_linkage"]

Progress = Callable[[str], None]

# what the model reads of the linkage input (what goes to Spark): the matching
# fields, not the partners' local ids or state student ids
MODEL_COLUMNS = tuple(
    c for c in prepare.LINKAGE_COLUMNS if c not in ("local_id", "state_student_id")
)


@dataclass(frozen=True)
class LinkSummary:
    run_id: int
    records: int
    pairs_scored: int
    deterministic_links: int
    auto_links: int
    encoded_links: int
    review_pairs: int
    refused_by_constraints: int
    persons: int
    new_persons: int
    merges: int
    splits: int
    seconds: float
    model_path: Path
    model_note: str | None = None
    """Why no model was trained or used, or which training rules it skipped."""
    with_model: bool = True
    """False when pairs were not scored by a model (nothing it could compare)."""
    auto_link_probability: float = 1.0
    """the match probability from which the model's pairs were linked this run"""
    auto_link_dice: float | None = None
    """the Dice similarity from which encoded pairs were linked (None: no encodings)"""
    unserved: tuple[tuple[str, int], ...] = ()
    """(partner, records): a partner's records linked to persons other partners
    hold that its own facts do not back (a roster line of a child it never
    enrolled or served: they open nothing, and many of them deserve a look)"""


def records_sql(where: str, start_month: int) -> str:
    """Partner records (``pr``) with the schools they are known at.

    ``schools``: the school a partner reports (a program's roster, the college's
    high school) or a district's enrollments. ``school_years``: the same as
    "school|school year" where the year is known: each enrollment's, and for a
    reported school the latest school year of the record's program participation
    (rosters are sent year by year, so the school reported last is that year's).
    ``reports_school``: the partner named the school itself (a program, the college).
    """
    year = school_year_sql("pp.begin_date", start_month)
    return f"""
    SELECT pr.partner_id, pr.local_id, pr.first_name, pr.middle_name, pr.last_surname,
           pr.birth_date, pr.birth_sex, pr.address, pr.postal_code, pr.state_student_id,
           list_distinct(list_filter(
               list_append(coalesce(enrolled.schools, []), coalesce(s.name, pr.school_name)),
               lambda x: x IS NOT NULL)) AS schools,
           list_distinct(list_filter(
               list_append(coalesce(enrolled.school_years, []),
                           coalesce(s.name, pr.school_name) || '|' || took_part.school_year),
               lambda x: x IS NOT NULL)) AS school_years,
           pr.school_name IS NOT NULL AS reports_school
    FROM identity.partner_record pr
    LEFT JOIN ref.school s ON s.school_id = pr.school_id
    LEFT JOIN (
        SELECT e.provider_partner_id, e.student_local_id, list(DISTINCT rs.name) AS schools,
               list(DISTINCT rs.name || '|' || e.school_year) AS school_years
        FROM analytic.enrollment e JOIN ref.school rs USING (school_id)
        GROUP BY ALL
    ) enrolled ON enrolled.provider_partner_id = pr.partner_id
              AND enrolled.student_local_id = pr.local_id
    LEFT JOIN (
        SELECT pp.provider_partner_id, pp.student_local_id, max({year}) AS school_year
        FROM analytic.program_participation pp GROUP BY ALL
    ) took_part ON took_part.provider_partner_id = pr.partner_id
               AND took_part.student_local_id = pr.local_id
    WHERE {where}
    """


def _scalar(con: Connection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


class InputsChanged(Exception):
    """Another process changed what the run read while it computed; run again."""


def _inputs_fingerprint(con: Connection) -> tuple[Any, ...]:
    """What a run reads, summarized: every change to it (a review, an agreement, a
    purge, another link run) leaves an audit entry, so the newest such entry changes
    with it; a load changes the digest of the records it reads (partner records, and
    the enrollments and program participations that name their schools), new
    encodings theirs. A file received, refused or found already loaded changes no
    record (a sum of row hashes: duplicate rows do not cancel out), and a load of other facts (attendance, assessments) none it reads, so
    neither makes the run start again."""
    row = con.execute(
        """
        SELECT (SELECT max(seq) FROM gov.audit_log
                WHERE json_extract_string(entry, '$.action') IN
                      ('review', 'link', 'purge', 'retention', 'agreement', 'partner'))
                   AS last_change,
               (SELECT (count(*), sum(hash(partner_id, local_id, first_name,
                        middle_name, last_surname, birth_date, birth_sex, birth_year,
                        birth_quarter, address, postal_code, state_student_id,
                        school_id, school_name)::HUGEINT))
                FROM identity.partner_record),
               (SELECT (count(*), sum(hash(provider_partner_id, student_local_id,
                        school_id, school_year)::HUGEINT)) FROM analytic.enrollment),
               (SELECT (count(*), sum(hash(provider_partner_id, student_local_id,
                        begin_date)::HUGEINT)) FROM analytic.program_participation),
               (SELECT count(*) FROM identity.review_decision),
               (SELECT (count(*), bit_xor(hash(concat_ws('|', partner_id, local_id,
                        clk, received_at)))) FROM identity.encoding),
               (SELECT max(run_id) FROM identity.link_run)
        """
    ).fetchall()
    return tuple(row[0])


def run_linkage(
    unit: Session,
    path: Path,
    settings: Settings,
    *,
    linkable: set[tuple[str, str]],
    retrain: bool = False,
    progress: Progress | None = None,
    engine: EngineChoice | None = None,
) -> LinkSummary:
    """Link every partner record in the warehouse; returns what the run did.

    ``linkable`` holds the partner pairs (both orders) whose agreements in force
    allow linking their records; no other pair is ever linked. The first run trains
    the model; later runs score with the saved one (so new submissions do not move
    earlier pairs) unless ``retrain`` or the saved model's comparisons differ from
    this version's. Between reading its inputs and writing its results the run
    hands the warehouse file back (``unit.released()``), so other processes are not
    kept waiting while the model works; if what it read changed meanwhile it raises
    :class:`InputsChanged` and writes nothing. Its times are the unit's clock.
    On Spark (``engine``) the model trains and scores there; everything else, and
    every write, happens here.
    """
    engine = engine or EngineChoice()
    con = unit.con
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    at = unit.clock().replace(tzinfo=None)
    ceiling = float(settings["linkage.auto_link_probability"])
    target = float(settings["linkage.target_precision"])
    twins_to_review = bool(settings["linkage.twins_to_review"])
    lower = float(settings["linkage.review_probability"])
    ceiling_dice = float(settings["linkage.auto_link_dice"])
    lower_dice = float(settings["linkage.review_dice"])
    saved = con.execute(
        "SELECT model_json FROM identity.link_run WHERE model_json <> '{}' "
        "ORDER BY run_id DESC LIMIT 1"
    ).fetchall()
    previous_model = saved[0][0] if saved else None

    with tempfile.TemporaryDirectory(prefix="backbone-link-") as scratch:
        api = scratch_api(
            Path(scratch),
            threads=int(settings["engine.threads"]),
            memory_limit=str(settings["linkage.memory_limit"]),
        )
        s = api.duckdb_con
        try:
            say("standardizing partner records")
            # the scratch database is closed at the end: nothing to unregister
            register(
                s,
                "clear_records",
                arrow(
                    con,
                    records_sql("TRUE", settings["calendar.school_year_start_month"]),
                ),
            )
            register(
                s,
                "encodings",
                arrow(con, "SELECT partner_id, local_id, clk FROM identity.encoding"),
            )
            register(
                s,
                "old_assignment",
                arrow(
                    con,
                    "SELECT partner_id, local_id, person_id FROM identity.record_person",
                ),
            )
            register(
                s, "decisions", arrow(con, "SELECT * FROM identity.review_decision")
            )
            register(
                s,
                "linkable",
                pa.table(
                    {
                        "partner_l": [a for a, _ in sorted(linkable)],
                        "partner_r": [b for _, b in sorted(linkable)],
                    },
                    schema=pa.schema(
                        [("partner_l", pa.string()), ("partner_r", pa.string())]
                    ),
                ),
            )
            before = _inputs_fingerprint(con)
            # the inputs are in memory: give the warehouse back while the model works
            with unit.released():
                prepare.load_nicknames(s)
                create_table_as(
                    s, "linkage_input", prepare.linkage_input_sql("clear_records")
                )
                _number_records(s)
                n_records = int(_scalar(s, "SELECT count(*) FROM records"))
                n_clear = int(_scalar(s, "SELECT count(*) FROM linkage_input"))

                pairs_scored = 0
                model_text = "{}"
                s.execute(
                    "CREATE TABLE scored (unique_id_l BIGINT, unique_id_r BIGINT, "
                    "match_weight DOUBLE, match_probability DOUBLE, "
                    "like_twins BOOLEAN)"
                )
                # the model scores pairs of records from two partners; with records of
                # one partner only (a partnership's first feed) there is nothing to score
                holders = {
                    str(r[0])
                    for r in s.execute(
                        "SELECT DISTINCT partner_id FROM linkage_input"
                    ).fetchall()
                }
                pairs = {(a, b) for a, b in linkable if a != b and {a, b} <= holders}
                model_note: str | None = None
                if len(holders) < 2:
                    model_note = (
                        "no model: the names and birth dates are all one partner's "
                        "(a partner's records are never linked to each other); "
                        "each record is its own person until a second partner sends"
                    )
                elif not pairs:
                    model_note = (
                        "no model: no two partners holding records may be linked "
                        "under their agreements (linkage.allowed, linkable_with)"
                    )
                filled = model.filled_fields(s, "linkage_input")
                compared = model.compared_fields(filled)
                if n_clear >= 2 and pairs and not compared:
                    model_note = (
                        "no model: no identifying field is filled by two partners"
                    )
                if n_clear >= 2 and pairs and compared:
                    if engine.on_spark:
                        say(f"sending the linkage input to {engine.where()}")
                    # on Spark, only the records of partners that may be linked to
                    # another holder leave the warehouse (here all are scored, and
                    # the pairs no agreement allows dropped after)
                    linked = sorted({p for pair in pairs for p in pair})
                    with model_place(
                        engine,
                        api,
                        "linkage_input",
                        MODEL_COLUMNS,
                        where=f"partner_id IN ({', '.join(map(literal, linked))})",
                    ) as place:
                        # a model saved by a version that compared differently, or
                        # before a field was filled by two partners, is retrained
                        if (
                            previous_model
                            and not retrain
                            and model.same_design(previous_model, compared)
                        ):
                            say("scoring with the saved model")
                            linker = model.trained(
                                place.api, place.records, previous_model, compared
                            )
                        else:
                            say(f"training the model on {n_clear:,} records (EM)")
                            linker, skipped = model.train(
                                place.api, place.records, filled, n=place.count
                            )
                            if skipped:
                                model_note = (
                                    "the model had nothing to learn from in: "
                                    f"{'; '.join(skipped)} (it uses what it was given)"
                                )
                        model_text = model.model_json(linker, compared)
                        say("scoring blocked pairs")
                        pairs_scored = place.scored(
                            linker.inference.predict(), "predicted", lower
                        )
                    s.execute(
                        "INSERT INTO scored SELECT p.unique_id_l, p.unique_id_r, "
                        "p.match_weight, p.match_probability, "
                        f"{like_twins_sql('l', 'r') if twins_to_review else 'FALSE'} "
                        "FROM predicted p "
                        "JOIN linkage_input l ON l.unique_id = p.unique_id_l "
                        "JOIN linkage_input r ON r.unique_id = p.unique_id_r"
                    )

                say("scoring privacy-preserving encodings")
                create_table_as(s, "dice_scores", dice_scores_sql("encoded_records"))
                pairs_scored += int(_scalar(s, "SELECT count(*) FROM dice_scores"))
                create_table_as(s, "encoded", dice_edges_sql("dice_scores", lower_dice))
                has_encoded = bool(_scalar(s, "SELECT count(*) > 0 FROM dice_scores"))
                upper_dice = (
                    float(
                        _scalar(
                            s,
                            dice_threshold_sql(
                                "dice_scores", target, lower_dice, ceiling_dice
                            ),
                        )
                    )
                    if has_encoded
                    else ceiling_dice
                )

                say("applying identifiers, reviews and thresholds")
                upper = _scalar(s, calibrated_threshold_sql("scored", target, ceiling))
                create_table_as(s, "edges", _edges_sql(upper, upper_dice))
                say("joining pairs into persons")
                create_table_as(
                    s,
                    "linked",
                    "SELECT unique_id_l, unique_id_r FROM edges WHERE decision = 'link'",
                )
                cluster.connected_components(api, s, "records", "linked", "clusters")
                refused = _enforce_constraints(s)
                s.execute(_finalize_edges_sql())
            con = unit.con  # the unit of work's cursor, opened again
            if _inputs_fingerprint(con) != before:
                raise InputsChanged(
                    "partner records, reviews or encodings changed while linking"
                )
            # drawn in the transaction that writes the run: a number drawn before
            # the pause was rolled back with the reads, and the engine, closed
            # meanwhile, could hand it out again
            run_id = next_id(con, "identity.link_run_id_seq")
            say("keeping person ids stable")
            counts = _assign_person_ids(s, con, run_id, at)
            summary_counts = s.execute(
                """
                SELECT count(*) FILTER (WHERE decision = 'link' AND method = 'deterministic'),
                       count(*) FILTER (WHERE decision = 'link' AND method = 'model'),
                       count(*) FILTER (WHERE decision = 'link' AND method = 'encoded'),
                       count(*) FILTER (WHERE decision = 'review')
                FROM edges
                """
            ).fetchall()[0]

            model_path = path / "linkage" / f"run-{run_id}-model.json"
            say("writing persons and evidence")
            _write(
                con,
                s,
                run_id=run_id,
                at=at,
                finished=unit.clock().replace(tzinfo=None),
                model_text=model_text,
                row=dict(
                    records=n_records,
                    pairs_scored=pairs_scored,
                    auto_links=summary_counts[1],
                    deterministic_links=summary_counts[0],
                    encoded_links=summary_counts[2],
                    review_pairs=summary_counts[3],
                    refused_by_constraints=refused,
                    **counts,
                    auto_link_probability=upper,
                    review_probability=lower,
                ),
            )
            unit.write_file(model_path, model_text)  # there once the run commits
        finally:
            s.close()
    return LinkSummary(
        run_id=run_id,
        records=n_records,
        pairs_scored=pairs_scored,
        deterministic_links=summary_counts[0],
        auto_links=summary_counts[1],
        encoded_links=summary_counts[2],
        review_pairs=summary_counts[3],
        refused_by_constraints=refused,
        seconds=time.perf_counter() - started,
        model_path=model_path,
        model_note=model_note,
        with_model=model_text != "{}",
        auto_link_probability=upper,
        auto_link_dice=upper_dice if has_encoded else None,
        persons=counts["persons"],
        new_persons=counts["new_persons"],
        merges=counts["merges"],
        splits=counts["splits"],
    )


def _number_records(s: Connection) -> None:
    """``records``: every record to place (clear-text and encoded-only), numbered."""
    create_table_as(
        s,
        "records",
        """
        SELECT unique_id, partner_id, local_id, state_student_id FROM linkage_input
        UNION ALL
        SELECT (SELECT coalesce(max(unique_id), 0) FROM linkage_input)
                   + row_number() OVER (ORDER BY e.partner_id, e.local_id),
               e.partner_id, e.local_id, NULL
        FROM encodings e ANTI JOIN linkage_input i USING (partner_id, local_id)
        """,
    )
    create_table_as(
        s,
        "encoded_records",
        """
        SELECT r.unique_id, r.partner_id, from_base64(e.clk) AS clk,
               r.unique_id IN (SELECT unique_id FROM linkage_input) AS clear
        FROM encodings e JOIN records r USING (partner_id, local_id)
        """,
    )
    # reviewers' decisions, as unordered pairs of unique ids
    create_table_as(
        s,
        "reviewed",
        """
        SELECT least(a.unique_id, b.unique_id) AS unique_id_l,
               greatest(a.unique_id, b.unique_id) AS unique_id_r, d.decision
        FROM decisions d
        JOIN records a ON a.partner_id = d.partner_id_l AND a.local_id = d.local_id_l
        JOIN records b ON b.partner_id = d.partner_id_r AND b.local_id = d.local_id_r
        """,
    )


def like_twins_sql(left: str, right: str) -> str:
    """True for two records born the same day whose first names have nothing in
    common (not alike, not forms of one name, not an initial, not given the other
    way round): twins, as often as one person. The model may score them high on
    everything else they share (surname, home); they are never linked unseen, but
    wait for a reviewer."""
    first_l, first_r = f"{left}.first_name", f"{right}.first_name"
    return f"""coalesce(
        {left}.birth_date = {right}.birth_date
        AND jaro_winkler_similarity({first_l}, {first_r}) < 0.8
        AND array_length(array_intersect({left}.first_forms, {right}.first_forms)) = 0
        AND least(length({first_l}), length({first_r})) > 1
        AND {first_l} IS DISTINCT FROM {right}.last_name
        AND {left}.last_name IS DISTINCT FROM {first_r},
        FALSE)"""


def calibrated_threshold_sql(scored: str, target: float, ceiling: float) -> str:
    """The match probability from which a run links the model's pairs: the lowest
    at which the pairs at or above it are, by the model's own probabilities, right
    at least ``target`` of the time (their mean probability; adding a pair of lower
    probability only lowers it, so the first that falls short ends the search),
    never above ``ceiling`` (the setting's fixed bound) and never below 0.5 (a pair
    the model thinks more likely two people is not linked unseen). Pairs of one
    probability are linked together or not at all: the mean runs over all of them."""
    return f"""
    WITH ranked AS (
        SELECT match_probability AS p,
               avg(match_probability) OVER (
                   ORDER BY match_probability DESC
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS expected
        FROM {scored}
    )
    SELECT greatest(0.5, least({float(ceiling)},
                              coalesce(min(p) FILTER (WHERE expected >= {float(target)}),
                                       {float(ceiling)})))
    FROM ranked
    """


def _edges_sql(upper: float, upper_dice: float) -> str:
    """``edges``: one row per pair with every kind of evidence, and a decision."""
    return f"""
    WITH evidence AS (
        SELECT unique_id_l, unique_id_r, 'model' AS method, match_weight,
               match_probability, match_probability >= {upper} AND NOT like_twins
               AS strong
        FROM scored
        UNION ALL
        SELECT unique_id_l, unique_id_r, 'encoded', NULL, dice, dice >= {upper_dice}
        FROM encoded
        UNION ALL
        SELECT a.unique_id, b.unique_id, 'deterministic', NULL, 1.0, TRUE
        FROM records a JOIN records b
          ON a.state_student_id = b.state_student_id AND a.unique_id < b.unique_id
         AND a.partner_id <> b.partner_id
        UNION ALL
        SELECT unique_id_l, unique_id_r, 'review', NULL, 1.0, TRUE
        FROM reviewed WHERE decision = 'same'
    ),
    best AS (
        SELECT unique_id_l, unique_id_r,
               -- strong evidence first, then people over identifiers over the model
               arg_min(method, {cluster.method_rank_sql()}
                               - CASE WHEN strong THEN 10 ELSE 0 END) AS method,
               max(match_weight) AS match_weight,
               max(match_probability) AS match_probability,
               bool_or(strong) AS strong,
               bool_or(method = 'review') AS reviewed_same
        FROM evidence GROUP BY ALL
    )
    SELECT b.*, a.partner_id AS partner_l, c.partner_id AS partner_r,
           CASE
               WHEN d.decision = 'different' THEN 'refused'
               WHEN NOT b.reviewed_same AND a.state_student_id <> c.state_student_id
               THEN 'refused'
               WHEN b.strong THEN 'link'
               ELSE 'review'
           END AS decision,
           CASE
               WHEN d.decision = 'different' THEN {literal(cluster.CONSTRAINTS[2])}
               WHEN NOT b.reviewed_same AND a.state_student_id <> c.state_student_id
               THEN {literal(cluster.CONSTRAINTS[1])}
           END AS reason
    FROM best b
    JOIN records a ON a.unique_id = b.unique_id_l
    JOIN records c ON c.unique_id = b.unique_id_r
    -- only partners whose agreements both allow it are ever linked
    SEMI JOIN linkable k ON k.partner_l = a.partner_id AND k.partner_r = c.partner_id
    LEFT JOIN reviewed d USING (unique_id_l, unique_id_r)
    """


def _enforce_constraints(s: Connection) -> int:
    """Re-form the clusters that break a constraint; returns the pairs refused."""
    create_table_as(
        s,
        "different",
        "SELECT unique_id_l, unique_id_r FROM reviewed WHERE decision = 'different'",
    )
    create_table_as(
        s,
        "conflicted",
        cluster.violating_clusters_sql("clusters", "records", "different"),
    )
    if not _scalar(s, "SELECT count(*) FROM conflicted"):
        return 0
    members = s.execute(
        """
        SELECT r.unique_id, r.partner_id, r.state_student_id
        FROM clusters c JOIN conflicted USING (cluster_id) JOIN records r USING (unique_id)
        """
    ).fetchall()
    inside = s.execute(
        """
        SELECT e.unique_id_l, e.unique_id_r, e.method, e.match_probability
        FROM edges e JOIN clusters c ON c.unique_id = e.unique_id_l
        JOIN conflicted USING (cluster_id)
        WHERE e.decision = 'link'
        """
    ).fetchall()
    different = {(a, b) for a, b in s.execute("SELECT * FROM different").fetchall()}
    labels, refused = cluster.resolve_conflicts(members, inside, different)
    relabel = pa.table(
        {
            "unique_id": pa.array(list(labels), pa.int64()),
            "cluster_id": pa.array(list(labels.values()), pa.int64()),
        }
    )
    refused_pairs = pa.table(
        {
            "unique_id_l": pa.array([r[0] for r in refused], pa.int64()),
            "unique_id_r": pa.array([r[1] for r in refused], pa.int64()),
            "reason": pa.array([r[2] for r in refused], pa.string()),
        }
    )
    with registered(s, relabel=relabel, refused_pairs=refused_pairs):
        s.execute(
            "UPDATE clusters SET cluster_id = relabel.cluster_id FROM relabel "
            "WHERE clusters.unique_id = relabel.unique_id"
        )
        s.execute(
            "UPDATE edges SET decision = 'refused', reason = refused_pairs.reason "
            "FROM refused_pairs WHERE edges.unique_id_l = refused_pairs.unique_id_l "
            "AND edges.unique_id_r = refused_pairs.unique_id_r"
        )
    return len(refused)


def _finalize_edges_sql() -> str:
    """A pair waiting for review whose records are one person anyway needs no review."""
    return """
    UPDATE edges SET decision = 'implied'
    FROM clusters a, clusters b
    WHERE edges.decision = 'review' AND a.unique_id = edges.unique_id_l
      AND b.unique_id = edges.unique_id_r AND a.cluster_id = b.cluster_id
    """


def _assign_person_ids(
    s: Connection,
    con: Connection,
    run_id: int,
    at: datetime,
) -> dict[str, int]:
    """Give every cluster a person id, keeping the ids of the last run.

    An old person's records may land in several clusters (a split): it keeps its id
    in the cluster holding most of them. A cluster may hold several old persons (a
    merge): it keeps the id of the one with most records there; the others retire,
    merged into it. Clusters with no old person get new ids.
    """
    create_table_as(
        s,
        "placed",
        """
        SELECT c.unique_id, c.cluster_id, r.partner_id, r.local_id, o.person_id AS old_id
        FROM clusters c JOIN records r USING (unique_id)
        LEFT JOIN old_assignment o USING (partner_id, local_id)
        """,
    )
    create_table_as(
        s,
        "overlap",
        """
        SELECT cluster_id, old_id, count(*) AS n FROM placed
        WHERE old_id IS NOT NULL GROUP BY ALL
        """,
    )
    # each old person's home cluster (most of its records), then each cluster's
    # heir among the old persons at home there
    create_table_as(
        s,
        "home",
        """
        SELECT old_id, arg_max(cluster_id, n * 1e12 - cluster_id) AS cluster_id, max(n) AS n
        FROM overlap GROUP BY old_id
        """,
    )
    create_table_as(
        s,
        "heir",
        """
        SELECT cluster_id, arg_max(old_id, n * 1e12 - old_id) AS person_id
        FROM home GROUP BY cluster_id
        """,
    )
    # clusters with no heir are new persons, numbered in the order of their first
    # record from ids the warehouse's sequence hands out (never one used before)
    create_table_as(
        s,
        "cluster_heir",
        """
        WITH firsts AS (
            SELECT cluster_id, min(partner_id || chr(31) || local_id) AS first_key
            FROM placed GROUP BY cluster_id
        )
        SELECT f.cluster_id, h.person_id AS heir,
               CASE WHEN h.person_id IS NULL THEN row_number() OVER (
                   PARTITION BY h.person_id IS NULL ORDER BY f.first_key) END AS new_rank
        FROM firsts f LEFT JOIN heir h USING (cluster_id)
        """,
    )
    fresh = int(_scalar(s, "SELECT count(*) FROM cluster_heir WHERE heir IS NULL"))
    ids = next_ids(con, "identity.person_id_seq", fresh)
    new_person_ids = pa.table(
        {
            "new_rank": pa.array(range(1, fresh + 1), pa.int64()),
            "person_id": pa.array(ids, pa.int64()),
        }
    )
    with registered(s, new_person_ids=new_person_ids):
        create_table_as(
            s,
            "cluster_person",
            """
            SELECT c.cluster_id, coalesce(c.heir, n.person_id) AS person_id,
                   c.heir IS NULL AS is_new
            FROM cluster_heir c LEFT JOIN new_person_ids n USING (new_rank)
            """,
        )
    # merges: old persons whose home cluster went to another id
    create_table_as(
        s,
        "events",
        f"""
        WITH merged AS (
            SELECT 'merge' AS event, cp.person_id, h.old_id AS other_person_id,
                   h.n AS records, h.cluster_id
            FROM home h JOIN cluster_person cp USING (cluster_id)
            WHERE cp.person_id <> h.old_id
        ),
        split AS (
            SELECT 'split' AS event, o.old_id AS person_id, cp.person_id AS other_person_id,
                   o.n AS records, o.cluster_id
            FROM overlap o JOIN cluster_person cp USING (cluster_id)
            WHERE cp.person_id <> o.old_id
              AND NOT EXISTS (SELECT 1 FROM merged m WHERE m.other_person_id = o.old_id
                              AND m.cluster_id = o.cluster_id)
        ),
        gone AS (
            SELECT 'retire' AS event, a.person_id, NULL::BIGINT, count(*), NULL::BIGINT
            FROM old_assignment a
            WHERE NOT EXISTS (SELECT 1 FROM overlap o WHERE o.old_id = a.person_id)
            GROUP BY a.person_id
        )
        SELECT e.*, {run_id} AS run_id FROM (
            SELECT * FROM merged UNION ALL SELECT * FROM split UNION ALL SELECT * FROM gone
        ) e
        """,
    )
    # evidence: the pairs that joined (merge) or the old pairs no longer linking (split)
    create_table_as(
        s,
        "event_evidence",
        """
        SELECT ev.event, ev.person_id, ev.other_person_id,
               to_json(list({
                   'left': ra.partner_id || ':' || ra.local_id,
                   'right': rb.partner_id || ':' || rb.local_id,
                   'method': e.method, 'probability': round(e.match_probability, 4),
                   'decision': e.decision, 'reason': e.reason
               } ORDER BY e.match_probability DESC) FILTER (WHERE e.unique_id_l IS NOT NULL))::VARCHAR
                   AS evidence
        FROM events ev
        LEFT JOIN placed pa ON pa.cluster_id = ev.cluster_id
             AND pa.old_id = CASE ev.event WHEN 'merge' THEN ev.other_person_id
                                           ELSE ev.person_id END
        LEFT JOIN edges e ON (e.unique_id_l = pa.unique_id OR e.unique_id_r = pa.unique_id)
        LEFT JOIN placed pb ON pb.unique_id = CASE WHEN e.unique_id_l = pa.unique_id
                                                   THEN e.unique_id_r ELSE e.unique_id_l END
        LEFT JOIN records ra ON ra.unique_id = e.unique_id_l
        LEFT JOIN records rb ON rb.unique_id = e.unique_id_r
        WHERE ev.event = 'retire' OR pb.unique_id IS NULL OR (
            CASE ev.event
                WHEN 'merge' THEN pb.cluster_id = ev.cluster_id AND pb.old_id IS DISTINCT FROM ev.other_person_id
                ELSE pb.old_id = ev.person_id AND pb.cluster_id <> ev.cluster_id
            END)
        GROUP BY ALL
        """,
    )
    counts = s.execute(
        """
        SELECT (SELECT count(*) FROM cluster_person),
               (SELECT count(*) FROM cluster_person WHERE is_new),
               (SELECT count(*) FROM events WHERE event = 'merge'),
               (SELECT count(*) FROM events WHERE event = 'split')
        """
    ).fetchall()[0]
    return dict(
        persons=counts[0], new_persons=counts[1], merges=counts[2], splits=counts[3]
    )


def _write(
    con: Connection,
    s: Connection,
    *,
    run_id: int,
    at: datetime,
    finished: datetime,
    model_text: str,
    row: dict[str, Any],
) -> None:
    """Replace the person index and the evidence in one transaction."""
    assignment = arrow(
        s,
        f"""
        WITH joined AS (
            SELECT unique_id_l AS unique_id, method FROM edges WHERE decision = 'link'
            UNION ALL
            SELECT unique_id_r, method FROM edges WHERE decision = 'link'
        ),
        how AS (
            SELECT unique_id, arg_min(method, {cluster.method_rank_sql()}) AS method
            FROM joined GROUP BY ALL
        )
        SELECT p.partner_id, p.local_id, cp.person_id, coalesce(h.method, 'single') AS method
        FROM placed p JOIN cluster_person cp USING (cluster_id)
        LEFT JOIN how h USING (unique_id)
        """,
    )
    new_persons = arrow(s, "SELECT person_id FROM cluster_person WHERE is_new")
    edges = arrow(
        s,
        f"""
        SELECT a.partner_id, a.local_id, b.partner_id, b.local_id, {run_id},
               e.method, e.match_weight, e.match_probability, e.decision, e.reason
        FROM edges e JOIN records a ON a.unique_id = e.unique_id_l
        JOIN records b ON b.unique_id = e.unique_id_r
        """,
    )
    events = arrow(
        s,
        """
        SELECT ev.run_id, ev.event, ev.person_id, ev.other_person_id, ev.records,
               coalesce(x.evidence, '[]')
        FROM events ev LEFT JOIN event_evidence x
          ON x.event = ev.event AND x.person_id = ev.person_id
         AND x.other_person_id IS NOT DISTINCT FROM ev.other_person_id
        """,
    )
    with (
        transaction(con),
        registered(
            con,
            new_assignment=assignment,
            new_persons=new_persons,
            new_edges=edges,
            new_events=events,
        ),
    ):
        con.execute("DELETE FROM identity.record_person")
        con.execute(
            "INSERT INTO identity.record_person SELECT partner_id, local_id, person_id, "
            "method, ? FROM new_assignment",
            [at],
        )
        con.execute(
            "INSERT INTO identity.person (person_id, created_at) "
            "SELECT person_id, ? FROM new_persons",
            [at],
        )
        con.execute(
            """
            UPDATE identity.person SET retired_at = ?, merged_into = m.person_id
            FROM (SELECT person_id, other_person_id FROM new_events WHERE event = 'merge') m
            WHERE identity.person.person_id = m.other_person_id
            """,
            [at],
        )
        con.execute(
            """
            UPDATE identity.person SET retired_at = ?
            WHERE person_id IN (SELECT person_id FROM new_events WHERE event = 'retire')
            """,
            [at],
        )
        con.execute("DELETE FROM identity.link_edge")
        con.execute(
            "INSERT INTO identity.link_edge (partner_id_l, local_id_l, partner_id_r, "
            "local_id_r, run_id, method, match_weight, match_probability, decision, "
            "reason) SELECT * FROM new_edges"
        )
        con.execute(
            "INSERT INTO identity.person_event SELECT *, ? FROM new_events", [at]
        )
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(
            f"INSERT INTO identity.link_run (run_id, started_at, finished_at, model_json, "
            f"{columns}) VALUES (?, ?, ?, ?, {marks})",
            [run_id, at, finished, model_text, *row.values()],
        )
