"""The synthetic community behaves like the real one, and is reproducible."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import duckdb
import fastexcel
import pytest

from backbone.demo import GenerateSummary, generate
from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS, PROGRAMS
from backbone.model.descriptors import parse_descriptor_uri

from .conftest import STATS_YEARS


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", students=400, years=3, seed=5)
    b = generate(tmp_path / "b", students=400, years=3, seed=5)
    generate(tmp_path / "c", students=400, years=3, seed=6)
    assert a.files == b.files > 0
    digest_a = _digest(tmp_path / "a")
    assert digest_a == _digest(tmp_path / "b")
    assert digest_a != _digest(tmp_path / "c")


@pytest.mark.slow
def test_regenerating_into_the_same_folder_replaces_the_old_community(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "a", students=300, years=2, seed=1)
    generate(tmp_path / "a", students=300, years=3, seed=1, replace=True)
    years = sorted(p.name for p in (tmp_path / "a/partners/d02-riverside").iterdir())
    assert years == ["2024", "2025", "2026"]


@pytest.fixture(scope="module")
def con(community: GenerateSummary) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    truth = community.out / "truth"
    for name in (
        "persons",
        "records",
        "student_years",
        "program_participation",
        "college",
    ):
        c.execute(f"CREATE VIEW {name} AS SELECT * FROM '{truth / name}.parquet'")
    return c


def _partner_dir(community: GenerateSummary, partner_id: str) -> Path:
    return community.out / "partners" / partner_id


# --- every district speaks its own dialect -------------------------------------------


def _student_header(community: GenerateSummary, district_id: str) -> list[str]:
    folder = _partner_dir(community, district_id) / "2026"
    d = next(x for x in DISTRICTS if x.partner_id == district_id)
    if d.file_format == "edfi-json":
        return list(json.loads((folder / "students.json").read_text())[0])
    if d.file_format == "xlsx":
        book = fastexcel.read_excel(next(folder.glob("*.xlsx")))
        return list(book.load_sheet("Students").to_arrow().column_names)
    if d.file_format == "parquet":
        return duckdb.sql(f"SELECT * FROM '{folder}/students.parquet' LIMIT 0").columns
    if d.file_format == "jsonl":
        with (folder / "students.jsonl").open(encoding="utf-8") as lines:
            return list(json.loads(lines.readline()))
    path = next(folder.glob("students.*"))
    first = path.read_bytes().decode(d.encoding).splitlines()[0]
    return first.split(d.delimiter)


def test_eight_districts_with_distinct_column_names(community: GenerateSummary) -> None:
    headers = {
        d.partner_id: tuple(_student_header(community, d.partner_id)) for d in DISTRICTS
    }
    assert len(headers) == 8
    id_columns = {h[0] for h in headers.values()}
    assert len(id_columns) == 8, (
        id_columns
    )  # every system names its student id differently


def test_file_types_and_encodings_differ(community: GenerateSummary) -> None:
    suffixes = {
        p.suffix
        for d in DISTRICTS
        for p in (_partner_dir(community, d.partner_id) / "2026").iterdir()
    }
    assert {".json", ".csv", ".txt", ".tsv", ".xlsx", ".parquet", ".jsonl"} <= suffixes
    latin = (
        _partner_dir(community, "d03-lakeview") / "2026" / "students.csv"
    ).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        latin.decode("utf-8")  # accented names in Latin-1 are not valid UTF-8
    assert "é" in latin.decode("latin-1") or "á" in latin.decode("latin-1")
    bom = (
        _partner_dir(community, "d08-cedarridge") / "2026" / "students.tsv"
    ).read_bytes()
    assert bom.startswith(b"\xef\xbb\xbf")
    assert b"\t" in bom.splitlines()[0]
    pipe = (
        _partner_dir(community, "d04-hillcrest") / "2026" / "students.txt"
    ).read_text()
    assert pipe.splitlines()[0].count("|") >= 10


@pytest.mark.parametrize(
    ("district_id", "path", "column", "fmt"),
    [
        ("d02-riverside", "attendance.csv", "date", "%Y-%m-%d"),
        ("d03-lakeview", "attendance.csv", "Date", "%d.%m.%Y"),
        ("d04-hillcrest", "attendance.txt", "ATT_DATE", "%m/%d/%Y"),
        ("d08-cedarridge", "enrollments.tsv", "Entry Date", "%m/%d/%Y"),
    ],
)
def test_dates_follow_each_districts_format(
    community: GenerateSummary, district_id: str, path: str, column: str, fmt: str
) -> None:
    d = next(x for x in DISTRICTS if x.partner_id == district_id)
    lines = (
        (_partner_dir(community, district_id) / "2026" / path)
        .read_bytes()
        .decode(d.encoding)
        .splitlines()
    )
    header = lines[0].split(d.delimiter)
    position = header.index(column)
    values = [line.split(d.delimiter)[position] for line in lines[1:200]]
    for value in values:
        datetime.strptime(value, fmt)


def test_attendance_codes_differ_between_districts(community: GenerateSummary) -> None:
    codes = {}
    for district_id, path, column in (
        ("d02-riverside", "attendance.csv", "code"),
        ("d04-hillcrest", "attendance.txt", "CODE"),
        ("d06-pinecrest", "attendance.parquet", "code"),
        ("d07-maplevalley", "attendance.jsonl", "code"),
    ):
        # the first year: the last one carries planted mistakes
        file = (
            _partner_dir(community, district_id) / str(community.school_years[0]) / path
        )
        reader = (
            f"read_csv('{file}', delim='|', all_varchar=true)"
            if path.endswith(".txt")
            else f"'{file}'"
        )
        codes[district_id] = {
            r[0]
            for r in duckdb.sql(f'SELECT DISTINCT "{column}" FROM {reader}').fetchall()
        }
    assert codes["d02-riverside"] == {"A", "AE", "T"}
    assert codes["d04-hillcrest"] == {"1", "2", "3"}
    assert codes["d06-pinecrest"] == {"UNX", "EXC", "TDY"}
    assert codes["d07-maplevalley"] == {
        "Absent - Unexcused",
        "Absent - Excused",
        "Tardy",
    }


def test_the_edfi_district_sends_descriptor_uris(community: GenerateSummary) -> None:
    folder = _partner_dir(community, "d01-northfield") / "2026"
    events = json.loads((folder / "studentSchoolAttendanceEvents.json").read_text())
    categories = {
        parse_descriptor_uri(e["attendanceEventCategoryDescriptor"]).code_value
        for e in events
    }
    assert categories == {"Excused Absence", "Unexcused Absence", "Tardy"}
    assert events[0]["studentReference"]["studentUniqueId"]
    assoc = json.loads((folder / "studentSchoolAssociations.json").read_text())
    grade = parse_descriptor_uri(assoc[0]["entryGradeLevelDescriptor"])
    assert grade.descriptor_name == "GradeLevelDescriptor"


def test_some_districts_send_term_totals_instead_of_events(
    community: GenerateSummary,
) -> None:
    term = [d for d in DISTRICTS if d.attendance == "term"]
    assert len(term) >= 2
    folder = _partner_dir(community, "d08-cedarridge") / "2026"
    assert (folder / "attendance_terms.tsv").exists()
    assert not (folder / "attendance.tsv").exists()
    book = fastexcel.read_excel(
        next((_partner_dir(community, "d05-oakdale") / "2026").glob("*.xlsx"))
    )
    assert "Attendance Terms" in book.sheet_names
    sheet = book.load_sheet("Attendance Terms").to_arrow()
    assert "Days Present" in sheet.column_names


def test_at_least_five_school_years_by_default(community: GenerateSummary) -> None:
    assert len(community.school_years) == STATS_YEARS >= 5
    for d in DISTRICTS:
        years = [p.name for p in _partner_dir(community, d.partner_id).iterdir()]
        assert len(years) == STATS_YEARS


# --- the truth covers every record ----------------------------------------------------


def _local_ids(community: GenerateSummary) -> set[tuple[str, str]]:
    """Every (partner, local id) that appears in any identity file a partner sent."""
    found: set[tuple[str, str]] = set()
    for d in DISTRICTS:
        for year in _partner_dir(community, d.partner_id).iterdir():
            if d.file_format == "edfi-json":
                ids = [
                    r["studentUniqueId"]
                    for r in json.loads((year / "students.json").read_text())
                ]
            elif d.file_format == "xlsx":
                sheet = fastexcel.read_excel(next(year.glob("*.xlsx"))).load_sheet(
                    "Students"
                )
                ids = sheet.to_arrow().column(0).to_pylist()
            else:
                path = next(year.glob("students.*"))
                reader = (
                    f"'{path}'"
                    if path.suffix in (".parquet", ".jsonl")
                    else f"read_csv('{path}', delim=E'{d.delimiter if d.delimiter != chr(9) else chr(92) + 't'}', "
                    f"encoding='{'latin-1' if d.encoding == 'latin-1' else 'utf-8'}', all_varchar=true)"
                )
                ids = [r[0] for r in duckdb.sql(f"SELECT * FROM {reader}").fetchall()]
            # a planted row with its id left blank is a mistake, not a record
            found |= {(d.partner_id, str(i)) for i in ids if i not in (None, "")}
    for c in CBOS:
        folder = _partner_dir(community, c.partner_id)
        for path in folder.iterdir():
            if c.file_format == "xlsx":
                ids = (
                    fastexcel.read_excel(path)
                    .load_sheet("Roster")
                    .to_arrow()
                    .column(0)
                    .to_pylist()
                )
            elif path.name.startswith(("roster", "advisees")):
                reader = (
                    f"read_csv('{path}', delim='{c.delimiter}', all_varchar=true)"
                    if path.suffix == ".csv"
                    else f"'{path}'"
                )
                ids = [r[0] for r in duckdb.sql(f"SELECT * FROM {reader}").fetchall()]
            else:
                continue
            found |= {(c.partner_id, str(i)) for i in ids}
    for path in _partner_dir(community, COLLEGE_AGENCY[0]).glob("*/students.csv"):
        ids = [
            r[0]
            for r in duckdb.sql(f"SELECT agency_student_id FROM '{path}'").fetchall()
        ]
        found |= {(COLLEGE_AGENCY[0], i) for i in ids}
    return found


def test_truth_covers_every_record_and_nothing_else(
    community: GenerateSummary, con: duckdb.DuckDBPyConnection
) -> None:
    truth = set(con.execute("SELECT partner_id, local_id FROM records").fetchall())
    sent = _local_ids(community)
    assert sent == truth
    kinds = {p for p, _ in truth}
    assert len(kinds) == 8 + len(CBOS) + 1


def test_students_who_move_get_a_new_id_in_each_district(
    con: duckdb.DuckDBPyConnection,
) -> None:
    movers = con.execute(
        """
        SELECT count(*) FROM (
            SELECT person_key FROM records WHERE partner_id LIKE 'd0%'
            GROUP BY person_key HAVING count(DISTINCT partner_id) >= 2)
        """
    ).fetchone()
    assert movers is not None and movers[0] > 100


def test_districts_spell_the_same_student_differently(
    con: duckdb.DuckDBPyConnection, community: GenerateSummary
) -> None:
    # Hillcrest keeps names upper-case ASCII; others keep accents
    folder = _partner_dir(community, "d04-hillcrest")
    names = duckdb.sql(
        f"SELECT FNAME FROM read_csv('{folder}/*/students.txt', delim='|', all_varchar=true, "
        "union_by_name=true)"
    ).fetchall()
    assert all(n[0] == n[0].upper() and n[0].isascii() for n in names)


def _roster_vs_truth(
    community: GenerateSummary, con: duckdb.DuckDBPyConnection
) -> tuple[float, float, float]:
    folder = _partner_dir(community, "c03-stepup")
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW stepup AS
        SELECT * FROM read_csv('{folder}/roster_*.csv', delim=';', all_varchar=true)"""
    )
    row = con.execute(
        """
        SELECT avg((s.given_name <> p.first_name)::INT),
               avg((s.born IS NULL)::INT),
               avg((s.born IS NOT NULL AND s.born::DATE <> p.birth_date)::INT)
        FROM stepup s
        JOIN records r ON r.partner_id = 'c03-stepup' AND r.local_id = s.participant_no
        JOIN persons p USING (person_key)
        """
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_community_rosters_carry_typos_nicknames_and_missing_birth_dates(
    community: GenerateSummary, con: duckdb.DuckDBPyConnection
) -> None:
    first_differs, dob_missing, dob_wrong = _roster_vs_truth(community, con)
    assert 0.08 < first_differs < 0.50
    assert 0.05 < dob_missing < 0.25
    assert 0.01 < dob_wrong < 0.15
    header = (
        (_partner_dir(community, "c02-eastside") / "roster_2025-26.csv")
        .read_text()
        .splitlines()[0]
    )
    assert "STATE" not in header.upper() and "SSID" not in header.upper()


def test_at_least_three_community_organizations_with_sessions(
    community: GenerateSummary,
) -> None:
    assert len(CBOS) >= 3
    sessions = duckdb.sql(
        f"SELECT count(*), sum(hours::DOUBLE) FROM read_csv('{_partner_dir(community, 'c02-eastside')}/sessions_*.csv', all_varchar=true)"
    ).fetchall()[0]
    assert sessions is not None and sessions[0] > 1000 and sessions[1] > 0


def test_college_records_have_changed_surnames_and_missing_middle_names(
    community: GenerateSummary, con: duckdb.DuckDBPyConnection
) -> None:
    row = con.execute(
        f"""
        SELECT avg((c.last_name LIKE '%-%' AND p.last_surname NOT LIKE '%-%')::INT),
               avg((c.last_name <> p.last_surname)::INT),
               avg((c.middle_name IS NULL AND p.middle_name IS NOT NULL)::INT)
        FROM '{_partner_dir(community, COLLEGE_AGENCY[0])}/*/students.csv' c
        JOIN records r ON r.partner_id = '{COLLEGE_AGENCY[0]}' AND r.local_id = c.agency_student_id
        JOIN persons p USING (person_key)
        """
    ).fetchone()
    assert row is not None
    hyphenated, changed, middle_missing = row
    assert hyphenated > 0.01
    assert changed > 0.04
    assert middle_missing > 0.3


def test_funders_have_initiatives_that_group_programs(
    community: GenerateSummary,
) -> None:
    doc = json.loads((community.out / "community.json").read_text())
    funders = {p["partner_id"] for p in doc["partners"] if p["kind"] == "funder"}
    assert len(funders) == 2
    programs = {p["program_id"] for p in doc["programs"]}
    for initiative in doc["initiatives"]:
        assert initiative["funder_partner_id"] in funders
        assert set(initiative["program_ids"]) <= programs


# --- realistic base rates and correlations -------------------------------------------


def test_chronic_absence_is_between_15_and_30_percent(
    community: GenerateSummary,
) -> None:
    """Measured from what the term-total districts actually sent."""
    folder = _partner_dir(community, "d08-cedarridge")
    rate = duckdb.sql(
        f"""
        SELECT avg(((enrolled - present) / enrolled >= 0.10)::INT)
        FROM (SELECT "Student Number", sum("Days Enrolled"::DOUBLE) AS enrolled,
                     sum("Days Present"::DOUBLE) AS present
              FROM read_csv('{folder}/*/attendance_terms.tsv', delim='\t', filename=true)
              GROUP BY "Student Number", filename)
        WHERE enrolled >= 90
        """
    ).fetchall()[0]
    assert rate is not None and 0.15 <= rate[0] <= 0.30, rate


def test_planted_chronic_absence_across_the_community(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rate = con.execute(
        "SELECT avg((absence_rate_planted >= 0.10)::INT) FROM student_years"
    ).fetchone()
    assert rate is not None and 0.15 <= rate[0] <= 0.30


def test_four_year_graduation_rate_is_between_80_and_90_percent(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rate = con.execute(
        """
        SELECT avg((outcome = 'graduated')::INT) FROM persons p
        WHERE outcome <> 'moved_away' AND class_of <= 2026
          AND person_key IN (SELECT person_key FROM student_years WHERE grade = 9)
        """
    ).fetchone()
    assert rate is not None and 0.80 <= rate[0] <= 0.90, rate


def test_college_enrollment_is_between_55_and_70_percent_of_graduates(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rate = con.execute(
        "SELECT avg(enrolls::INT) FROM college WHERE graduation_year <= 2024"
    ).fetchone()
    assert rate is not None and 0.55 <= rate[0] <= 0.70, rate


def test_attendance_behaviour_and_marks_predict_non_graduation(
    community: GenerateSummary, con: duckdb.DuckDBPyConnection
) -> None:
    """Ninth graders who were chronically absent drop out far more often."""
    row = con.execute(
        """
        WITH ninth AS (
            SELECT person_key, max(absence_rate_planted) AS absence
            FROM student_years WHERE grade = 9 GROUP BY person_key
        )
        SELECT avg((p.outcome <> 'graduated')::INT) FILTER (WHERE absence >= 0.10),
               avg((p.outcome <> 'graduated')::INT) FILTER (WHERE absence < 0.10)
        FROM ninth JOIN persons p USING (person_key)
        WHERE p.outcome IN ('graduated', 'dropout', 'no_diploma')
        """
    ).fetchone()
    assert row is not None
    chronic, not_chronic = row
    assert chronic > 2.5 * not_chronic
    # latent risk drives both failing marks and dropping out
    corr = con.execute(
        "SELECT corr(latent_risk, (outcome <> 'graduated')::INT) FROM persons "
        "WHERE outcome IN ('graduated', 'dropout', 'no_diploma')"
    ).fetchone()
    assert corr is not None and corr[0] > 0.2


def test_some_programs_have_zero_planted_effect() -> None:
    effects = [(p.effect_attendance_pp, p.effect_marks) for p in PROGRAMS]
    assert (0.0, 0.0) in effects
    assert any(a > 0 for a, _ in effects) and any(m > 0 for _, m in effects)


def test_riskier_students_join_targeted_programs(
    con: duckdb.DuckDBPyConnection,
) -> None:
    row = con.execute(
        """
        SELECT avg(p.latent_risk) FILTER (WHERE pp.program_id = 'PRG-MENTOR'),
               avg(p.latent_risk)
        FROM persons p LEFT JOIN program_participation pp USING (person_key)
        """
    ).fetchone()
    assert row is not None and row[0] > row[1] + 0.3
