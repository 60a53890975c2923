"""The demo's mappings: what a steward writes once per partner feed.

Written from each partner's dialect (column names, codes, date formats), as YAML
under ``mappings/<partner>/<feed>.yaml``; the Ed-Fi district needs only
``stock: edfi``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS, PROGRAMS, District
from backbone.demo.writers import CBO_COLUMNS, CONSENT_CBO, ENTITIES, column_name

__all__ = ["descriptor_maps", "mapping_documents", "write_mappings"]

# Code sets the steward keeps in the warehouse's descriptor map rather than in the
# feed's YAML (Hillcrest's numeric attendance codes): both routes are exercised.
IN_DESCRIPTOR_MAP = {("d04-hillcrest", "AttendanceEventCategoryDescriptor")}


def descriptor_maps() -> dict[tuple[str, str], dict[str, str]]:
    """(partner, descriptor) -> local code -> canonical value, for the descriptor map."""
    out = {}
    for d in DISTRICTS:
        for descriptor, codes in d.codes.items():
            if (d.partner_id, descriptor) in IN_DESCRIPTOR_MAP:
                out[(d.partner_id, descriptor)] = {
                    local: value for value, local in codes.items()
                }
    return out


def _col(d: District, canonical: str) -> str:
    return column_name(d, canonical)


def _date(d: District, canonical: str) -> dict[str, Any] | str:
    if d.file_format in ("parquet", "xlsx"):
        return _col(d, canonical)
    return {"column": _col(d, canonical), "date_format": d.date_format}


def _num(d: District, canonical: str) -> dict[str, Any] | str:
    return (
        {"column": _col(d, canonical), "decimal_comma": True}
        if d.decimal_comma
        else _col(d, canonical)
    )


def _codes(d: District, descriptor: str, canonical: str) -> dict[str, Any] | str:
    crosswalk = {local: value for value, local in d.codes.get(descriptor, {}).items()}
    if not crosswalk or (d.partner_id, descriptor) in IN_DESCRIPTOR_MAP:
        return _col(d, canonical)
    return {"column": _col(d, canonical), "codes": crosswalk}


def _bool(d: District, canonical: str) -> dict[str, Any] | str:
    if d.file_format in ("parquet", "xlsx"):
        return _col(d, canonical)
    yes, no = d.bools
    return {"column": _col(d, canonical), "true_values": [yes], "false_values": [no]}


def _school(d: District) -> dict[str, str]:
    return {"template": "{partner_id}/{" + _col(d, "school") + "}"}


def _ext(d: District) -> str:
    if d.file_format == "parquet":
        return "parquet"
    if d.file_format == "jsonl":
        return "jsonl"
    if d.file_format == "xlsx":
        return "xlsx"
    return {",": "csv", ";": "csv", "|": "txt", "\t": "tsv"}[d.delimiter]


def _section(
    d: District,
    entity_file: str,
    entity: str,
    columns: dict[str, Any],
) -> dict[str, Any]:
    all_columns = [
        c
        for c, _ in ENTITIES[entity_file][1]
        if not (c == "state_id" and not d.sends_state_id)
    ]
    section: dict[str, Any] = {
        "match": f"*{entity_file}*.{_ext(d)}" if d.file_format != "xlsx" else "*.xlsx",
        "entity": entity,
    }
    if d.file_format == "xlsx":
        section["sheet"] = entity_file.replace("_", " ").title()
    section["columns"] = columns
    used_sources = set()
    for spec in columns.values():
        if isinstance(spec, str):
            used_sources.add(spec)
        elif "column" in spec:
            used_sources.add(spec["column"])
        elif "school_year_from" in spec:
            used_sources.add(spec["school_year_from"])
        elif "template" in spec:
            used_sources |= {
                p.split("}")[0] for p in spec["template"].split("{")[1:]
            } - {"partner_id"}
    # what this section does not read is ignored here (another section may read it)
    ignore = sorted({_col(d, c) for c in all_columns} - used_sources)
    if ignore:
        section["ignore"] = ignore
    return section


def _district_sections(d: District) -> dict[str, list[dict[str, Any]]]:
    def c(name: str) -> str:
        return _col(d, name)

    students_id = {
        "local_id": c("local_id"),
        "first_name": c("first_name"),
        "middle_name": c("middle_name"),
        "last_surname": c("last_name"),
        "generation_code_suffix": c("suffix"),
        "birth_date": _date(d, "birth_date"),
        "birth_sex": _codes(d, "SexDescriptor", "sex"),
        "address": c("address"),
        "postal_code": c("zip"),
        "school_id": _school(d),
        "identification_system": {"constant": "District"},
    }
    if d.sends_state_id:
        students_id["state_student_id"] = c("state_id")
    demographics = {
        "student_local_id": c("local_id"),
        "as_of_date": _date(d, "as_of"),
        "sex": _codes(d, "SexDescriptor", "sex"),
        "race": c("race"),
        "hispanic_latino_ethnicity": _bool(d, "hispanic"),
        "economic_disadvantaged": _bool(d, "economic_disadvantaged"),
        "english_learner": _bool(d, "english_learner"),
        "disability": _bool(d, "special_education"),
    }
    records = [
        _section(d, "students", "partner_record", students_id),
        _section(d, "students", "demographics", demographics),
        _section(
            d,
            "enrollments",
            "enrollment",
            {
                "student_local_id": c("local_id"),
                "school_id": _school(d),
                "entry_date": _date(d, "entry_date"),
                "school_year": {
                    "school_year_from": c("entry_date"),
                    **(
                        {"date_format": d.date_format}
                        if d.file_format not in ("parquet", "xlsx")
                        else {}
                    ),
                },
                "entry_grade_level": {"column": c("grade"), "grade_level": True},
                "exit_withdraw_date": _date(d, "exit_date"),
                "exit_withdraw_type": _codes(
                    d, "ExitWithdrawTypeDescriptor", "exit_code"
                ),
            },
        ),
    ]
    records += [
        _section(
            d,
            "discipline",
            "discipline_incident",
            {
                "student_local_id": c("local_id"),
                "school_id": _school(d),
                "incident_identifier": c("incident_id"),
                "incident_date": _date(d, "incident_date"),
                "behavior": c("behavior"),
                "participation_code": {"constant": "Perpetrator"},
            },
        ),
        _section(
            d,
            "discipline",
            "discipline_action",
            {
                "student_local_id": c("local_id"),
                "discipline_action_identifier": c("action_id"),
                "discipline_date": _date(d, "incident_date"),
                "discipline": c("action"),
                "discipline_action_length": _num(d, "action_days"),
                "responsibility_school_id": _school(d),
                "incident_identifier": c("incident_id"),
            },
        ),
        _section(
            d,
            "courses",
            "course_transcript",
            {
                "student_local_id": c("local_id"),
                "school_id": _school(d),
                "school_year": c("school_year"),
                "term": c("term"),
                "course_code": c("course_code"),
                "course_title": c("course_title"),
                "academic_subject": c("subject"),
                "final_numeric_grade_earned": _num(d, "mark"),
                "final_letter_grade_earned": c("letter_grade"),
                "attempted_credits": _num(d, "credits_attempted"),
                "earned_credits": _num(d, "credits_earned"),
            },
        ),
        _section(
            d,
            "gpa",
            "student_academic_record",
            {
                "student_local_id": c("local_id"),
                "school_id": _school(d),
                "school_year": c("school_year"),
                "term": c("term"),
                "session_gpa": _num(d, "term_gpa"),
                "cumulative_gpa": _num(d, "cumulative_gpa"),
                "cumulative_earned_credits": _num(d, "cumulative_credits"),
            },
        ),
        _section(
            d,
            "assessments",
            "student_assessment",
            {
                "student_local_id": c("local_id"),
                "assessment_identifier": c("test"),
                "academic_subject": c("subject"),
                "administration_date": _date(d, "test_date"),
                "school_year": {
                    "school_year_from": c("test_date"),
                    **(
                        {"date_format": d.date_format}
                        if d.file_format not in ("parquet", "xlsx")
                        else {}
                    ),
                },
                "when_assessed_grade_level": {
                    "column": c("grade"),
                    "grade_level": True,
                },
                "scale_score": _num(d, "scale_score"),
                "performance_level": c("performance_level"),
            },
        ),
        _section(
            d,
            "graduates",
            "graduation",
            {
                "student_local_id": c("local_id"),
                "school_id": _school(d),
                "graduation_date": _date(d, "graduation_date"),
                "diploma_type": c("diploma"),
                "class_of_school_year": c("class_of"),
            },
        ),
    ]
    if d.attendance == "daily":
        attendance = [
            _section(
                d,
                "attendance",
                "attendance_event",
                {
                    "student_local_id": c("local_id"),
                    "school_id": _school(d),
                    "school_year": {
                        "school_year_from": c("date"),
                        **(
                            {"date_format": d.date_format}
                            if d.file_format not in ("parquet", "xlsx")
                            else {}
                        ),
                    },
                    "event_date": _date(d, "date"),
                    "attendance_event_category": _codes(
                        d, "AttendanceEventCategoryDescriptor", "code"
                    ),
                    "event_duration": {"constant": 1},
                },
            )
        ]
    else:
        attendance = [
            _section(
                d,
                "attendance_terms",
                "attendance_period",
                {
                    "student_local_id": c("local_id"),
                    "school_id": _school(d),
                    "school_year": c("school_year"),
                    "session_name": c("term"),
                    "period_begin_date": _date(d, "term_begin"),
                    "period_end_date": _date(d, "term_end"),
                    "days_enrolled": _num(d, "days_enrolled"),
                    "days_present": _num(d, "days_present"),
                    "days_absent_excused": _num(d, "days_excused"),
                    "days_absent_unexcused": _num(d, "days_unexcused"),
                    "days_tardy": _num(d, "days_tardy"),
                },
            )
        ]
    return {"student-records": records, "attendance": attendance}


def _cbo_sections(cbo_id: str) -> list[dict[str, Any]]:
    cbo = next(c for c in CBOS if c.partner_id == cbo_id)
    roster, sessions = CBO_COLUMNS[cbo_id]
    native = cbo.file_format == "xlsx"

    def date(col: str) -> dict[str, Any] | str:
        return col if native else {"column": col, "date_format": cbo.date_format}

    sex_codes = {
        "F": "Female",
        "M": "Male",
        "Female": "Female",
        "Male": "Male",
        "female": "Female",
        "male": "Male",
    }
    r = dict(zip(("id", "first", "last"), roster[:3], strict=True))
    has_middle = cbo_id == "c03-stepup"
    names = dict(
        zip(
            [
                "id",
                "first",
                "last",
                *(["middle"] if has_middle else []),
                "dob",
                "sex",
                "grade",
                "school",
                "program",
                "start",
                "end",
                "address",
                "zip",
            ],
            roster,
            strict=False,
        )
    )
    program_col = names["program"]
    program_value: dict[str, Any] = {"column": program_col}
    if cbo_id in ("c01-brightfutures", "c03-stepup"):  # these send program names
        program_value["codes"] = {
            p.name: p.program_id for p in PROGRAMS if p.partner_id == cbo_id
        }
    roster_ext = (
        "xlsx" if native else ("jsonl" if cbo.file_format == "jsonl" else "csv")
    )
    roster_match = (
        "*.xlsx"
        if native
        else ("advisees_*.jsonl" if roster_ext == "jsonl" else "roster_*.csv")
    )
    session_match = (
        "*.xlsx"
        if native
        else ("meetings_*.jsonl" if roster_ext == "jsonl" else "sessions_*.csv")
    )
    base = {"match": roster_match, **({"sheet": "Roster"} if native else {})}
    identity = {
        **base,
        "entity": "partner_record",
        "columns": {
            "local_id": r["id"],
            "first_name": r["first"],
            "last_surname": r["last"],
            "birth_date": date(names["dob"]),
            "birth_sex": {"column": names["sex"], "codes": sex_codes},
            "identification_system": {"constant": "Local"},
            "school_name": names["school"],
            **({"middle_name": names["middle"]} if has_middle else {}),
            **(
                {"address": names["address"], "postal_code": names["zip"]}
                if "zip" in names
                else {}
            ),
        },
        "ignore": sorted(
            set(roster)
            - {
                r["id"],
                r["first"],
                r["last"],
                names["dob"],
                names["sex"],
                names["school"],
                names.get("middle", ""),
                names.get("address", ""),
                names.get("zip", ""),
            }
            - {""}
        ),
    }
    program = {k: v for k, v in program_value.items() if k != "codes" or v}
    participation = {
        **base,
        "entity": "program_participation",
        "columns": {
            "student_local_id": r["id"],
            "program_id": program,
            "begin_date": date(names["start"]),
            "end_date": date(names["end"]),
        },
    }
    session = {
        "match": session_match,
        **({"sheet": "Sessions"} if native else {}),
        "entity": "program_attendance",
        "columns": {
            "student_local_id": sessions[0],
            "program_id": sessions[1],
            "event_date": date(sessions[2]),
            "hours": sessions[3],
            "attendance_event_category": {"constant": "In Attendance"},
        },
    }
    sections = [identity, participation, session]
    if cbo_id == CONSENT_CBO:
        sections.append(
            {
                "match": "*.xlsx",
                "sheet": "Consent",
                "entity": "consent",
                "columns": {
                    "student_local_id": "Mentee ID",
                    "consent_scope": {"constant": "all"},
                    "consent_status": {
                        "column": "Permission",
                        "codes": {"Yes": "granted", "No": "denied"},
                    },
                    "decision_date": "Signed",
                    "expiration_date": "Valid through",
                },
            }
        )
    return sections


def mapping_documents() -> dict[tuple[str, str], dict[str, Any]]:
    """(partner, feed) -> mapping document."""
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for d in DISTRICTS:
        if d.file_format == "edfi-json":
            for feed in ("student-records", "attendance"):
                docs[(d.partner_id, feed)] = {"stock": "edfi"}
            continue
        for feed, sections in _district_sections(d).items():
            docs[(d.partner_id, feed)] = {
                "partner": d.partner_id,
                "feed": feed,
                "files": sections,
            }
    for c in CBOS:
        docs[(c.partner_id, "rosters")] = {
            "partner": c.partner_id,
            "feed": "rosters",
            "files": _cbo_sections(c.partner_id),
        }
    agency = COLLEGE_AGENCY[0]
    docs[(agency, "college-records")] = {
        "partner": agency,
        "feed": "college-records",
        "files": [
            {
                "match": "students.csv",
                "entity": "partner_record",
                "columns": {
                    "local_id": "agency_student_id",
                    "first_name": "first_name",
                    "middle_name": "middle_name",
                    "last_surname": "last_name",
                    "birth_date": "birth_date",
                    "birth_sex": {
                        "column": "sex",
                        "codes": {"F": "Female", "M": "Male"},
                    },
                    "identification_system": {"constant": "Other"},
                    "school_name": "high_school",
                },
                "ignore": ["hs_graduation_year"],
            },
            {
                "match": "terms.csv",
                "entity": "postsecondary_enrollment",
                "columns": {
                    "student_local_id": "agency_student_id",
                    "institution_id": "institution_id",
                    "term_name": "term",
                    "term_begin_date": "term_begin",
                    "term_end_date": "term_end",
                    "enrollment_status": "enrollment_status",
                    "credits_attempted": "credits_attempted",
                    "credits_earned": "credits_earned",
                    "term_gpa": "term_gpa",
                },
                "ignore": ["institution_name"],
            },
            {
                "match": "events.csv",
                "entity": "postsecondary_event",
                "columns": {
                    "student_local_id": "agency_student_id",
                    "institution_id": "institution_id",
                    "event_date": "event_date",
                    "postsecondary_event_category": "event",
                    "degree_type": "degree_type",
                },
            },
        ],
    }
    return docs


def write_mappings(out: Path) -> list[Path]:
    written = []
    for (partner, feed), doc in mapping_documents().items():
        path = out / "mappings" / partner / f"{feed}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100),
            encoding="utf-8",
        )
        written.append(path)
    return written
