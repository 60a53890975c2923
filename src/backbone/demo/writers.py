"""Render each partner's export in its own dialect and write the files.

Every file is written from an ordered DuckDB query, so the same seed gives
byte-identical files. Encodings other than UTF-8 are produced by re-encoding the
UTF-8 text DuckDB writes; XLSX is written with xlsxwriter using fixed document
properties.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import xlsxwriter

from backbone.demo.calendar import SCHOOL_YEAR_START_MONTH
from backbone.demo.community import CBOS, District
from backbone.engines import Connection
from backbone.engines.sql import ident, literal
from backbone.model.calendar import school_year_label

__all__ = ["write_agency", "write_cbo", "write_district"]

FIXED_TIME = dt.datetime(2026, 1, 1, 0, 0, 0)

# canonical column -> kind, per district entity. Kinds: id, text, name, date, bool,
# num, int, grade, code:<Descriptor>.
ENTITIES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "students": (
        "x_students",
        [
            ("local_id", "id"),
            ("state_id", "id"),
            ("last_name", "name"),
            ("first_name", "name"),
            ("middle_name", "name"),
            ("suffix", "text"),
            ("birth_date", "date"),
            ("sex", "code:SexDescriptor"),
            ("race", "text"),
            ("hispanic", "bool"),
            ("economic_disadvantaged", "bool"),
            ("english_learner", "bool"),
            ("special_education", "bool"),
            ("address", "text"),
            ("zip", "text"),
            ("school", "id"),
            ("grade", "grade"),
            ("as_of", "date"),
        ],
    ),
    "enrollments": (
        "x_enrollments",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("entry_date", "date"),
            ("grade", "grade"),
            ("exit_date", "date"),
            ("exit_code", "code:ExitWithdrawTypeDescriptor"),
        ],
    ),
    "attendance": (
        "x_attendance",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("date", "date"),
            ("code", "code:AttendanceEventCategoryDescriptor"),
        ],
    ),
    "attendance_terms": (
        "x_attendance_terms",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("school_year", "int"),
            ("term", "text"),
            ("term_begin", "date"),
            ("term_end", "date"),
            ("days_enrolled", "num"),
            ("days_present", "num"),
            ("days_excused", "num"),
            ("days_unexcused", "num"),
            ("days_tardy", "num"),
        ],
    ),
    "discipline": (
        "x_discipline",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("incident_id", "id"),
            ("incident_date", "date"),
            ("behavior", "text"),
            ("action_id", "id"),
            ("action", "text"),
            ("action_days", "num"),
        ],
    ),
    "courses": (
        "x_courses",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("school_year", "int"),
            ("term", "text"),
            ("course_code", "id"),
            ("course_title", "text"),
            ("subject", "text"),
            ("mark", "num"),
            ("letter_grade", "text"),
            ("credits_attempted", "num"),
            ("credits_earned", "num"),
        ],
    ),
    "gpa": (
        "x_gpa",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("school_year", "int"),
            ("term", "text"),
            ("term_gpa", "num"),
            ("cumulative_gpa", "num"),
            ("cumulative_credits", "num"),
        ],
    ),
    "assessments": (
        "x_assessments",
        [
            ("local_id", "id"),
            ("test", "id"),
            ("subject", "text"),
            ("test_date", "date"),
            ("grade", "grade"),
            ("scale_score", "num"),
            ("performance_level", "text"),
        ],
    ),
    "graduates": (
        "x_graduates",
        [
            ("local_id", "id"),
            ("school", "id"),
            ("graduation_date", "date"),
            ("diploma", "text"),
            ("class_of", "int"),
        ],
    ),
}

# canonical export name -> source column in the x_ tables (where they differ)
SOURCE = {
    "state_id": "state_student_id",
    "last_name": "last_surname",
    "suffix": "generation_code_suffix",
    "special_education": "disability",
    "zip": "postal_code",
    "school": "school_local",
    "exit_code": "exit_type",
    "date": "event_date",
    "code": "category",
    "term_begin": "period_begin",
    "term_end": "period_end",
    "subject": "academic_subject",
    "mark": "numeric_grade",
    "test": "assessment_id",
    "test_date": "administration_date",
    "as_of": "as_of_date",
    "diploma": "diploma_type",
}


def column_name(d: District, canonical: str) -> str:
    if canonical in d.columns:
        return d.columns[canonical]
    words = canonical.split("_")
    match d.style:
        case "pascal":
            return "".join(w.capitalize() for w in words)
        case "upper":
            return canonical.upper()
        case "title":
            return " ".join(w.capitalize() for w in words)
        case "camel":
            return words[0] + "".join(w.capitalize() for w in words[1:])
        case _:
            return canonical


def _value_sql(d: District, col: str, kind: str, native: bool) -> str:
    """SQL rendering one canonical column in the district's dialect."""
    if kind == "date":
        return col if native else f"strftime({col}, {literal(d.date_format)})"
    if kind == "name":
        expr = col
        if d.ascii_names:
            expr = f"strip_accents({expr})"
        if d.upper_case_names:
            expr = f"upper({expr})"
        return expr
    if kind == "bool":
        if native:
            return col
        yes, no = d.bools
        return (
            f"CASE WHEN {col} THEN {literal(yes)} WHEN NOT {col} THEN {literal(no)} END"
        )
    if kind == "num":
        if native:
            return col
        text = (
            f"CASE WHEN {col} = round({col}) THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST(round({col}, 2) AS VARCHAR) END"
        )
        return f"replace({text}, '.', ',')" if d.decimal_comma else text
    if kind == "grade":
        if d.grade_style == "two":
            return (
                f"CASE WHEN {col} = 0 THEN 'KG' ELSE lpad({col}::VARCHAR, 2, '0') END"
            )
        if d.grade_style == "k":
            return f"CASE WHEN {col} = 0 THEN 'K' ELSE {col}::VARCHAR END"
        return col if native else f"{col}::VARCHAR"
    if kind.startswith("code:"):
        mapping = d.codes.get(kind[5:], {})
        if not mapping:
            return col
        whens = " ".join(
            f"WHEN {literal(k)} THEN {literal(v)}" for k, v in mapping.items()
        )
        return f"CASE {col} {whens} ELSE {col} END"
    return col


def _district_sql(d: District, entity: str, school_year: int, native: bool) -> str:
    table, columns = ENTITIES[entity]
    select = []
    for canonical, kind in columns:
        if canonical == "state_id" and not d.sends_state_id:
            continue
        source = SOURCE.get(canonical, canonical)
        expr = _value_sql(d, source, kind, native)
        select.append(f"{expr} AS {ident(column_name(d, canonical))}")
    body = ", ".join(select)
    order = {
        "attendance": "local_id, event_date, category",
        "attendance_terms": "local_id, term, school_local",
        "discipline": "incident_id",
        "courses": "local_id, term, course_code",
        "gpa": "local_id, term",
        "assessments": "local_id, assessment_id",
        "enrollments": "local_id, entry_date",
    }.get(entity, "local_id")
    source_table = table
    if entity == "attendance_terms":
        source_table = (
            "(SELECT t.*, c1.d AS period_begin, c2.d AS period_end FROM x_attendance_terms t "
            "JOIN calendar c1 ON c1.district = t.district AND c1.year_index = t.year_index "
            "AND c1.day_index = t.b "
            "JOIN calendar c2 ON c2.district = t.district AND c2.year_index = t.year_index "
            "AND c2.day_index = t.e - 1)"
        )
    return (
        f"SELECT {body} FROM {source_table} "
        f"WHERE partner_id = {literal(d.partner_id)} AND school_year = {school_year} "
        f"ORDER BY {order}"
    )


def _copy_text(
    con: Connection,
    sql: str,
    path: Path,
    delimiter: str,
    encoding: str,
) -> int:
    con.execute(
        f"COPY ({sql}) TO {literal(str(path))} "
        f"(FORMAT csv, HEADER, DELIMITER {literal(delimiter)})"
    )
    if encoding != "utf-8":
        text = path.read_bytes().decode("utf-8")
        path.write_bytes(text.encode(encoding))
    return path.stat().st_size


def _write_xlsx(con: Connection, sheets: list[tuple[str, str]], path: Path) -> None:
    """One workbook, a sheet per query; dates as Excel dates, as Excel users send."""
    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "default_date_format": "mm/dd/yyyy"}
    )
    workbook.set_properties({"created": FIXED_TIME, "author": "Backbone demo"})
    bold = workbook.add_format({"bold": True})
    for title, sql in sheets:
        sheet = workbook.add_worksheet(title)
        rel = con.execute(sql)
        names = [c[0] for c in rel.description]
        sheet.write_row(0, 0, names, bold)
        row = 1
        while batch := rel.fetchmany(50_000):
            for values in batch:
                sheet.write_row(row, 0, values)
                row += 1
    workbook.close()


def write_district(
    con: Connection,
    d: District,
    school_years: list[int],
    out: Path,
    say: Callable[[str], None],
) -> list[Path]:
    """Write one district's yearly exports in its dialect; returns the files."""
    if d.file_format == "edfi-json":
        from backbone.demo.edfi import write_edfi_district

        return write_edfi_district(con, d, school_years, out, say)
    entities = [
        e
        for e in ENTITIES
        if e != ("attendance_terms" if d.attendance == "daily" else "attendance")
    ]
    written: list[Path] = []
    for t in school_years:
        folder = out / str(t)
        folder.mkdir(parents=True, exist_ok=True)
        if d.file_format == "xlsx":
            path = folder / f"{d.partner_id.split('-')[1]}_export_{t}.xlsx"
            sheets = [
                (e.replace("_", " ").title(), _district_sql(d, e, t, True))
                for e in entities
            ]
            _write_xlsx(con, sheets, path)
            written.append(path)
            say(f"{d.partner_id}: wrote {t}")
            continue
        for entity in entities:
            if d.file_format == "parquet":
                path = folder / f"{entity}.parquet"
                sql = _district_sql(d, entity, t, True)
                con.execute(
                    f"COPY ({sql}) TO {literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
                )
            elif d.file_format == "jsonl":
                path = folder / f"{entity}.jsonl"
                sql = _district_sql(d, entity, t, False)
                # JSON lines have no header: a year with nothing to send sends no
                # file (a small community may have no graduates in a district)
                rows = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
                if not rows:
                    continue
                con.execute(f"COPY ({sql}) TO {literal(str(path))} (FORMAT json)")
            else:
                ext = {",": "csv", ";": "csv", "|": "txt", "\t": "tsv"}[d.delimiter]
                path = folder / f"{entity}.{ext}"
                sql = _district_sql(d, entity, t, False)
                _copy_text(con, sql, path, d.delimiter, d.encoding)
            written.append(path)
        say(f"{d.partner_id}: wrote {t}")
    return written


CBO_COLUMNS = {
    "c01-brightfutures": (
        [
            "Mentee ID",
            "First Name",
            "Last Name",
            "DOB",
            "Gender",
            "Grade",
            "School",
            "Program",
            "Match Start",
            "Match End",
        ],
        ["Mentee ID", "Program", "Session Date", "Hours"],
    ),
    "c02-eastside": (
        [
            "ID",
            "FIRST",
            "LAST",
            "BIRTHDATE",
            "SEX",
            "GRADE",
            "SCHOOL",
            "PROGRAM",
            "ENROLL_DATE",
            "EXIT_DATE",
            "ADDRESS",
            "ZIP",
        ],
        ["ID", "PROGRAM", "DATE", "HOURS"],
    ),
    "c03-stepup": (
        [
            "participant_no",
            "given_name",
            "family_name",
            "middle",
            "born",
            "gender",
            "grade",
            "school",
            "program",
            "start",
            "end",
        ],
        ["participant_no", "program", "session", "hours"],
    ),
    "c04-collegebound": (
        [
            "advisee_id",
            "first",
            "last",
            "date_of_birth",
            "gender",
            "grade",
            "high_school",
            "program",
            "start_date",
            "end_date",
        ],
        ["advisee_id", "program", "meeting_date", "hours"],
    ),
}


CONSENT_CBO = "c01-brightfutures"
"""The community organization whose agreement rests on families' consent."""


def consent_sql(cbo_id: str, school_year: int) -> str:
    """Families' permission slips of one school year: signed when the mentoring
    began, valid for three years unless withdrawn; about one family in twenty
    declines (a stable hash of the id decides)."""
    return (
        "SELECT local_id AS \"Mentee ID\", CASE WHEN hash(local_id) % 20 = 0 THEN 'No' "
        'ELSE \'Yes\' END AS "Permission", min(begin_date) AS "Signed", '
        'CAST(min(begin_date) + INTERVAL 3 YEAR AS DATE) AS "Valid through" '
        f"FROM x_roster WHERE partner_id = {literal(cbo_id)} AND school_year = {school_year} "
        "GROUP BY local_id ORDER BY local_id"
    )


def write_cbo(
    con: Connection,
    cbo_id: str,
    school_years: list[int],
    out: Path,
) -> list[Path]:
    """A community organization's roster and session log per school year."""
    cbo = next(c for c in CBOS if c.partner_id == cbo_id)
    roster_names, session_names = CBO_COLUMNS[cbo_id]
    native = cbo.file_format == "xlsx"
    date = (
        (lambda c: c)
        if native
        else (lambda c: f"strftime({c}, {literal(cbo.date_format)})")
    )
    gender = "CASE sex WHEN 'Female' THEN 'F' ELSE 'M' END"
    roster_exprs = {
        "c01-brightfutures": [
            "local_id",
            "first_name",
            "last_surname",
            date("birth_date"),
            gender,
            "grade",
            "school_name",
            "program_name",
            date("begin_date"),
            date("end_date"),
        ],
        "c02-eastside": [
            "local_id",
            "upper(first_name)",
            "upper(last_surname)",
            date("birth_date"),
            gender,
            "grade",
            "school_name",
            "program_id",
            date("begin_date"),
            date("end_date"),
            "address",
            "postal_code",
        ],
        "c03-stepup": [
            "local_id",
            "first_name",
            "last_surname",
            "middle_name",
            date("birth_date"),
            "sex",
            "grade",
            "school_name",
            "program_name",
            date("begin_date"),
            date("end_date"),
        ],
        "c04-collegebound": [
            "local_id",
            "first_name",
            "last_surname",
            date("birth_date"),
            "lower(sex)",
            "grade",
            "school_name",
            "program_id",
            date("begin_date"),
            date("end_date"),
        ],
    }[cbo_id]
    session_exprs = ["local_id", "program_id", date("event_date"), "hours"]
    written: list[Path] = []
    for t in school_years:
        roster_sql = (
            "SELECT "
            + ", ".join(
                f"{e} AS {ident(n)}"
                for e, n in zip(roster_exprs, roster_names, strict=True)
            )
            + f" FROM x_roster WHERE partner_id = {literal(cbo_id)} AND school_year = {t}"
            " ORDER BY local_id, program_id, begin_date"
        )
        session_sql = (
            "SELECT "
            + ", ".join(
                f"{e} AS {ident(n)}"
                for e, n in zip(session_exprs, session_names, strict=True)
            )
            + f" FROM x_sessions WHERE partner_id = {literal(cbo_id)} AND school_year = {t}"
            " ORDER BY local_id, program_id, event_date"
        )
        out.mkdir(parents=True, exist_ok=True)
        year = school_year_label(t, SCHOOL_YEAR_START_MONTH)
        if cbo.file_format == "xlsx":
            path = out / f"mentoring {year}.xlsx"
            sheets = [("Roster", roster_sql), ("Sessions", session_sql)]
            if cbo_id == CONSENT_CBO:
                sheets.append(("Consent", consent_sql(cbo_id, t)))
            _write_xlsx(con, sheets, path)
            written.append(path)
        elif cbo.file_format == "jsonl":
            for name, sql in (("advisees", roster_sql), ("meetings", session_sql)):
                path = out / f"{name}_{t}.jsonl"
                con.execute(f"COPY ({sql}) TO {literal(str(path))} (FORMAT json)")
                written.append(path)
        else:
            for name, sql in (("roster", roster_sql), ("sessions", session_sql)):
                path = out / f"{name}_{year}.csv"
                _copy_text(con, sql, path, cbo.delimiter, "utf-8")
                written.append(path)
    return written


def write_agency(con: Connection, out: Path) -> list[Path]:
    """The college agency's yearly files: students, terms and events (CSV)."""
    written: list[Path] = []
    years = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT academic_year FROM x_college_terms ORDER BY 1"
        ).fetchall()
    ]
    for year in years:
        folder = out / str(year)
        folder.mkdir(parents=True, exist_ok=True)
        queries = {
            "students": (
                "SELECT local_id AS agency_student_id, first_name, middle_name, "
                "last_surname AS last_name, birth_date, CASE sex WHEN 'Female' THEN 'F' "
                "ELSE 'M' END AS sex, high_school, hs_graduation_year FROM x_college_students "
                f"WHERE academic_year = {year} ORDER BY local_id"
            ),
            "terms": (
                "SELECT local_id AS agency_student_id, institution_id, institution_name, "
                "term_name AS term, term_begin_date AS term_begin, term_end_date AS term_end, "
                "enrollment_status, credits_attempted, credits_earned, term_gpa "
                f"FROM x_college_terms WHERE academic_year = {year} "
                "ORDER BY local_id, term_begin_date"
            ),
            "events": (
                "SELECT local_id AS agency_student_id, institution_id, event_date, "
                "category AS event, degree_type FROM x_college_events "
                f"WHERE academic_year = {year} ORDER BY local_id, event_date, category"
            ),
        }
        for name, sql in queries.items():
            path = folder / f"{name}.csv"
            _copy_text(con, sql, path, ",", "utf-8")
            written.append(path)
    return written
