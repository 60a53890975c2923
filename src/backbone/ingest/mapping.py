"""Mappings: how one partner feed's files become canonical rows.

One YAML document per partner feed, under ``mappings/<partner>/<feed>.yaml``::

    partner: d02-riverside
    feed: attendance
    files:
      - match: "attendance.*"          # file-name pattern
        entity: attendance_event       # canonical table
        columns:
          student_local_id: student_id
          school_id: {template: "{partner_id}/{school_code}"}
          school_year: {school_year_from: date, date_format: "%Y-%m-%d"}
          event_date: {column: date, date_format: "%Y-%m-%d"}
          attendance_event_category: {column: code, codes: {A: Unexcused Absence}}
          event_duration: {constant: 1}
        ignore: [comment]               # columns deliberately not loaded

A section may read a wide file (``each:`` entries, one row per entry, their values
filled in where a field says ``$name``) and leave out rows on purpose (``skip_when``:
counted as skipped, never quarantined or stored). A code crosswalk may map a local
code to ``null`` ("not reported": the field is left empty, the row still loads).

A column reference may be a dotted path into JSON (``studentReference.studentUniqueId``,
``races[1].raceDescriptor``). ``stock: edfi`` uses the mapping shipped for Ed-Fi API
extracts. Every source column a file holds must be mapped or ignored by some section
that matches it: anything else is *undeclared* and is never stored.
"""

from __future__ import annotations

import fnmatch
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backbone.errors import InputFileError
from backbone.ids import path_part
from backbone.model.schema import ALL_TABLES, Table
from backbone.yamltext import read_yaml

__all__ = [
    "FieldSpec",
    "FileSection",
    "Mapping",
    "SkipRule",
    "load_mapping",
    "parse_mapping",
    "target_table",
]

IMPLICIT = {"provider_partner_id", "submission_id", "partner_id"}
_TEMPLATE_REF = re.compile(r"\{([^{}]+)\}")
TARGETS = {
    t.name: t
    for t in ALL_TABLES
    if (t.schema == "analytic" and not t.derived) or t.name == "partner_record"
}


def target_table(entity: str) -> Table:
    return TARGETS[entity]


def _unanswered(value: str) -> bool:
    """'?' or a draft's "? Tardy (guess)": left for a person to answer."""
    text = value.strip()
    return text == "?" or (text.startswith("? ") and text.endswith("(guess)"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    column: str | None = None
    constant: str | int | float | bool | None = None
    template: str | None = None
    """Text with ``{column}`` references; ``{partner_id}`` is the submitting partner."""
    school_year_from: str | None = None
    """A date column; the field is its school year (ending year)."""
    received: bool = False
    """The day the file was submitted (for snapshots that carry no date)."""
    date_format: str | None = None
    """strftime pattern of a text date, e.g. %m/%d/%Y; ISO when omitted."""
    decimal_comma: bool = False
    codes: dict[str, str | None] | None = None
    """Local code -> canonical code value (a crosswalk); ``null`` for a code with no
    canonical twin ("not reported"): the field is left empty, the row still loads."""
    descriptor_uri: bool = False
    """The value is an Ed-Fi descriptor URI; its code value follows '#'."""
    grade_level: bool = False
    """Numbers, K, KG, PK -> Ed-Fi grade-level descriptors."""
    contains: str | None = None
    """For a list column: true when the list holds this value."""
    true_values: tuple[str, ...] = ("y", "yes", "true", "t", "1", "x")
    false_values: tuple[str, ...] = ("n", "no", "false", "f", "0", "")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [
            x
            for x in (
                self.column,
                self.constant,
                self.template,
                self.school_year_from,
                True if self.received else None,
            )
            if x is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                "give exactly one of column, constant, template, school_year_from or received"
            )
        return self

    def source_refs(self) -> list[str]:
        """Every source path this field reads, as written (``a.b[1].c``)."""
        refs: list[str] = []
        if self.column:
            refs.append(self.column)
        if self.school_year_from:
            refs.append(self.school_year_from)
        if self.template:
            refs += [
                r for r in _TEMPLATE_REF.findall(self.template) if r != "partner_id"
            ]
        return refs

    def source_columns(self) -> set[str]:
        """Top-level source columns this field reads."""
        return {re.split(r"[.\[]", r, maxsplit=1)[0] for r in self.source_refs()}


class SkipRule(_Model):
    """Rows a partner sends that are not meant for the warehouse (another arm of a
    study, test records): counted as skipped, never quarantined, never stored."""

    column: str
    equals: str | int | float | None = None
    one_of: tuple[str | int | float, ...] | None = None
    empty: bool = False

    @model_validator(mode="after")
    def _one_test(self) -> SkipRule:
        tests = [self.equals is not None, self.one_of is not None, self.empty]
        if sum(tests) != 1:
            raise ValueError("give exactly one of equals, one_of or empty: true")
        return self

    def values(self) -> tuple[str, ...]:
        raw = (self.equals,) if self.equals is not None else self.one_of or ()
        return tuple(str(v) for v in raw)


_PART_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class FileSection(_Model):
    match: str
    entity: str
    sheet: str | None = None
    only_when: str | None = None
    """A column (path); rows where it is empty are not part of this section."""
    skip_when: tuple[SkipRule, ...] = ()
    """Rows matching any rule are skipped (counted, not quarantined, not stored)."""
    each: tuple[dict[str, str | int | float], ...] = ()
    """Wide to long: every source row gives one row per entry; ``$name`` in a field's
    column, constant or template is the entry's value (``score_result: $score`` with
    entries ``{subject: Reading, score: read_scale}``, ``{subject: Mathematics, ...}``)."""
    columns: dict[str, FieldSpec | str]
    ignore: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _no_questions_left(self) -> FileSection:
        """A draft's '?' (a source, a constant or a date format nobody filled in)
        is refused here, not when a file fails on it."""
        for name, spec in self.columns.items():
            asked = (
                [spec]
                if isinstance(spec, str)
                else [spec.column, spec.constant, spec.date_format, spec.template]
            )
            if any(isinstance(x, str) and _unanswered(x) for x in asked):
                raise ValueError(
                    f"{name}: '?' is a question the draft left open; name the file's "
                    "column (or a constant, or the date format) before using it"
                )
        return self

    @model_validator(mode="after")
    def _fields_exist(self) -> FileSection:
        table = TARGETS.get(self.entity)
        if table is None:
            raise ValueError(
                f"unknown entity {self.entity!r}; use one of {', '.join(sorted(TARGETS))}"
            )
        known = {c.name for c in table.columns} - IMPLICIT
        for name in self.columns:
            if name not in known:
                raise ValueError(
                    f"{self.entity} has no field {name!r}; its fields are "
                    f"{', '.join(sorted(known))}"
                )
        for name, spec in self.fields().items():
            descriptor = table.column(name).descriptor
            if descriptor and spec.codes:
                from backbone.model.descriptors import DESCRIPTORS

                allowed = DESCRIPTORS[descriptor][1]
                wrong = sorted(
                    v for v in spec.codes.values() if v is not None and v not in allowed
                )
                if wrong:
                    raise ValueError(
                        f"{name}: {wrong[0]!r} is not a {descriptor} value; use one of "
                        f"{', '.join(allowed)}"
                    )
        required = {
            c.name for c in table.columns if not c.nullable and c.name not in IMPLICIT
        }
        missing = sorted(required - set(self.columns))
        if missing:
            raise ValueError(f"{self.entity} needs a mapping for {', '.join(missing)}")
        for name, spec in self.fields().items():
            if name in required and spec.codes and None in spec.codes.values():
                unknown = next(k for k, v in spec.codes.items() if v is None)
                raise ValueError(
                    f"{name} is required, so code {unknown!r} cannot map to null "
                    "(not reported); map it to a value or skip those rows with skip_when"
                )
        keys = {frozenset(e) for e in self.each}
        if len(keys) > 1:
            raise ValueError("every entry of each must name the same keys")
        used = {
            ref
            for spec in self.fields().values()
            for text in _part_texts(spec)
            for ref in _PART_REF.findall(text)
        }
        if used and not self.each:
            raise ValueError(
                f"${sorted(used)[0]} is used but the section has no each entries"
            )
        unknown_refs = sorted(used - set(next(iter(keys), ())))
        if unknown_refs:
            raise ValueError(f"${unknown_refs[0]} is not a key of the each entries")
        if self.each and not used:
            raise ValueError(
                "each is given but no field uses its keys ($name): every entry would "
                "give the same row"
            )
        return self

    def fields(self) -> dict[str, FieldSpec]:
        """The fields as written (``$name`` not yet filled in)."""
        return {
            name: FieldSpec(column=spec) if isinstance(spec, str) else spec
            for name, spec in self.columns.items()
        }

    def parts(self) -> list[dict[str, FieldSpec]]:
        """The fields of each row a source row gives: one part, or one per ``each``
        entry with its values filled in."""
        fields = self.fields()
        if not self.each:
            return [fields]
        out = []
        for entry in self.each:

            def fill(text: str | None, entry: dict[str, Any] = entry) -> str | None:
                if text is None:
                    return None
                return _PART_REF.sub(lambda m: str(entry[m.group(1)]), text)

            part = {}
            for name, spec in fields.items():
                constant = spec.constant
                if isinstance(constant, str):
                    constant = fill(constant)
                part[name] = spec.model_copy(
                    update={
                        "column": fill(spec.column),
                        "template": fill(spec.template),
                        "school_year_from": fill(spec.school_year_from),
                        "constant": constant,
                    }
                )
            out.append(part)
        return out

    def all_specs(self) -> list[FieldSpec]:
        return [spec for part in self.parts() for spec in part.values()]

    def matches(self, file_name: str) -> bool:
        return fnmatch.fnmatch(file_name.lower(), self.match.lower())

    def declared(self) -> set[str]:
        used = set(self.ignore)
        for ref in (self.only_when, *(r.column for r in self.skip_when)):
            if ref:
                used.add(re.split(r"[.\[]", ref, maxsplit=1)[0])
        for spec in self.all_specs():
            used |= spec.source_columns()
        return used


def _part_texts(spec: FieldSpec) -> list[str]:
    texts = [spec.column, spec.template, spec.school_year_from]
    if isinstance(spec.constant, str):
        texts.append(spec.constant)
    return [t for t in texts if t]


class Mapping(_Model):
    partner: str
    feed: str
    files: tuple[FileSection, ...] = Field(min_length=1)

    def sections_for(self, file_name: str) -> list[FileSection]:
        return [s for s in self.files if s.matches(file_name)]


def _problems(exc: ValidationError) -> str:
    out = []
    for e in exc.errors():
        loc = ""
        for part in e["loc"]:
            loc += (
                f"[{part}]"
                if isinstance(part, int)
                else (f".{part}" if loc else str(part))
            )
        out.append(f"{loc or '(document)'}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(out)


def parse_mapping(data: Any, *, source: Path | str, partner: str, feed: str) -> Mapping:
    if not isinstance(data, dict):
        raise InputFileError(
            "a mapping must be a YAML mapping (partner, feed, files).", path=source
        )
    if data.get("stock") is not None:
        data = _stock(str(data["stock"]), partner, feed, source)
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        raise InputFileError(
            f"the mapping is not valid: {_problems(exc)}. Fix it and submit again.",
            path=source,
        ) from None
    if (mapping.partner, mapping.feed) != (partner, feed):
        raise InputFileError(
            f"this mapping is for {mapping.partner}/{mapping.feed}, not {partner}/{feed}.",
            path=source,
        )
    return mapping


def _stock(name: str, partner: str, feed: str, source: Path | str) -> dict[str, Any]:
    path = resources.files("backbone.ingest") / "stock" / f"{name}.yaml"
    if not path.is_file():
        raise InputFileError(
            f"there is no stock mapping {name!r}; the stock mappings are: edfi.",
            path=source,
        )
    data = read_yaml(path.read_text(encoding="utf-8"))
    data["partner"], data["feed"] = partner, feed
    return dict(data)


def load_mapping(folder: Path, partner: str, feed: str) -> Mapping:
    """Load and validate a feed's mapping."""
    path = folder / path_part(partner, "partner") / f"{path_part(feed, 'feed')}.yaml"
    if not path.is_file():
        raise InputFileError(
            f"there is no mapping for feed {feed!r} of {partner}. Draft one with "
            "`backbone mapping suggest FILE --entity ENTITY`, edit it, and record it "
            f"with `backbone mapping add {partner} {feed} FILE`.",
            path=path,
        )
    return read_mapping(path, partner, feed)


def read_mapping(path: Path, partner: str, feed: str) -> Mapping:
    """Read and validate a mapping file for ``partner``'s ``feed``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the mapping ({exc}).", path=path) from None
    return parse_mapping_text(text, path, partner, feed)


def parse_mapping_text(text: str, path: Path, partner: str, feed: str) -> Mapping:
    """Validate a mapping's YAML text (read from ``path``)."""
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputFileError(
            f"is not valid YAML ({getattr(exc, 'problem', exc)}).",
            path=path,
            row=mark.line + 1 if mark is not None else None,
        ) from None
    return parse_mapping(data, source=path, partner=partner, feed=feed)
