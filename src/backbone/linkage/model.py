"""The probabilistic model: Splink settings, training by EM, scoring pairs.

A Fellegi–Sunter model built with Splink, shaped by the partnership's data, not by
the demo's. Comparisons follow what a person expert looks at — first name (exact,
nickname of the same formal name, first and last name the other way round, an
initial, Jaro–Winkler), last name, birth date (exact, day and month swapped, one
digit mistyped, within ten days, same year), sex, where the person lives (street and
postal code as one piece of evidence), school — and a run compares only the fields
that two partners fill (:func:`compared_fields`). EM sessions are chosen from the
same fields (:func:`training_rules`), u is estimated by random sampling, every
level's m is smoothed by one pseudo-pair, term frequencies adjust names. Blocking
rules pair any two records that agree on two of names, birth date, address and
postal code, and never two records of the same partner (see
:mod:`backbone.linkage.cluster`). The trained model is JSON, saved with each run so
every pair's weights can be explained later.
"""

from __future__ import annotations

import copy
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
    "COMPARED_FIELDS",
    "DIFFERENT_PARTNERS",
    "ComparisonWeight",
    "PairScore",
    "compared_fields",
    "explain_pair",
    "filled_fields",
    "settings",
    "train",
    "training_rules",
]

DIFFERENT_PARTNERS = "l.partner_id <> r.partner_id"

# Blocking: a true pair is lost only when every rule misses it. The rules put
# together every pair that agrees on any two of first name (or a nickname of the
# same name), last name, birth date, address and postal code, whatever has
# happened to the rest; and beside that a day and month swapped, names given the
# other way round, a missing birth date. `bench/linkage_public.py` measures the
# share of true pairs they reach (blocking recall) apart from the model. Splink
# removes the overlaps.
BLOCKING_RULES: tuple[str, ...] = (
    # a first name and ...
    "l.first_canon = r.first_canon AND l.last_name = r.last_name",
    "l.first_canon = r.first_canon AND l.birth_date = r.birth_date",
    "l.postal_code = r.postal_code AND l.first_canon = r.first_canon",
    # a last name and ...
    "l.birth_date = r.birth_date AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.postal_code = r.postal_code AND l.last_name = r.last_name",
    # a birth date and ...
    "l.birth_date = r.birth_date AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    "l.postal_code = r.postal_code AND l.birth_date = r.birth_date",
    # the address, and with it anything (siblings share it: few pairs each); the
    # house number, with a name, where the street is misspelled or cut short
    "l.address = r.address",
    "l.address_number = r.address_number AND l.last_name = r.last_name",
    "l.address_number = r.address_number AND l.first_canon = r.first_canon",
    "l.address_number = r.address_number AND l.postal_code = r.postal_code",
    "l.address_number = r.address_number AND l.street = r.street",
    "l.street = r.street AND l.birth_date = r.birth_date",
    # day and month swapped; a birth year and two names
    "l.birth_date = r.birth_date_swapped AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.birth_date_swapped = r.birth_date AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.last_name = r.last_name AND l.birth_year = r.birth_year "
    "AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    # the birth year mistyped: day and month and one name
    "l.birth_month_day = r.birth_month_day AND l.last_name = r.last_name",
    "l.birth_month_day = r.birth_month_day AND l.first_canon = r.first_canon",
    # first and last name the other way round, both or one of them with the date
    "l.first_name = r.last_name AND l.last_name = r.first_name",
    "l.first_name = r.last_name AND l.birth_date = r.birth_date",
    "l.last_name = r.first_name AND l.birth_date = r.birth_date",
    "l.first_name = r.last_name AND l.postal_code = r.postal_code",
    "l.last_name = r.first_name AND l.postal_code = r.postal_code",
    # a missing birth date leaves the names alone to find the pair
    "(l.birth_date IS NULL OR r.birth_date IS NULL) AND l.last_name = r.last_name "
    "AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    "(l.birth_date IS NULL OR r.birth_date IS NULL) AND l.first_canon = r.first_canon "
    "AND substr(l.last_name, 1, 2) = substr(r.last_name, 1, 2)",
)

# The fields each comparison reads: it is part of a run's model only when at least
# two partners filled one of them (no evidence from a field nobody can compare).
COMPARED_FIELDS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name",),
    "middle_name": ("middle_name",),
    "last_name": ("last_name",),
    "birth_date": ("birth_date",),
    "sex": ("sex",),
    "residence": ("address", "postal_code"),
    "school": ("schools",),
}

# EM sessions: each fixes the fields it blocks on and learns the others', so every
# comparison is learned in a session that does not block on it.
_SAME_BIRTH_DATE = "l.birth_date = r.birth_date"
# twins share a birth date and a home: where homes are compared, names and sex are
# learned from pairs born the same day who live apart, or EM takes twins for one
# person whose first name and sex were mistyped
_SAME_BIRTH_DATE_APART = (
    "l.birth_date = r.birth_date AND NOT coalesce("
    "l.address = r.address OR l.postal_code = r.postal_code, FALSE)"
)
_SAME_NAMES = "l.first_canon = r.first_canon AND l.last_name = r.last_name"
# names alone pair many namesakes: a middle initial, where partners send middle
# names, keeps that session mostly true pairs
_SAME_NAMES_AND_INITIAL = (
    f"{_SAME_NAMES} AND substr(l.middle_name, 1, 1) = substr(r.middle_name, 1, 1)"
)

# the fields a training session blocks on, as a person names them
_SAYS = {
    "first_canon": "first name",
    "last_name": "last name",
    "middle_name": "middle initial",
    "birth_date": "birth date",
    "postal_code": "postal code",
    "address": "address",
}


def training_rules(filled: frozenset[str]) -> list[str]:
    """The EM sessions for data whose ``filled`` fields (:func:`filled_fields`)
    two partners fill: only sessions on those fields."""
    rules = []
    home = [f for f in ("postal_code", "address") if f in filled]
    if "birth_date" in filled:
        rules.append(_SAME_BIRTH_DATE_APART if home else _SAME_BIRTH_DATE)
    if {"first_name", "last_name"} <= filled:
        middle = "middle_name" in filled
        rules.append(_SAME_NAMES_AND_INITIAL if middle else _SAME_NAMES)
    if "birth_date" not in filled and "first_name" in filled and home:
        # without birth dates, names are learned where a first name and a home agree
        # (not a surname and a home: that block is mostly brothers and sisters, and
        # EM would learn that a different first name is common in one person's
        # records)
        rules.append(f"l.{home[0]} = r.{home[0]} AND l.first_canon = r.first_canon")
    return rules


def filled_fields(con: Any, table: str) -> frozenset[str]:
    """The compared fields of ``table`` that at least two partners filled."""
    fields = sorted({f for group in COMPARED_FIELDS.values() for f in group})
    counts = ", ".join(
        f"count(DISTINCT partner_id) FILTER (WHERE {f} IS NOT NULL)" for f in fields
    )
    row = con.execute(f"SELECT {counts} FROM {table}").fetchall()[0]
    return frozenset(f for f, n in zip(fields, row, strict=True) if n >= 2)


def compared_fields(filled: frozenset[str]) -> frozenset[str]:
    """The comparisons a model makes of data whose ``filled`` fields two partners
    fill: those that read one of them."""
    return frozenset(
        name
        for name, group in COMPARED_FIELDS.items()
        if any(f in filled for f in group)
    )


# Pairs that agree on both names and a birth date (or, without birth dates, a
# postal code) are almost surely one person; used (with an assumed recall) to
# estimate how many of all pairs are matches.
_PRIOR_RECALL = 0.7


def _prior_rule(filled: frozenset[str]) -> str:
    names = "l.first_name = r.first_name AND l.last_name = r.last_name"
    for field in ("birth_date", "postal_code", "address"):
        if field in filled:
            return f"{names} AND l.{field} = r.{field}"
    return names


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


ALL_COMPARED = frozenset(COMPARED_FIELDS)

# first and last name the other way round: one exactly, the other alike (a name
# given crosswise alone is a relative's as often as the person's own)
_NAMES_SWAPPED = (
    "(first_name_l = last_name_r "
    "AND jaro_winkler_similarity(last_name_l, first_name_r) >= 0.88) "
    "OR (last_name_l = first_name_r "
    "AND jaro_winkler_similarity(first_name_l, last_name_r) >= 0.88)"
)


def _comparisons(compared: frozenset[str] = ALL_COMPARED) -> list[Any]:
    """The comparisons of ``compared``, in a fixed order."""
    everything = _all_comparisons()
    return [c for name, c in everything if name in compared]


def _all_comparisons() -> list[tuple[str, Any]]:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    # a birth date as its eight digits, to see one mistyped (or two swapped)
    digits_l, digits_r = (
        f"strftime(birth_date_{side}, '%Y%m%d')" for side in ("l", "r")
    )
    comparisons = [
        cl.CustomComparison(
            output_column_name="first_name",
            comparison_levels=[
                cll.NullLevel("first_name"),
                cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
                cll.CustomLevel(
                    "array_length(array_intersect(first_forms_l, first_forms_r)) > 0",
                    "nickname of the same name",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    _NAMES_SWAPPED,
                    "first and last name given the other way round",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "(length(first_name_l) = 1 OR length(first_name_r) = 1) "
                    "AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                    "an initial that fits",
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
                cll.CustomLevel(
                    _NAMES_SWAPPED,
                    "first and last name given the other way round",
                    base_dialect_str="duckdb",
                ),
                cll.JaroWinklerLevel("last_name", 0.92),
                cll.CustomLevel(
                    "array_length(array_intersect(surname_parts_l, surname_parts_r)) > 0",
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
                    f"damerau_levenshtein({digits_l}, {digits_r}) <= 1",
                    "one digit mistyped or two swapped",
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
        # where a person lives, as one piece of evidence: the street and the postal
        # code agree together (counting both would count one fact twice)
        cl.CustomComparison(
            output_column_name="residence",
            comparison_levels=[
                # nothing in common to compare: no street on one side and no
                # postal code on one side
                cll.CustomLevel(
                    "(address_l IS NULL OR address_r IS NULL) "
                    "AND (postal_code_l IS NULL OR postal_code_r IS NULL)",
                    "no address to compare",
                    base_dialect_str="duckdb",
                ).configure(is_null_level=True),
                cll.CustomLevel(
                    "address_l = address_r AND postal_code_l = postal_code_r",
                    "same address and postal code",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "address_l = address_r", "same address", base_dialect_str="duckdb"
                ),
                cll.CustomLevel(
                    "postal_code_l = postal_code_r "
                    "AND jaro_winkler_similarity(address_l, address_r) >= 0.9",
                    "same postal code, address spelled alike",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "postal_code_l = postal_code_r",
                    "same postal code",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "jaro_winkler_similarity(address_l, address_r) >= 0.9 "
                    "OR damerau_levenshtein(postal_code_l, postal_code_r) <= 1",
                    "address or postal code one slip apart",
                    base_dialect_str="duckdb",
                ),
                cll.ElseLevel(),
            ],
        ),
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
                    "array_length(array_intersect(school_years_l, school_years_r)) > 0",
                    "the same school in the same school year",
                    base_dialect_str="duckdb",
                ),
                cll.CustomLevel(
                    "array_length(array_intersect(schools_l, schools_r)) > 0",
                    "a school in common",
                    base_dialect_str="duckdb",
                ),
                cll.ElseLevel(),
            ],
        ),
    ]
    return list(zip(COMPARED_FIELDS, comparisons, strict=True))


def settings(compared: frozenset[str] = ALL_COMPARED) -> SettingsCreator:
    """The model's Splink settings (untrained), comparing ``compared``."""
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=_comparisons(compared),
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
    table: Any,
    filled: frozenset[str],
    *,
    n: int,
    seed: int = 20261130,
    u_pairs: float = 2e6,
    em_pairs: float = 2e6,
) -> tuple[Linker, list[str]]:
    """A linker over ``table`` (a table where Splink runs, or a frame it takes) of
    ``n`` records comparing what two partners fill (``filled``,
    :func:`filled_fields`), with parameters estimated, and the training sessions
    skipped because the data gave them nothing to learn from (no pair they block)."""
    from splink import Linker
    from splink.internals.exceptions import EMTrainingException, SplinkException

    _quiet_splink()
    records = db_api.register(table)
    linker = Linker(records, settings(compared_fields(filled)), log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [_prior_rule(filled)], recall=_PRIOR_RECALL
    )
    # With no pair its rule finds (a first small feed), the prior is estimated as
    # 0 or 1, and EM and scoring take its logarithm: assume one match among all
    # pairs instead, the least that still lets evidence decide (set before EM,
    # whose sessions start from it).
    skipped = []
    floored = _floor_prior(linker, n)
    if floored:
        skipped.append("the prior (no pair found to estimate it from)")
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=seed)
    for rule in training_rules(filled):
        # a session that fails part-way leaves its fixed comparisons out of the
        # model: put the settings back as they were before it
        before = copy.deepcopy(linker._settings_obj)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                f"{rule} AND {DIFFERENT_PARTNERS}", max_pairs=em_pairs
            )
        except (EMTrainingException, SplinkException):
            linker._settings_obj = before
            # no pair it blocks, or nothing left to learn once its fields are fixed
            # (names alone: the name comparisons read each other's fields); named by
            # the fields it blocks on, not by its SQL
            fields = dict.fromkeys(
                _SAYS.get(f, f) for f in re.findall(r"\bl\.(\w+)", rule)
            )
            skipped.append("pairs agreeing on " + ", ".join(fields))
    _floor_prior(linker, n)  # EM estimates it again, from as little
    if not floored:  # with no estimate of how many pairs match, nothing to weigh by
        prior = linker._settings_obj._probability_two_random_records_match
        _smooth_m(linker, matches=prior * n * (n - 1) / 2)
    return linker, skipped


def _smooth_m(linker: Linker, matches: float) -> None:
    """Add one pseudo-pair to every level of every comparison (Laplace smoothing
    of its m-probabilities, over the ``matches`` the model expects): EM on a block
    with few pairs of some kind puts their level's m at 0, or leaves it unobserved,
    and one disagreement then outweighs all the other evidence (a moved family's
    child never linked again). With many matches the pseudo-pair weighs nothing."""
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        if not any(isinstance(lv._m_probability, float) for lv in levels):
            continue  # never trained: Splink's defaults stand
        observed = [
            lv._m_probability if isinstance(lv._m_probability, float) else 0.0
            for lv in levels
        ]
        total = sum(observed) or 1.0
        for level, m in zip(levels, observed, strict=True):
            level.m_probability = (m / total * matches + 1) / (matches + len(levels))


def _floor_prior(linker: Linker, n: int) -> bool:
    """Set the prior to one match among all ``n`` records' pairs when it is 0 or 1;
    True when it had to be."""
    settings_obj = linker._settings_obj
    if 0.0 < settings_obj._probability_two_random_records_match < 1.0:
        return False
    settings_obj._probability_two_random_records_match = 2.0 / max(n * (n - 1), 2)
    return True


# conditions an earlier version spelled differently (one text now serves DuckDB and
# Spark): a model saved with the old spelling has the same design
_EARLIER_SPELLINGS = {
    f"len(list_intersect({f}_l, {f}_r)) > 0": (
        f"array_length(array_intersect({f}_l, {f}_r)) > 0"
    )
    for f in ("first_forms", "surname_parts", "school_years", "schools")
}


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
                [
                    _EARLIER_SPELLINGS.get(lv["sql_condition"], lv["sql_condition"])
                    for lv in c["comparison_levels"]
                ],
            )
            for c in model["comparisons"]
        ],
    ]


def _with_parameters(design: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """``design`` (a settings dict of this version's model) with the parameters of
    ``trained`` (a saved model of the same design, in any SQL dialect)."""
    design["probability_two_random_records_match"] = trained[
        "probability_two_random_records_match"
    ]
    for mine, theirs in zip(design["comparisons"], trained["comparisons"], strict=True):
        levels = zip(
            mine["comparison_levels"], theirs["comparison_levels"], strict=True
        )
        for level, saved in levels:
            for key in ("m_probability", "u_probability"):
                if key in saved:
                    level[key] = saved[key]
                else:
                    level.pop(key, None)
    return design


def _dialect(db_api: DatabaseAPISubClass) -> str:
    return str(db_api.sql_dialect.sql_dialect_str)


def same_design(model: str, compared: frozenset[str] = ALL_COMPARED) -> bool:
    """True when a saved model compares and blocks as this version's model does on
    data whose compared fields are ``compared`` (a field a partner starts sending
    retrains it)."""
    return _design(json.loads(model)) == _design(
        settings(compared).create_settings_dict("duckdb")
    )


def trained(
    db_api: DatabaseAPISubClass,
    table: Any,
    model: str,
    compared: frozenset[str] = ALL_COMPARED,
) -> Linker:
    """A linker over ``table`` with the parameters of a saved model (saved models
    are DuckDB SQL; elsewhere, this version's design, of the same ``compared``
    fields, in the engine's dialect carries them)."""
    from splink import Linker

    _quiet_splink()
    saved = json.loads(model)
    dialect = _dialect(db_api)
    if dialect != "duckdb":
        saved = _with_parameters(
            settings(compared).create_settings_dict(dialect), saved
        )
    return Linker(db_api.register(table), saved, log_level=logging.ERROR)


def model_json(linker: Linker, compared: frozenset[str] = ALL_COMPARED) -> str:
    """The trained model as JSON (saved with the run), in DuckDB's SQL whatever
    engine trained it, so any engine can score with it again."""
    saved = linker.misc.save_model_to_json()
    if linker._sql_dialect_str != "duckdb":
        saved = _with_parameters(
            settings(compared).create_settings_dict("duckdb"), saved
        )
    return json.dumps(saved, sort_keys=True)


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
