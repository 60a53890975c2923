"""Validation as SQL, built by pure functions and run in the database.

From a staged file and one mapping section, three statements produce the typed
canonical rows and, for each, the list of rules it breaks::

    staged ──raw_sql──► raw (source text per field) ──typed_sql──► typed (+ row errors)
           ──cross-row checks (duplicates, references)──► checked

Rows with no error load; the others are quarantined with every reason. No Python
loop touches a row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backbone.engines.sql import ident, literal
from backbone.ingest.mapping import (
    IMPLICIT,
    FieldSpec,
    FileSection,
    SkipRule,
    target_table,
)
from backbone.ingest.readers import CORRECTION_COLUMN
from backbone.ingest.rules import DATE_ORDER, REFERENCES, ranges
from backbone.model.calendar import school_year_sql
from backbone.model.descriptors import DESCRIPTORS, GRADE_LEVELS
from backbone.model.schema import Column, Table

__all__ = [
    "CheckPlan",
    "code_lookup_rows",
    "only_when_sql",
    "parts_sql",
    "plan_checks",
    "refusal_message_sql",
    "refusal_prefix",
    "refused_sql",
    "skip_sql",
    "skipped_sql",
    "source_row_sql",
    "source_sql",
    "typed_sql",
]

NUMERIC = re.compile(r"^(DECIMAL|DOUBLE|INTEGER|SMALLINT|BIGINT|FLOAT)")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


def source_sql(ref: str, alias: str = "s") -> str:
    """A dotted JSON path as DuckDB SQL: ``a.b[1].c`` -> ``s."a"."b"[1]."c"``;
    ``a[*].b`` is the list of every element's ``b``."""
    out = alias
    segments = _SEGMENT.findall(ref)
    for i, (name, index) in enumerate(segments):
        if index == "*":
            rest = "".join(
                f"[{x}]" if x else f".{ident(n)}" for n, x in segments[i + 1 :]
            )
            return f"list_transform({out}, lambda x: x{rest})"
        out += f"[{index}]" if index else f".{ident(name)}"
    return out


def _text(expr: str) -> str:
    return f"CAST({expr} AS VARCHAR)"


def code_text_sql(expr: str) -> str:
    """A code or id as text, trimmed, with a spreadsheet's number spelling undone:
    ``63.0`` is ``63`` (``0063`` keeps its zeros: it was sent as text)."""
    return f"regexp_replace(trim({expr}), '^([+-]?[0-9]+)\\.0+$', '\\1')"


def _template_sql(template: str, partner_id: str, *, keep_present: bool) -> str:
    """A template's value: its text with each ``{column}`` (or ``{partner_id}``)
    filled in. With ``keep_present`` a part the row leaves empty drops out (and
    with every column part empty there is no value); otherwise any empty part
    leaves the whole value empty."""
    parts: list[str] = []
    columns: list[str] = []
    position = 0
    for match in re.finditer(r"\{([^{}]+)\}", template):
        if match.start() > position:
            parts.append(literal(template[position : match.start()]))
        position = match.end()
        ref = match.group(1)
        if ref == "partner_id":
            parts.append(literal(partner_id))
            continue
        value = f"NULLIF({code_text_sql(_text(source_sql(ref)))}, '')"
        columns.append(value)
        parts.append(f"coalesce({value}, '')" if keep_present else value)
    if position < len(template):
        parts.append(literal(template[position:]))
    joined = " || ".join(parts or [literal("")])
    if not keep_present or not columns:
        return f"({joined})"
    return (
        f"CASE WHEN coalesce({', '.join(columns)}) IS NULL THEN NULL "
        f"ELSE trim({joined}) END"
    )


def raw_sql(
    name: str,
    spec: FieldSpec,
    partner_id: str,
    received: str = "current_date",
    json_columns: frozenset[str] = frozenset(),
) -> str:
    """The field's source value as text (what the partner sent), or a constant."""
    if spec.received:
        return f"CAST({received} AS VARCHAR)"
    if spec.constant is not None:
        value = spec.constant
        if isinstance(value, bool):
            value = "true" if value else "false"
        return literal(str(value))
    if spec.template is not None:
        # a part the file leaves empty drops out of a descriptive value ("{number}
        # {street}" without a number is the street); never out of an id, which is
        # then missing ("{partner_id}/{school}" without a school is no school)
        is_id = name == "local_id" or name.endswith("_id")
        return _template_sql(spec.template, partner_id, keep_present=not is_id)
    ref = spec.column or spec.school_year_from
    assert ref is not None
    if spec.contains is not None:
        return (
            f"CASE WHEN {source_sql(ref)} IS NULL THEN NULL WHEN "
            f"list_contains(CAST({source_sql(ref)} AS VARCHAR[]), {literal(spec.contains)}) "
            "THEN 'true' ELSE 'false' END"
        )
    text = _text(source_sql(ref))
    if ref in json_columns:
        # a JSON column mixing numbers and text: take the value, not its JSON spelling
        text = f"json_extract_string({source_sql(ref)}, '$')"
    if spec.descriptor_uri:
        # uri://namespace/NameDescriptor#Code Value -> Code Value
        return f"split_part({text}, '#', 2)"
    return text


@dataclass(frozen=True)
class FieldPlan:
    name: str
    column: Column
    spec: FieldSpec
    lookup: str | None
    """Temp table of (local, canonical) codes for a coded field."""


def _date_sql(raw: str, spec: FieldSpec, source_type: str | None) -> str:
    if source_type and (
        source_type.startswith("DATE") or source_type.startswith("TIMESTAMP")
    ):
        return f"TRY_CAST({raw} AS TIMESTAMP)::DATE"
    fmt = spec.date_format or "%Y-%m-%d"
    return f"try_strptime(trim({raw}), {literal(fmt)})::DATE"


def _number_sql(raw: str, spec: FieldSpec, type_: str) -> str:
    text = f"trim({raw})"
    if spec.decimal_comma:
        text = f"replace({text}, ',', '.')"
    return f"TRY_CAST({text} AS {type_})"


def _bool_sql(raw: str, spec: FieldSpec) -> str:
    trues = ", ".join(literal(v.lower()) for v in spec.true_values)
    falses = ", ".join(literal(v.lower()) for v in spec.false_values)
    return (
        f"CASE WHEN lower(trim({raw})) IN ({trues}) THEN true "
        f"WHEN lower(trim({raw})) IN ({falses}) THEN false END"
    )


_NUMBER_SPELLING = re.compile(r"^([+-]?[0-9]+)\.0+$")


def _code_key(local: str) -> str:
    """A lookup key as the data's codes are compared (:func:`code_text_sql`):
    trimmed, upper-cased, ``1.0`` as ``1``."""
    return _NUMBER_SPELLING.sub(r"\1", local.strip()).upper()


def code_lookup_rows(
    spec: FieldSpec, descriptor: str | None, partner_map: dict[str, str]
) -> list[tuple[str, str | None]]:
    """(LOCAL CODE, canonical value) pairs, keys upper-cased: crosswalk first, then the
    partner's descriptor map, then canonical values themselves."""
    rows: dict[str, str | None] = {}
    if spec.grade_level:
        for name, number in GRADE_LEVELS:
            keys = (
                {str(number), f"{number:02d}"} if number >= 0 else {"-1", "PK", "PREK"}
            )
            if number == 0:
                keys |= {"K", "KG", "KINDERGARTEN"}
            for key in keys:
                rows.setdefault(key, name)
    for local, canonical in (spec.codes or {}).items():
        rows[_code_key(str(local))] = canonical
    for local, canonical in partner_map.items():
        rows.setdefault(_code_key(local), canonical)
    if descriptor is not None:
        for value in DESCRIPTORS[descriptor][1]:
            rows.setdefault(value.upper(), value)
    return sorted(rows.items())


def _value_sql(
    plan: FieldPlan, raw: str, source_type: str | None, start_month: int
) -> str:
    spec, type_ = plan.spec, plan.column.type
    if spec.school_year_from is not None:
        day = _date_sql(raw, spec, source_type)
        return f"CAST({school_year_sql(day, start_month)} AS {type_})"
    if plan.lookup is not None:
        return (
            f"(SELECT k.canonical FROM {plan.lookup} k "
            f"WHERE k.local = upper({code_text_sql(raw)}))"
        )
    if type_ == "DATE":
        return _date_sql(raw, spec, None if spec.received else source_type)
    if type_ == "BOOLEAN":
        if source_type == "BOOLEAN":
            return f"TRY_CAST({raw} AS BOOLEAN)"
        return _bool_sql(raw, spec)
    if NUMERIC.match(type_):
        return _number_sql(raw, spec, type_)
    if plan.name.endswith("_id"):
        return f"NULLIF({code_text_sql(raw)}, '')"
    return f"NULLIF(trim({raw}), '')"


def _failure_rule(plan: FieldPlan) -> str:
    if plan.lookup is not None:
        return "unknown_code"
    type_ = plan.column.type
    if type_ == "DATE" or plan.spec.school_year_from is not None:
        return "invalid_date"
    if type_ == "BOOLEAN":
        return "invalid_boolean"
    return "invalid_number"


def _describe_source(plan: FieldPlan) -> str:
    spec = plan.spec
    ref = spec.column or spec.school_year_from or spec.template or "constant"
    return f"{plan.name} (from {ref})" if ref != plan.name else plan.name


def _failure_message(plan: FieldPlan, raw: str) -> str:
    rule = _failure_rule(plan)
    what = {
        "unknown_code": "is not a known code; add it to the mapping's codes",
        "invalid_date": f"is not a date in the form {plan.spec.date_format or '%Y-%m-%d'}",
        "invalid_boolean": "is not a yes/no value",
        "invalid_number": "is not a number",
    }[rule]
    return f"{literal(_describe_source(plan) + ': ')} || {literal(chr(39))} || {raw} || {literal(chr(39) + ' ' + what)}"


@dataclass(frozen=True)
class CheckPlan:
    table: Table
    fields: tuple[FieldPlan, ...]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def plan_checks(
    section: FileSection,
    lookups: dict[str, str],
    allowed: set[str],
    part: dict[str, FieldSpec] | None = None,
) -> CheckPlan:
    """The fields to load (only those the agreement allows) and their code lookups,
    for the section or one of its parts (:meth:`FileSection.parts`)."""
    table = target_table(section.entity)
    plans = []
    for name, spec in (part or section.fields()).items():
        if name not in allowed:
            continue
        plans.append(FieldPlan(name, table.column(name), spec, lookups.get(name)))
    return CheckPlan(table, tuple(plans))


def typed_sql(
    plan: CheckPlan,
    staged: str,
    source_types: dict[str, str],
    partner_id: str,
    start_month: int,
    *,
    only_when: str | None = None,
    skip_when: tuple[SkipRule, ...] = (),
    correction: str | None = None,
    received: str = "current_date",
    earliest_birth_year: int = 1900,
) -> str:
    """SELECT of typed canonical fields plus ``__errors`` (rule, message) per row.
    Rows outside ``only_when`` or matching a ``skip_when`` rule are not selected, nor,
    in a correction (a fixed quarantine export), rows whose reasons do not hold
    ``correction``, the start of this entity's (and part's) reasons
    (:func:`refusal_prefix`)."""
    raws = []
    values = []
    checks = []
    required = {c.name for c in plan.table.columns if not c.nullable} - IMPLICIT
    for f in plan.fields:
        raw = f"r.{ident('r__' + f.name)}"
        json_columns = frozenset(c for c, t in source_types.items() if t == "JSON")
        raws.append(
            f"{raw_sql(f.name, f.spec, partner_id, received, json_columns)} AS {ident('r__' + f.name)}"
        )
        top = (
            (f.spec.column or f.spec.school_year_from or "").split(".")[0].split("[")[0]
        )
        value = _value_sql(f, raw, source_types.get(top), start_month)
        values.append(f"{value} AS {ident(f.name)}")
        raw_v = f"v.{ident('r__' + f.name)}"
        present = f"NULLIF(trim({raw_v}), '') IS NOT NULL"
        if f.name in required:
            checks.append(
                f"CASE WHEN NOT {present} THEN {{'rule': 'required', 'message': "
                f"{literal(_describe_source(f) + ': a value is required')}}} END"
            )
        failed = f"v.{ident(f.name)} IS NULL"
        if f.lookup is not None and f.spec.codes and None in f.spec.codes.values():
            # a code mapped to null ("not reported") is known, its field left empty
            failed = (
                f"NOT EXISTS (SELECT 1 FROM {f.lookup} k "
                f"WHERE k.local = upper({code_text_sql(raw_v)}))"
            )
        checks.append(
            f"CASE WHEN {present} AND {failed} THEN {{'rule': "
            f"{literal(_failure_rule(f))}, 'message': {_failure_message(f, raw_v)}}} END"
        )
    names = set(plan.field_names)
    for column, rule in ranges(
        plan.table.name, start_month, earliest_birth_year
    ).items():
        if column in names and all(
            n in names
            for n in re.findall(r"[a-z_]+", rule.condition)
            if n in {c.name for c in plan.table.columns}
        ):
            cond = re.sub(
                r"\b([a-z_]+)\b",
                lambda m: (
                    f"v.{ident(m.group(1))}" if m.group(1) in names else m.group(1)
                ),
                rule.condition,
            )
            checks.append(
                f"CASE WHEN v.{ident(column)} IS NOT NULL AND NOT coalesce(({cond}), true) THEN "
                f"{{'rule': 'out_of_range', 'message': {literal(column + ': ')} || "
                f"CAST(v.{ident(column)} AS VARCHAR) || {literal(' — ' + rule.message)}}} END"
            )
    for earlier, later in DATE_ORDER.get(plan.table.name, ()):
        if earlier in names and later in names:
            checks.append(
                f"CASE WHEN v.{ident(later)} < v.{ident(earlier)} THEN {{'rule': 'date_order', "
                f"'message': {literal(later + ' ')} || CAST(v.{ident(later)} AS VARCHAR) || "
                f"{literal(' is before ' + earlier + ' ')} || CAST(v.{ident(earlier)} AS VARCHAR)}} END"
            )
    raw_list = ",\n        ".join(raws)
    value_list = ",\n        ".join(values)
    check_list = ",\n            ".join(checks) or "NULL"
    field_cols = ", ".join(f"v.{ident(n)}" for n in plan.field_names)
    conditions = [f"NOT {skipped_sql(skip_when)}"] if skip_when else []
    if correction is not None:
        # a fixed quarantine row goes back only to what refused it
        conditions.append(refused_sql(correction))
    if only_when:
        conditions.insert(0, only_when_sql(only_when))
    where = ("\n    WHERE " + " AND ".join(conditions)) if conditions else ""
    return f"""
WITH r AS (
    SELECT s.__row,
        {raw_list}
    FROM {staged} s{where}
), v AS (
    SELECT r.*,
        {value_list}
    FROM r
)
SELECT v.__row, {field_cols},
    list_filter([
            {check_list}
        ], lambda e: e IS NOT NULL) AS __errors
FROM v
"""


def skip_sql(rule: SkipRule) -> str:
    """True for a source row the rule skips (values compared as codes are: trimmed,
    any case, ``2.0`` is ``2``)."""
    value = f"upper(NULLIF({code_text_sql(_text(source_sql(rule.column)))}, ''))"
    if rule.empty:
        return f"({value} IS NULL)"
    values = ", ".join(literal(_code_key(v)) for v in rule.values())
    return f"({value} IN ({values}))"


def skipped_sql(rules: tuple[SkipRule, ...]) -> str:
    """True for a source row some rule skips."""
    return "(" + " OR ".join(f"coalesce({skip_sql(r)}, false)" for r in rules) + ")"


def only_when_sql(ref: str) -> str:
    """True for a source row of a section with ``only_when: ref``."""
    return f"NULLIF(trim(CAST({source_sql(ref)} AS VARCHAR)), '') IS NOT NULL"


def parts_sql(typed_parts: list[str]) -> str:
    """One part's typed rows, or several parts' (wide to long) with a ``__row`` of
    their own per part, so a bad part is quarantined without its sibling, and
    ``__source_row``, the file's row (:func:`source_row_sql`)."""
    if len(typed_parts) == 1:
        return typed_parts[0]
    n = len(typed_parts)
    return "\nUNION ALL\n".join(
        f"SELECT ((__row - 1) * {n} + {k + 1})::BIGINT AS __row, "
        f"__row AS __source_row, * EXCLUDE (__row) FROM ({q})"
        for k, q in enumerate(typed_parts)
    )


def refusal_prefix(section: FileSection, part: int) -> str:
    """How a quarantine export's reasons start for this section's entity and
    ``part`` (0-based; a wide section's parts are told apart, so a fixed part goes
    back without its sibling that loaded)."""
    n = len(section.each)
    return f"{section.entity}: " + (f"part {part + 1} of {n} — " if n > 1 else "")


def refused_sql(prefix: str, alias: str = "s") -> str:
    """True for a row of a fixed quarantine export whose reasons hold ``prefix``
    (:func:`refusal_prefix`): exact text, no pattern."""
    reasons = f"{alias}.{ident(CORRECTION_COLUMN)}"
    return (
        f"(starts_with({reasons}, {literal(prefix)}) OR "
        f"contains({reasons}, {literal('; ' + prefix)}))"
    )


def refusal_message_sql(section: FileSection, alias: str) -> str:
    """A quarantined row's message, as :func:`refusal_prefix` expects it."""
    n = len(section.each)
    message = f"{alias}.message"
    if n <= 1:
        return message
    return (
        f"'part ' || (({alias}.__row - 1) % {n} + 1) || {literal(f' of {n} — ')} "
        f"|| {message}"
    )


def source_row_sql(section: FileSection, alias: str) -> str:
    """The file's row number of a typed row (a wide section's rows have their own)."""
    return f"{alias}.__source_row" if len(section.each) > 1 else f"{alias}.__row"


def key_columns(table: Table) -> list[str]:
    return [c for c in table.primary_key if c not in IMPLICIT]


def duplicate_in_file_sql(
    plan: CheckPlan, typed: str, section: FileSection
) -> str | None:
    """Rows repeating the natural key of an earlier row of the same file.

    Identity records of one person are merged instead (a roster lists a person
    once per program); a local id given to two different people (another name or
    birth date) is refused from its second person on."""
    if plan.table.name == "partner_record":
        return _local_id_reused_sql(plan, typed, section)
    key = [k for k in key_columns(plan.table) if k in plan.field_names]
    if len(key) != len(key_columns(plan.table)):
        return None
    cols = ", ".join(ident(k) for k in key)
    join = " AND ".join(f"t.{ident(k)} = d.{ident(k)}" for k in key)
    # a wide section's row n of the file gives rows (n - 1) * parts + 1 ...
    parts = max(len(section.each), 1)
    first = f"((d.first_row - 1) // {parts} + 1)" if parts > 1 else "d.first_row"
    return f"""
WITH d AS (
    SELECT {cols}, min(__row) AS first_row FROM {typed}
    WHERE len(__errors) = 0 GROUP BY ALL HAVING count(*) > 1
)
SELECT t.__row, 'duplicate_in_file' AS rule,
       'the same record as row ' || {first} AS message
FROM {typed} t JOIN d ON {join}
WHERE t.__row > d.first_row AND len(t.__errors) = 0
"""


# what tells two people apart in a roster: the same local id with any of these
# different is two people under one id, not one person listed twice
_PERSON_FIELDS = ("first_name", "last_surname", "birth_date")


def _local_id_reused_sql(
    plan: CheckPlan, typed: str, section: FileSection
) -> str | None:
    fields = [f for f in _PERSON_FIELDS if f in plan.field_names]
    if "local_id" not in plan.field_names or not fields:
        return None

    def spelled(alias: str, field: str) -> str:
        value = f"{alias}.{ident(field)}"
        return value if field == "birth_date" else f"lower(trim({value}))"

    # two people: a field both rows give, given differently (a value one row
    # leaves out, or spells in other capitals, is not a difference)
    differs = " OR ".join(f"({spelled('t', f)} <> {spelled('f', f)})" for f in fields)
    return f"""
WITH d AS (
    SELECT local_id, min(__row) AS first_row FROM {typed}
    WHERE len(__errors) = 0 GROUP BY local_id HAVING count(*) > 1
)
SELECT t.__row, 'local_id_reused' AS rule,
       'local id ' || t.local_id || ' is another person''s in row '
       || {source_row_sql(section, "f")}
       || ' (another name or birth date): the id column must name one person; '
       || 'check that the mapping''s local_id is the student id' AS message
FROM {typed} t JOIN d USING (local_id) JOIN {typed} f ON f.__row = d.first_row
WHERE t.__row > d.first_row AND len(t.__errors) = 0 AND coalesce({differs}, FALSE)
"""


def duplicate_of_loaded_sql(
    plan: CheckPlan, typed: str, provider: str, keep_periods_sql: str | None
) -> str | None:
    """Rows whose natural key was loaded before (outside the periods being replaced)."""
    if plan.table.name == "partner_record":
        return None
    key = key_columns(plan.table)
    if not all(k in plan.field_names for k in key):
        return None
    join = " AND ".join(f"l.{ident(k)} = t.{ident(k)}" for k in key)
    extra = f" AND NOT ({keep_periods_sql})" if keep_periods_sql else ""
    return f"""
SELECT t.__row, 'duplicate_of_loaded' AS rule,
       'already loaded from submission ' || any_value(l.submission_id) AS message
FROM {typed} t JOIN {plan.table.qualified_name} l
  ON l.provider_partner_id = {literal(provider)} AND {join}{extra}
WHERE len(t.__errors) = 0
GROUP BY t.__row
"""


def reference_sqls(plan: CheckPlan, typed: str, provider: str) -> list[str]:
    out = []
    for ref in REFERENCES.get(plan.table.name, ()):
        needed = set(re.findall(r"t\.([a-z_]+)", ref.exists_sql))
        if not needed <= set(plan.field_names):
            continue
        exists = ref.exists_sql.replace("{provider}", literal(provider))
        out.append(
            f"SELECT t.__row, {literal(ref.rule)} AS rule, {literal(ref.message)} AS message "
            f"FROM {typed} t WHERE len(t.__errors) = 0 AND NOT ({exists})"
        )
    return out
