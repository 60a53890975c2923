"""`backbone partner import`: a whole partnership registered from one directory
file, checked whole before anything is written (figures worked out by hand)."""

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from backbone.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "250"}

DIRECTORY = """\
partners:
  - {partner_id: b0-backbone, name: Eastside Backbone, kind: backbone}
  - partner_id: d1-east
    name: East District
    kind: school_district
    contacts: [{name: Ana Ruiz, email: ana@east.org, role: data manager}]
  - {partner_id: f1-fund, name: East Fund, kind: funder}
schools:
  - {partner_id: d1-east, local_school_code: "63", name: East High, school_level: High}
  - {partner_id: d1-east, local_school_code: "12", name: East Middle}
programs:
  - {program_id: P-READ, partner_id: d1-east, program_name: Reading Buddies}
initiatives:
  - {initiative_id: I-READ, funder_partner_id: f1-fund, name: Read On,
     program_ids: [P-READ], min_sessions: 3}
school_years:
  - {school_year: 1988, begin_date: 1987-07-01, end_date: 1988-06-30}
calendars:
  # 17 weekdays from Tue 8 to Wed 30 September 1987, less a Friday holiday and a
  # Thursday-Friday break: 14 days, at each of two schools
  - school_year: 1988
    school_ids: [d1-east/63, d1-east/12]
    first_day: 1987-09-08
    last_day: 1987-09-30
    holidays: [1987-09-18, "1987-09-24..1987-09-25"]
"""


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=ENV)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    path = tmp_path / "wh"
    assert invoke("init", str(path))[0] == 0
    return path


def _rows(wh: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(wh / "backbone.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_partnership_folder_is_registered_whole_and_again_without_doubling(
    wh: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "partnership"
    folder.mkdir()
    (folder / "partnership.yaml").write_text(DIRECTORY)
    code, out = invoke("partner", "import", str(folder), "-w", str(wh))
    assert code == 0, out
    assert "3 partners, 2 schools, 1 programs, 1 initiatives" in " ".join(out.split())
    assert _rows(
        wh,
        "SELECT school_id, count(*), min(date), max(date) FROM ref.calendar_date "
        "GROUP BY 1 ORDER BY 1",
    ) == [
        (
            "d1-east/12",
            14,
            *_rows(wh, "SELECT DATE '1987-09-08', DATE '1987-09-30'")[0],
        ),
        (
            "d1-east/63",
            14,
            *_rows(wh, "SELECT DATE '1987-09-08', DATE '1987-09-30'")[0],
        ),
    ]
    assert _rows(wh, "SELECT school_year, description FROM ref.school_year") == [
        (1988, "1987-88")
    ]
    assert _rows(wh, "SELECT * FROM ref.initiative_program") == [("I-READ", "P-READ")]
    # the directory grows a school; imported again, only the new one is added
    grown = DIRECTORY.replace(
        "programs:",
        '  - {partner_id: d1-east, local_school_code: "70", name: East Academy}\n'
        "programs:",
    )
    (folder / "partnership.yaml").write_text(grown)
    code, out = invoke("partner", "import", str(folder), "-w", str(wh))
    assert code == 0, out
    said = " ".join(out.split())
    assert "0 partners, 1 schools" in said and "8 already registered" in said
    assert _rows(wh, "SELECT count(*) FROM ref.calendar_date") == [(28,)]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            ("kind: funder", "kind: foundation"),
            "partners[2].kind: kind 'foundation' is not known",
        ),
        (
            (
                'partner_id: d1-east, local_school_code: "12"',
                'partner_id: d9-west, local_school_code: "12"',
            ),
            "schools[1].partner_id: no partner 'd9-west'",
        ),
        (
            ("program_ids: [P-READ]", "program_ids: [P-MATH]"),
            "initiatives[0].program_ids: no program 'P-MATH'",
        ),
        (
            ("first_day: 1987-09-08", "first_day: 1987-10-08"),
            "calendars[0]: Value error, last_day is before first_day",
        ),
        (
            ('"1987-09-24..1987-09-25"', '"1987-09-24..soon"'),
            "is not a date or a range",
        ),
        (
            ("school_year: 1988\n    school_ids", "school_year: 1989\n    school_ids"),
            "calendars[0].school_year: school year 1989 is not registered",
        ),
    ],
)
def test_a_wrong_entry_names_file_and_field_and_registers_nothing(
    wh: Path, tmp_path: Path, change: tuple[str, str], said: str
) -> None:
    old, new = change
    assert old in DIRECTORY
    path = tmp_path / "partnership.yaml"
    path.write_text(DIRECTORY.replace(old, new))
    code, out = invoke("partner", "import", str(path), "-w", str(wh))
    text = " ".join(out.split())
    assert code == 1
    assert "partnership.yaml: " in text and said.replace("Value error, ", "") in text
    assert "Nothing was registered" in text
    assert _rows(wh, "SELECT count(*) FROM ref.partner") == [(0,)]


def test_an_initiative_targeting_an_unknown_outcome_is_refused_with_the_codes(
    tmp_path: Path,
) -> None:
    from backbone.errors import InputFileError
    from backbone.partners.directory import read_directory

    path = tmp_path / "partnership.yaml"
    path.write_text(
        "partners:\n  - {partner_id: f1, name: Fund, kind: funder}\n"
        "initiatives:\n  - {initiative_id: I1, funder_partner_id: f1, name: One,\n"
        "     target_outcomes: [attendance_rate, happiness]}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        InputFileError,
        match=r"initiatives\[0\]\.target_outcomes: unknown outcome 'happiness'; use one of attendance_rate",
    ):
        read_directory(path)


def test_a_program_type_or_grade_that_is_not_canonical_is_refused(
    tmp_path: Path,
) -> None:
    from backbone.errors import InputFileError
    from backbone.partners.directory import read_directory

    path = tmp_path / "partnership.yaml"
    path.write_text(
        "programs:\n  - {program_id: P1, partner_id: c1, program_name: One, "
        "program_type: Academic}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        InputFileError,
        match=r"programs\[0\]\.program_type: 'Academic' is not a ProgramTypeDescriptor",
    ):
        read_directory(path)
