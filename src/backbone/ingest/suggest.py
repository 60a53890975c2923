"""``backbone mapping suggest``: draft a mapping from a file's header and values.

Headers are matched to canonical fields by normalised fuzzy matching (difflib) with a
few synonyms clerks use; date formats are guessed from the values; for coded fields
the values found are listed with the closest canonical code, for the steward to
confirm. The draft is YAML to edit, never applied blindly.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from backbone.engines import Connection
from backbone.engines.sql import ident
from backbone.errors import UserError
from backbone.ingest.mapping import IMPLICIT, TARGETS
from backbone.ingest.readers import stage
from backbone.model.descriptors import DESCRIPTORS

__all__ = ["crosswalk", "suggest_mapping"]

SYNONYMS = {
    "student_local_id": [
        "student id",
        "stu id",
        "pupil no",
        "student number",
        "stu num",
        "local id",
        "id",
    ],
    "local_id": [
        "student id",
        "stu id",
        "pupil no",
        "student number",
        "participant id",
        "id",
    ],
    "first_name": ["fname", "forename", "given name", "first"],
    "last_surname": ["lname", "surname", "family name", "last name", "last"],
    "middle_name": ["mname", "middle"],
    "birth_date": ["dob", "bdate", "birthdate", "date of birth", "born"],
    "birth_sex": ["sex", "gender"],
    "state_student_id": ["ssid", "sasid", "state id"],
    "school_id": ["school", "school code", "bldg", "building", "sch id"],
    "event_date": ["date", "att date", "absence date"],
    "attendance_event_category": ["code", "attendance code", "att code", "type"],
    "postal_code": ["zip", "zip code", "postcode"],
}
DATE_FORMATS = (
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%Y%m%d",
    "%m-%d-%Y",
    "%Y-%m-%dT%H:%M:%S",
)


def _norm(text: str) -> str:
    return re.sub(
        r"[^a-z0-9]+", " ", re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()
    ).strip()


def _guess_date_format(values: list[str]) -> str | None:
    for fmt in DATE_FORMATS:
        try:
            for v in values:
                datetime.strptime(v.strip(), fmt)
        except ValueError:
            continue
        return fmt
    return None


def crosswalk(value: str, canonical: Sequence[str]) -> str:
    """The canonical value a partner's code stands for, only when it really is one:
    the same word in other case, or an unambiguous abbreviation (a prefix, or the
    initials of the words). Otherwise a guess the mapping check will refuse until a
    person replaces it ("? Female (guess)"), or "?" when nothing is close. ("male"
    is not "Female", however alike they look.)"""
    v = value.strip().lower()
    same = [c for c in canonical if c.lower() == v]
    if same:
        return same[0]
    if v:
        short = [
            c
            for c in canonical
            if c.lower().startswith(v)
            or "".join(w[0] for w in c.lower().split() if w) == v
        ]
        if len(short) == 1 and len(v) > 1:
            return short[0]
        if len(short) == 1:  # one letter stands for too much ('P': Present? Partial?)
            return f"? {short[0]} (guess)"
    close = difflib.get_close_matches(value, canonical, n=1, cutoff=0.6)
    return f"? {close[0]} (guess)" if close else "?"


def suggest_mapping(
    con: Connection, path: Path, entity: str, partner: str, feed: str
) -> str:
    if entity not in TARGETS:
        raise UserError(
            f"Unknown entity {entity!r}; use one of {', '.join(sorted(TARGETS))}."
        )
    staged = stage(con, path, "ingest_suggest")
    table = TARGETS[entity]
    headers = list(staged.columns)
    normalised = {_norm(h): h for h in headers}
    columns: dict[str, Any] = {}
    notes: list[str] = []
    used: set[str] = set()
    for column in table.columns:
        if column.name in IMPLICIT:
            continue
        candidates = [_norm(column.name), *SYNONYMS.get(column.name, [])]
        match = None
        for candidate in candidates:
            found = difflib.get_close_matches(
                candidate,
                [n for n in normalised if normalised[n] not in used],
                n=1,
                cutoff=0.8,
            )
            if found:
                match = normalised[found[0]]
                break
        if match is None:
            if not column.nullable:
                notes.append(f"{column.name} is required: name its source column")
                columns[column.name] = "?"
            continue
        if entity == "partner_record" and column.name == "local_id":
            rows, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT {ident(match)}) FROM ingest_suggest"
            ).fetchall()[0]
            if distinct < rows:  # a household's or a class's id, not a person's
                notes.append(
                    f"local_id: column {match!r} repeats values ({rows:,} rows, "
                    f"{distinct:,} different): it cannot be each person's own id; "
                    "name the column that is"
                )
                columns[column.name] = "?"
                continue
        used.add(match)
        spec: dict[str, Any] = {"column": match}
        values = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT CAST({ident(match)} AS VARCHAR) FROM ingest_suggest WHERE {ident(match)} IS NOT NULL LIMIT 25"
            ).fetchall()
        ]
        if column.type == "DATE" and staged.columns[match] == "VARCHAR" and values:
            fmt = _guess_date_format(values)
            spec["date_format"] = fmt or "?"
            if fmt is None:
                notes.append(
                    f"{column.name}: could not guess the date format of {values[:3]}"
                )
        if column.descriptor and values:
            canonical = DESCRIPTORS[column.descriptor][1]
            codes = {v: crosswalk(v, canonical) for v in values if v not in canonical}
            if codes:
                spec["codes"] = codes
                notes.append(
                    f"{column.name}: confirm the codes found ({', '.join(list(codes)[:8])})"
                )
        columns[column.name] = spec if len(spec) > 1 else match
    ignore = [h for h in headers if h not in used]
    doc: dict[str, Any] = {
        "partner": partner,
        "feed": feed,
        "files": [
            {
                "match": path.name,
                "entity": entity,
                "columns": columns,
                **({"ignore": ignore} if ignore else {}),
            }
        ],
    }
    header = "# Draft mapping from `backbone mapping suggest`; check every line before use.\n"
    header += "".join(f"# TODO: {n}\n" for n in notes)
    if ignore:
        header += (
            "# Unmatched columns are listed under ignore: map them or leave them out.\n"
        )
    con.execute("DROP TABLE IF EXISTS ingest_suggest")
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
