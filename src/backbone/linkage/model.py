"""The probabilistic model: Splink settings, training by EM, scoring pairs.

A Fellegi–Sunter model built with Splink. Comparisons follow what a person expert
looks at: first name (exact, nickname of the same formal name, Jaro–Winkler), last
name (exact, Jaro–Winkler, a shared part of a hyphenated or changed surname), birth
date (exact, day and month swapped, same year and month, within ten days), sex,
address, postal code and school (the same school in the same school year, or
a school in common). Blocking rules keep the pairs tractable and never
pair two records of the same partner (see :mod:`backbone.linkage.constraints`).
m is estimated by EM, u by random sampling; the trained model is JSON and is saved
with each run so every pair's weights can be explained later.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# Splink (and sqlglot under it) loads only when a model is built or used.
if TYPE_CHECKING:
    from splink import Linker, SettingsCreator
    from splink.internals.database_api import DatabaseAPISubClass

__all__ = [
    "BLOCKING_RULES",
    "DIFFERENT_PARTNERS",
    "TRAINING_RULES",
    "ComparisonWeight",
    "PairScore",
    "explain_pair",
    "settings",
    "train",
]

DIFFERENT_PARTNERS = "l.partner_id <> r.partner_id"

# Each rule finds pairs the others may miss: a typo, a nickname, a swapped or
# missing birth date, a changed surname. Overlaps are removed by Splink.
BLOCKING_RULES: tuple[str, ...] = (
    "l.birth_date = r.birth_date AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.first_canon = r.first_canon AND l.last_name = r.last_name",
    "l.first_canon = r.first_canon AND l.birth_date = r.birth_date",
    "l.birth_date = r.birth_date_swapped AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.birth_date_swapped = r.birth_date AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.last_name = r.last_name AND l.birth_year = r.birth_year "
    "AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    # a missing birth date leaves the names alone to find the pair
    "(l.birth_date IS NULL OR r.birth_date IS NULL) AND l.last_name = r.last_name "
    "AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    "(l.birth_date IS NULL OR r.birth_date IS NULL) AND l.first_canon = r.first_canon "
    "AND substr(l.last_name, 1, 2) = substr(r.last_name, 1, 2)",
)

# EM passes: each fixes some fields by blocking on them and learns the others.
TRAINING_RULES: tuple[str, ...] = (
    "l.birth_date = r.birth_date",
    # names alone pair many namesakes; the middle initial keeps the block mostly
    # true pairs, so the birth-date levels are learned from real disagreements
    "l.first_canon = r.first_canon AND l.last_name = r.last_name "
    "AND substr(l.middle_name, 1, 1) = substr(r.middle_name, 1, 1)",
)

# Pairs that agree on all of these are almost surely one person; used (with an
# assumed recall) to estimate how many of all pairs are matches.
_PRIOR_RULE = (
    "l.first_name = r.first_name AND l.last_name = r.last_name "
    "AND l.birth_date = r.birth_date"
)
_PRIOR_RECALL = 0.7


@dataclass(frozen=True)
class ComparisonWeight:
    """One comparison's part of a pair's evidence."""

    comparison: str
    """first_name, last_name, birth_date, ..."""
    level: str
    """the level the pair reached, as Splink labels it (e.g. "Exact match")"""
    weight: float
    """its match weight (log2 of the Bayes factor), term-frequency adjusted"""


@dataclass(frozen=True)
class PairScore:
    """One pair scored by a saved model."""

    match_weight: float
    match_probability: float
    parts: tuple[ComparisonWeight, ...]


def _comparisons() -> list[Any]:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return [
        cl.CustomComparison(
            output_column_name="first_name",
            comparison_levels=[
                cll.NullLevel("first_name"),
                cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
                cll.CustomLevel(
                    "len(list_intersect(first_forms_l, first_forms_r)) > 0",
                    "nickname of the same name",
                    base_dialect_str="duckdb",
                ),
                cll.JaroWinklerLevel("first_name", 0.92),
                cll.JaroWinklerLevel("first_name", 0.80),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="middle_name",
            comparison_levels=[
                cll.NullLevel("middle_name"),
                cll.ExactMatchLevel("middle_name"),
                cll.CustomLevel(
                    "substr(middle_name_l, 1, 1) = substr(middle_name_r, 1, 1)",
                    "same initial",
                    base_dialect_str="duckdb",
                ),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="last_name",
            comparison_levels=[
                cll.NullLevel("last_name"),
                cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
                cll.JaroWinklerLevel("last_name", 0.92),
                cll.CustomLevel(
                    "len(list_intersect(surname_parts_l, surname_parts_r)) > 0",
                    "shares a surname part (hyphenated or changed)",
                    base_dialect_str="duckdb",
                ),
                cll.JaroWinklerLevel("last_name", 0.80),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="birth_date",
            comparison_levels=[
                cll.NullLevel("birth_date"),
                cll.ExactMatchLevel("birth_date"),
                cll.CustomLevel(
                    "birth_date_l = birth_date_swapped_r",
                    "day and month swapped",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "abs(date_diff('day', birth_date_l, birth_date_r)) <= 10",
                    "within ten days",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "year(birth_date_l) = year(birth_date_r)",
                    "same year",
                    base_dialect_str="duckdb",
                ),
                cll.ElseLevel(),
            ],
        ),
        cl.ExactMatch("sex"),
        cl.CustomComparison(
            output_column_name="address",
            comparison_levels=[
                cll.NullLevel("address"),
                cll.ExactMatchLevel("address"),
                cll.JaroWinklerLevel("address", 0.90),
                cll.ElseLevel(),
            ],
        ),
        cl.ExactMatch("postal_code"),
        cl.CustomComparison(
            output_column_name="school",
            comparison_levels=[
                # two districts' enrollments say nothing of each other (a mover is
                # never at both at once): only a school a partner reports is evidence
                cll.CustomLevel(
                    "schools_l IS NULL OR schools_r IS NULL "
                    "OR NOT (reports_school_l OR reports_school_r)",
                    "no reported school to compare",
                    base_dialect_str="duckdb",
                ).configure(is_null_level=True),
                cll.CustomLevel(
                    "len(list_intersect(school_years_l, school_years_r)) > 0",
                    "the same school in the same school year",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "len(list_intersect(schools_l, schools_r)) > 0",
                    "a school in common",
                    base_dialect_str="duckdb",
                ),
                cll.ElseLevel(),
            ],
        ),
    ]


def settings() -> SettingsCreator:
    """The model's Splink settings (untrained)."""
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=_comparisons(),
        blocking_rules_to_generate_predictions=[
            {
                "blocking_rule": f"{rule} AND {DIFFERENT_PARTNERS}",
                "sql_dialect": "duckdb",
            }
            for rule in BLOCKING_RULES
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=["partner_id"],
    )


def train(
    db_api: DatabaseAPISubClass,
    table: str,
    *,
    seed: int = 20261130,
    u_pairs: float = 2e6,
    em_pairs: float = 2e6,
) -> tuple[Linker, list[str]]:
    """A linker over ``table`` (already in the Splink database) with parameters
    estimated, and the training rules skipped because the data gave them nothing to
    learn from (no pair they block, or a field empty for every partner)."""
    from splink import Linker
    from splink.internals.exceptions import EMTrainingException

    _quiet_splink()
    records = db_api.register(table)
    linker = Linker(records, settings(), log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [_PRIOR_RULE], recall=_PRIOR_RECALL
    )
    # With no pair its rule finds (a first small feed), the prior is estimated as
    # 0 or 1, and EM and scoring take its logarithm: assume one match among all
    # pairs instead, the least that still lets evidence decide (set before EM,
    # whose sessions start from it).
    skipped = []
    n = int(db_api.duckdb_con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    if _floor_prior(linker, n):
        skipped.append("the prior (no pair found to estimate it from)")
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=seed)
    for rule in TRAINING_RULES:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                f"{rule} AND {DIFFERENT_PARTNERS}", max_pairs=em_pairs
            )
        except EMTrainingException:
            # named by the fields it blocks on, not by its SQL
            fields = dict.fromkeys(re.findall(r"\bl\.(\w+)", rule))
            skipped.append("pairs agreeing on " + ", ".join(fields))
    _floor_prior(linker, n)  # EM estimates it again, from as little
    return linker, skipped


def _floor_prior(linker: Linker, n: int) -> bool:
    """Set the prior to one match among all ``n`` records' pairs when it is 0 or 1;
    True when it had to be."""
    settings_obj = linker._settings_obj
    if 0.0 < settings_obj._probability_two_random_records_match < 1.0:
        return False
    settings_obj._probability_two_random_records_match = 2.0 / max(n * (n - 1), 2)
    return True


def _design(model: dict[str, Any]) -> list[Any]:
    """What a model compares and how it blocks, without its trained parameters."""
    rules = [
        r["blocking_rule"] if isinstance(r, dict) else r
        for r in model["blocking_rules_to_generate_predictions"]
    ]
    return [
        rules,
        [
            (
                c["output_column_name"],
                [lv["sql_condition"] for lv in c["comparison_levels"]],
            )
            for c in model["comparisons"]
        ],
    ]


def same_design(model: str) -> bool:
    """True when a saved model compares and blocks as this version's model does."""
    return _design(json.loads(model)) == _design(
        settings().create_settings_dict("duckdb")
    )


def trained(db_api: DatabaseAPISubClass, table: str, model: str) -> Linker:
    """A linker over ``table`` with the parameters of a saved model."""
    from splink import Linker

    _quiet_splink()
    return Linker(db_api.register(table), json.loads(model), log_level=logging.ERROR)


def model_json(linker: Linker) -> str:
    """The trained model as JSON (saved with the run)."""
    return json.dumps(linker.misc.save_model_to_json(), sort_keys=True)


def explain_pair(
    db_api: DatabaseAPISubClass,
    model: str,
    left: str,
    right: str,
) -> PairScore:
    """Score one pair with a saved model, comparison by comparison.

    ``left`` and ``right`` are one-row tables of linkage input that also carry
    ``tf_first_name`` and ``tf_last_name``, the names' frequencies among all
    records.
    """
    from splink import Linker
    from splink.internals.splink_dataframe import SplinkDataFrame

    _quiet_splink()
    linker = Linker(db_api.register(left), json.loads(model), log_level=logging.ERROR)
    scored: SplinkDataFrame = linker.inference.score_pair(
        db_api.register(left), db_api.register(right)
    )
    row = scored.as_record_list()[0]
    levels = _level_labels(json.loads(model))
    parts = []
    for comparison, labels in levels.items():
        gamma = row.get(f"gamma_{comparison}")
        weight = float(row.get(f"mw_{comparison}") or 0.0)
        weight += float(row.get(f"mw_tf_adj_{comparison}") or 0.0)
        label = labels.get(int(gamma), str(gamma)) if gamma is not None else ""
        parts.append(ComparisonWeight(comparison, label, weight))
    return PairScore(
        float(row["match_weight"]), float(row["match_probability"]), tuple(parts)
    )


def _level_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for comparison in model["comparisons"]:
        levels = comparison["comparison_levels"]
        labels = {}
        gamma = len([lv for lv in levels if not lv.get("is_null_level")]) - 1
        for level in levels:
            if level.get("is_null_level"):
                labels[-1] = "missing on one side"
                continue
            labels[gamma] = level.get("label_for_charts") or level["sql_condition"]
            gamma -= 1
        out[comparison["output_column_name"]] = labels
    return out


def _quiet_splink() -> None:
    logging.getLogger("splink").setLevel(logging.WARNING)
