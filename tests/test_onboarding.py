"""Small partnerships of unusual shapes, set up only through the command line, as a
backbone analyst would with members' own exports: no Python, no traceback, figures
worked out by hand, and the reason printed for whatever could not be computed."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from backbone.cli import app
from backbone.partners.agreements.document import AgreementDocument, LegalBasis
from backbone.partners.agreements.lint import lint_document
from backbone.partners.agreements.templates import agreement_template

runner = CliRunner()
WIDE = {"COLUMNS": "250"}

BASE_AGREEMENT: dict[str, Any] = {
    "agreement_id": "DSA-D1",
    "title": "District One and the Backbone",
    "tier": "dsa",
    "status": "active",
    "effective_from": "1980-07-01",
    "effective_to": "2030-06-30",
    "parties": {"provider": "d1", "recipient": "b0"},
    "legal_basis": {"basis": "ferpa_studies", "citation": "34 CFR 99.31(a)(6)"},
    "purposes": [
        {"id": "early_warning", "description": "Students at risk."},
        {"id": "shared_measurement", "description": "Community indicators."},
        {"id": "program_evaluation", "description": "Programs' outcomes."},
    ],
    "datasets": [],
    "recipients": [
        {
            "partner": "b0",
            "roles": ["steward_admin", "steward_analyst"],
            "access": "identified",
            "operations": ["row_level_view", "link", "aggregate"],
        }
    ],
    "linkage": {"allowed": True},
    "publication": {"min_cell_size": 3},
    "retention": {"destroy_after_days": 365},
    "breach": {"notify_within_hours": 72},
    "termination": {"notice_days": 90},
    "signatories": [
        {"partner": "d1", "name": "Superintendent", "signed": "1980-06-01"},
        {"partner": "b0", "name": "Director", "signed": "1980-06-02"},
    ],
}

FIELDS = {
    "partner_record": ["local_id", "first_name", "last_surname", "birth_date"],
    "enrollment": [
        "student_local_id",
        "school_id",
        "entry_date",
        "entry_grade_level",
        "school_year",
        "exit_withdraw_date",
        "exit_withdraw_type",
    ],
    "attendance_event": [
        "student_local_id",
        "school_id",
        "school_year",
        "event_date",
        "attendance_event_category",
        "event_duration",
    ],
    "program_participation": [
        "student_local_id",
        "program_id",
        "begin_date",
        "end_date",
    ],
    "student_indicator": [
        "student_local_id",
        "school_year",
        "as_of_date",
        "definition_version",
        "school_id",
        "grade_level",
        "last_enrolled_date",
        "days_enrolled",
        "days_absent",
        "suspensions",
        "sex",
        "race",
        "hispanic_latino_ethnicity",
        "economic_disadvantaged",
        "english_learner",
        "disability",
        "programs",
        "program_hours",
    ],
}

FIELDS["student_assessment"] = [
    "student_local_id",
    "assessment_identifier",
    "academic_subject",
    "administration_date",
    "school_year",
    "scale_score",
    "performance_level",
]

STUDENTS = {
    "match": "students*",
    "entity": "partner_record",
    "columns": {
        "local_id": "id",
        "first_name": "first",
        "last_surname": "last",
        "birth_date": {"column": "dob", "date_format": "%m/%d/%Y"},
    },
}
ENROLLMENTS = {
    "match": "enroll*",
    "entity": "enrollment",
    "columns": {
        "student_local_id": "id",
        "school_id": {"template": "{partner_id}/{school}"},
        "entry_date": "entry",
        "school_year": {"school_year_from": "entry"},
        "entry_grade_level": {"column": "grade", "grade_level": True},
        "exit_withdraw_date": "exit",
        "exit_withdraw_type": {"column": "why", "codes": {"T": "Transferred"}},
    },
}
ABSENCES = {
    "match": "absences*",
    "entity": "attendance_event",
    "columns": {
        "student_local_id": "id",
        "school_id": {"template": "{partner_id}/{school}"},
        "school_year": {"school_year_from": "date"},
        "event_date": "date",
        "attendance_event_category": {
            "column": "code",
            "codes": {"A": "Unexcused Absence", "E": "Excused Absence"},
        },
        "event_duration": {"constant": 1},
    },
}
PROGRAM = {
    "match": "program*",
    "entity": "program_participation",
    "columns": {
        "student_local_id": "id",
        "program_id": {"constant": "P-READ"},
        "begin_date": "start",
        "end_date": "end",
    },
}

# a study's assignment file: each student's arm, as a program of its own
ARMS = {
    "match": "arms*",
    "entity": "program_participation",
    "columns": {"student_local_id": "id", "program_id": "arm", "begin_date": "start"},
}


@dataclass
class Partnership:
    """A warehouse set up through the CLI, and the steward's sign-in."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, "-w", str(self.path)], env=self.env)
        text = " ".join(result.output.split())
        assert "Traceback" not in result.output, result.output
        assert result.exit_code == code, text
        return text

    def file(self, name: str, text: str) -> Path:
        path = self.path.parent / "files" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def submit(self, feed: str, *texts: tuple[str, str], partner: str = "d1") -> str:
        return self.run(
            "submit",
            "--partner",
            partner,
            "--feed",
            feed,
            *(str(self.file(n, t)) for n, t in texts),
        )

    def agreement(self, doc: dict[str, Any]) -> str:
        path = self.path.parent / f"{doc['agreement_id']}.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return self.run("agreement", "add", str(path))

    def feed(self, partner: str, feed: str, agreement: str, *entities: str) -> str:
        return self.run(
            "feed",
            "add",
            partner,
            feed,
            *(a for e in entities for a in ("--entity", e)),
            "--cadence",
            "yearly",
            "--agreement",
            agreement,
            "--since",
            "1980-07-01",
        )

    def mapping(self, partner: str, feed: str, sections: list[dict[str, Any]]) -> str:
        path = self.path.parent / f"{partner}-{feed}.yaml"
        doc = {"partner": partner, "feed": feed, "files": sections}
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return self.run("mapping", "add", partner, feed, str(path))


def agreement(provider: str, entities: list[str], **changes: Any) -> dict[str, Any]:
    """The district template for ``provider``, sharing ``entities`` (and the
    early-warning snapshot of them)."""
    doc = copy.deepcopy(BASE_AGREEMENT)
    doc["agreement_id"] = f"DSA-{provider.upper()}"
    doc["parties"] = {"provider": provider, "recipient": "b0"}
    doc["signatories"][0]["partner"] = provider
    doc["datasets"] = [
        {"entity": e, "fields": [{"name": f} for f in FIELDS[e]]}
        for e in [*entities, "student_indicator"]
    ]
    doc.update(changes)
    return doc


def build(
    tmp_path: Path,
    directory: str,
    *,
    entities: list[str],
    sections: list[dict[str, Any]],
    **terms: Any,
) -> Partnership:
    """init → partner import → the steward → agreement add → feed add → mapping
    add, for one district d1 whose single feed ``records`` carries ``entities``."""
    p = Partnership(tmp_path / "wh", dict(WIDE))
    assert runner.invoke(app, ["init", str(p.path)]).exit_code == 0
    (tmp_path / "partnership.yaml").write_text(directory, encoding="utf-8")
    p.run("partner", "import", str(tmp_path / "partnership.yaml"))
    p.run("user", "add", "steward", "--partner", "b0", "--role", "steward_admin")
    token = runner.invoke(app, ["user", "token", "steward", "-w", str(p.path)])
    p.env["BACKBONE_TOKEN"] = token.stdout.strip()
    p.agreement(agreement("d1", entities, **terms))
    p.feed("d1", "records", "DSA-D1", *entities)
    p.mapping("d1", "records", sections)
    return p


ONE_DISTRICT = """\
partners:
  - {partner_id: b0, name: Backbone, kind: backbone}
  - {partner_id: d1, name: District One, kind: school_district}
schools:
  - {partner_id: d1, local_school_code: "63", name: One High, school_level: High}
school_years:
  - {school_year: 2026, begin_date: 2025-07-01, end_date: 2026-06-30}
"""

FOUR_STUDENTS = (
    "id,first,last,dob\nS1,Ana,Ruiz,02/03/2010\nS2,Ben,Lee,05/06/2010\n"
    "S3,Cy,Ng,07/08/2010\nS4,Di,Oz,09/10/2010\n"
)
# school 63 as a spreadsheet writes it: 63.0
FOUR_ENROLLED = (
    "id,school,entry,grade,exit,why\nS1,63.0,2025-08-25,9.0,,\n"
    "S2,63,2025-08-25,9,,\nS3,63,2025-08-25,9,,\nS4,63,2025-08-25,9,,\n"
)


def test_a_single_district_with_no_calendar_and_no_attendance(
    tmp_path: Path,
) -> None:
    p = build(
        tmp_path,
        ONE_DISTRICT,
        entities=["partner_record", "enrollment"],
        sections=[STUDENTS, ENROLLMENTS],
    )
    said = p.submit(
        "records", ("students.csv", FOUR_STUDENTS), ("enroll.csv", FOUR_ENROLLED)
    )
    assert "enroll.csv: 4 rows read, 4 loaded, 0 quarantined" in said
    linked = p.run("link")
    assert "│ persons │ 4 │" in linked and "│ pairs scored │ 0 │" in linked
    assert "No model: the names and birth dates are all one partner's" in linked
    assert "model saved" not in linked
    assert "│ 2025-26 │ 2026-06-30 │ v1 │ 4 │" in p.run("indicators", "compute")
    card = p.run("outcomes", "scorecard", "--purpose", "shared_measurement")
    # nothing from data nobody sent: each indicator names the feed it lacks
    for line in (
        "Chronic absence: no data — no partner has sent attendance_event or "
        "attendance_period",
        "9th-grade on track: no data — no partner has sent course_transcript",
        "Four-year graduation: no data — no partner has sent graduation",
        "Kindergarten readiness: no data — no partner has sent student_assessment",
    ):
        assert line in card
    assert "Release" not in card  # no table of nothing


HISTORIC = """partners:
  - {partner_id: b0, name: Backbone, kind: backbone}
  - {partner_id: d1, name: District One, kind: school_district}
schools:
  - {partner_id: d1, local_school_code: "63", name: One High, school_level: High}
school_years:
  - {school_year: 1988, begin_date: 1987-07-01, end_date: 1988-06-30}
calendars:
  # Tue 1 to Fri 11 September 1987, less Monday 7 (Labor Day): 8 school days
  - school_year: 1988
    school_ids: [d1/63]
    first_day: 1987-09-01
    last_day: 1987-09-11
    holidays: [1987-09-07]
"""


def test_historic_school_years_with_a_calendar_made_from_first_and_last_day(
    tmp_path: Path,
) -> None:
    """1987-88, a calendar of 8 school days (1-4 and 8-11 September). S1 enrolled
    from the first, absent on the 2nd and the 10th: 2 of 8. S2 entered on
    Thursday the 3rd: 3, 4, 8, 9, 10, 11 = 6 days, never absent."""
    p = build(
        tmp_path,
        HISTORIC,
        entities=["partner_record", "enrollment", "attendance_event"],
        sections=[STUDENTS, ENROLLMENTS, ABSENCES],
    )
    p.submit(
        "records",
        (
            "students.csv",
            "id,first,last,dob\nS1,Ana,Ruiz,02/03/1973\nS2,Ben,Lee,05/06/1973\n",
        ),
        (
            "enroll.csv",
            "id,school,entry,grade,exit,why\nS1,63,1987-09-01,9,,\nS2,63,1987-09-03,9,,\n",
        ),
        (
            "absences.csv",
            "id,school,date,code\nS1,63,1987-09-02,A\nS1,63,1987-09-10,E\n",
        ),
    )
    p.run("link")
    assert "│ 1987-88 │ 1988-06-30 │ v1 │ 2 │" in p.run("indicators", "compute")
    rows = p.run(
        "rows", "student_indicator", "--purpose", "early_warning", "--limit", "10"
    )
    assert "S1" in rows and "S2" in rows
    assert rows.count("│ 8.0 │ 2.0 │") == 1 and rows.count("│ 6.0 │ 0.0 │") == 1


READ_PROGRAM = """partners:
  - {partner_id: b0, name: Backbone, kind: backbone}
  - {partner_id: d1, name: District One, kind: school_district}
  - {partner_id: f1, name: The Fund, kind: funder}
schools:
  - {partner_id: d1, local_school_code: "63", name: One High, school_level: High}
programs:
  - {program_id: P-READ, partner_id: d1, program_name: Reading Buddies}
initiatives:
  - {initiative_id: I-READ, funder_partner_id: f1, name: Read On,
     program_ids: [P-READ], target_outcomes: [attendance_rate, course_mark]}
school_years:
  - {school_year: 2026, begin_date: 2025-07-01, end_date: 2026-06-30}
"""


# twenty ninth graders of school 63, the first ten in the district's program
TWENTY_NINTH_GRADERS = (
    "id,first,last,dob\n"
    + "".join(f"S{i},Name{i},Last{i},0{1 + i % 9}/1{i % 9}/2010\n" for i in range(20)),
    "id,school,entry,grade,exit,why\n"
    + "".join(f"S{i},63,2025-08-25,9,,\n" for i in range(20)),
    "id,start,end\n" + "".join(f"S{i},2025-09-15,2026-05-30\n" for i in range(10)),
)


def test_a_district_run_program_with_no_calendar_marks_or_demographics(
    tmp_path: Path,
) -> None:
    """The district runs a reading program (10 of its 20 ninth graders). No
    calendar, no course marks, no demographics: nothing to match on and no
    outcome to measure. The evaluation says so and exits 1; it publishes no
    effect, and every participant was found (100 %, not "suppressed")."""
    p = build(
        tmp_path,
        READ_PROGRAM,
        entities=["partner_record", "enrollment", "program_participation"],
        sections=[STUDENTS, ENROLLMENTS, PROGRAM],
    )
    students, enrolled, program = TWENTY_NINTH_GRADERS
    p.submit(
        "records",
        ("students.csv", students),
        ("enroll.csv", enrolled),
        ("program.csv", program),
    )
    p.run("link")
    p.run("indicators", "compute")
    said = p.run("outcomes", "evaluate", "I-READ", code=1)
    assert (
        "10 new participants with the least dosage, 10 found in district "
        "records (match rate 100%)" in said
    )
    assert (
        "Left out: transcript — aggregate course_transcript: no partner has "
        "sent such data" in said
    )
    assert (
        "Error: no effect could be estimated — Reading Buddies (P-READ): no "
        "comparison student could be matched" in said
    )
    assert not re.search(r"\[[+-]?\d", said)  # no effect or interval printed


WITH_CLUB = """\
partners:
  - {partner_id: b0, name: Backbone, kind: backbone}
  - {partner_id: d1, name: District One, kind: school_district}
  - {partner_id: c1, name: Youth Club, kind: community_organization}
schools:
  - {partner_id: d1, local_school_code: "63", name: One High, school_level: High}
programs:
  - {program_id: P-CLUB, partner_id: c1, program_name: The Club}
school_years:
  - {school_year: 2026, begin_date: 2025-07-01, end_date: 2026-06-30}
"""


def test_a_club_whose_roster_has_no_birth_dates(tmp_path: Path) -> None:
    """Three club members known by name only, beside four students: linking runs
    (no crash on training sessions with nothing to learn), compares only the names
    both partners sent, says what it could not learn, and puts the two whose names
    agree before a reviewer: a name alone is not enough to link a child unseen."""
    p = build(
        tmp_path,
        WITH_CLUB,
        entities=["partner_record", "enrollment"],
        sections=[STUDENTS, ENROLLMENTS],
        linkage={"allowed": True, "linkable_with": ["c1"]},
    )
    club = agreement(
        "c1",
        ["partner_record", "program_participation"],
        linkage={"allowed": True, "linkable_with": ["d1"]},
    )
    p.agreement(club)
    p.feed("c1", "roster", "DSA-C1", "partner_record", "program_participation")
    member = {"local_id": "member", "first_name": "first", "last_surname": "last"}
    joined = {
        "student_local_id": "member",
        "program_id": {"constant": "P-CLUB"},
        "begin_date": "joined",
    }
    p.mapping(
        "c1",
        "roster",
        [
            {"match": "roster*", "entity": "partner_record", "columns": member},
            {"match": "roster*", "entity": "program_participation", "columns": joined},
        ],
    )
    p.submit("records", ("students.csv", FOUR_STUDENTS), ("enroll.csv", FOUR_ENROLLED))
    roster = (
        "member,first,last,joined\nM1,Ana,Ruiz,2025-10-01\nM2,Cy,Ng,2025-10-01\n"
        "M3,Zed,Who,2025-10-01\n"
    )
    said = p.submit("roster", ("roster.csv", roster), partner="c1")
    assert "program_participation: 3 in, 3 loaded, 0 quarantined" in said
    linked = p.run("link")
    # Ana Ruiz and Cy Ng are the district's S1 and S3; Zed Who is nobody's
    assert "│ partner records │ 7 │" in linked and "│ persons │ 7 │" in linked
    assert "│ linked by the model │ 0 │" in linked
    assert "│ waiting for review │ 2 │" in linked
    assert "The model had nothing to learn from in:" in linked
    assert "pairs agreeing on first name, last name" in linked
    queue = p.run("review", "list", "--format", "csv")
    assert "c1:M1" in queue and "d1:S1" in queue and "M3" not in queue


@pytest.mark.parametrize("basis", [b.value for b in LegalBasis])
def test_every_agreement_template_parses_and_has_its_bases_mandatory_terms(
    basis: str,
) -> None:
    doc = AgreementDocument.model_validate(agreement_template(LegalBasis(basis)))
    assert [f for f in lint_document(doc) if f.severity == "error"] == []


def test_starting_a_partnership_from_the_templates_as_the_readme_says(
    tmp_path: Path,
) -> None:
    """README, "Starting your own partnership": init --template, the directory
    and the agreement as written, both parties' approval, a feed, a mapping, a
    file, link and the scorecard; no Python anywhere."""
    path = tmp_path / "wh"
    p = Partnership(path, dict(WIDE))
    made = runner.invoke(app, ["init", str(path), "--template", "ferpa_studies"])
    assert made.exit_code == 0, made.output
    templates = path / "templates"
    said = p.run("partner", "import", str(templates / "partnership.yaml"))
    assert "3 partners, 1 schools" in said and "calendar dates" in said
    p.run(
        "user", "add", "steward", "--partner", "b00-backbone", "--role", "steward_admin"
    )
    token = runner.invoke(app, ["user", "token", "steward", "-w", str(path)])
    p.env["BACKBONE_TOKEN"] = token.stdout.strip()
    p.run("agreement", "add", str(templates / "DSA-ferpa_studies.yaml"))
    p.run(
        "agreement",
        "approve",
        "DSA-D01-DISTRICT",
        "--partner",
        "d01-district",
        "--title",
        "Superintendent",
    )
    assert "in force" in p.run(
        "agreement",
        "approve",
        "DSA-D01-DISTRICT",
        "--partner",
        "b00-backbone",
        "--title",
        "Director",
    )
    p.run(
        "feed",
        "add",
        "d01-district",
        "records",
        "--entity",
        "partner_record",
        "--entity",
        "enrollment",
        "--cadence",
        "yearly",
        "--agreement",
        "DSA-D01-DISTRICT",
        "--since",
        "2025-07-01",
    )
    mapping = {
        "partner": "d01-district",
        "feed": "records",
        "files": [STUDENTS, ENROLLMENTS],
    }
    (tmp_path / "records.yaml").write_text(yaml.safe_dump(mapping), "utf-8")
    p.run("mapping", "add", "d01-district", "records", str(tmp_path / "records.yaml"))
    enrolled = FOUR_ENROLLED.replace(",63.0,", ",101,").replace(",63,", ",101,")
    said = p.submit(
        "records",
        ("students.csv", FOUR_STUDENTS),
        ("enroll.csv", enrolled),
        partner="d01-district",
    )
    assert "enroll.csv: 4 rows read, 4 loaded, 0 quarantined" in said
    assert "│ persons │ 4 │" in p.run("link")
    p.run("indicators", "compute")
    card = p.run("outcomes", "scorecard", "--purpose", "shared_measurement")
    assert "Four-year graduation: no data — no partner has sent graduation" in card


RANDOMIZED = """\
partners:
  - {partner_id: b0, name: Backbone, kind: backbone}
  - {partner_id: d1, name: District One, kind: school_district}
  - {partner_id: f1, name: The Fund, kind: funder}
schools:
  - {partner_id: d1, local_school_code: "63", name: One High, school_level: High}
  - {partner_id: d1, local_school_code: "64", name: Two High, school_level: High}
programs:
  - {program_id: P-READ, partner_id: d1, program_name: Reading Buddies}
  - {program_id: P-CTRL, partner_id: d1, program_name: Reading study control arm}
  - {program_id: P-ALT, partner_id: d1, program_name: Reading study other arm}
initiatives:
  - {initiative_id: I-READ, funder_partner_id: f1, name: Read On,
     program_ids: [P-READ], target_outcomes: [attendance_rate]}
school_years:
  - {school_year: 2026, begin_date: 2025-07-01, end_date: 2026-06-30}
calendars:
  # two weeks of school: 10 days
  - school_year: 2026
    school_ids: [d1/63, d1/64]
    first_day: 2025-09-01
    last_day: 2025-09-12
"""


def test_a_program_with_random_assignment_within_schools(tmp_path: Path) -> None:
    """Ten school days. One High: assigned to the program S1, S2 (0 and 1 days
    absent: 100 %, 90 %), to control S3, S4 (2, 3: 80 %, 70 %): +20 points. Two
    High: program S5-S7 (1, 1, 2: mean 86.67 %), control S8-S10 (3, 4, 2: 70 %):
    +16.67. Within schools, each weighted by n_t·n_c/n (1 and 1.5): (20 + 1.5 ×
    16.67) / 2.5 = +18.0 points. S11, of the study's other arm (9 days absent),
    is not a comparison."""
    p = build(
        tmp_path,
        RANDOMIZED,
        entities=[
            "partner_record",
            "enrollment",
            "attendance_event",
            "program_participation",
        ],
        sections=[STUDENTS, ENROLLMENTS, ABSENCES, ARMS],
    )
    absent = {1: 0, 2: 1, 3: 2, 4: 3, 5: 1, 6: 1, 7: 2, 8: 3, 9: 4, 10: 2, 11: 9}
    school = {i: "63" if i <= 4 or i == 11 else "64" for i in absent}
    arm = {i: "P-READ" for i in (1, 2, 5, 6, 7)} | {
        i: "P-CTRL" for i in (3, 4, 8, 9, 10)
    }
    arm[11] = "P-ALT"
    days = [f"2025-09-{d:02d}" for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12)]
    students = "id,first,last,dob\n" + "".join(
        f"S{i},Name{i},Last{i},0{1 + i % 9}/1{i % 9}/2010\n" for i in absent
    )
    enrolled = "id,school,entry,grade,exit,why\n" + "".join(
        f"S{i},{school[i]},2025-09-01,9,,\n" for i in absent
    )
    absences = "id,school,date,code\n" + "".join(
        f"S{i},{school[i]},{days[k]},A\n" for i, n in absent.items() for k in range(n)
    )
    arms = "id,arm,start\n" + "".join(f"S{i},{arm[i]},2025-09-01\n" for i in absent)
    p.submit(
        "records",
        ("students.csv", students),
        ("enroll.csv", enrolled),
        ("absences.csv", absences),
        ("arms.csv", arms),
    )
    p.run("link")
    p.run("indicators", "compute")
    # without naming the control arm there is no comparison to make
    refused = p.run("outcomes", "evaluate", "I-READ", "--design", "randomized", code=1)
    assert "name the program its students are sent under, --control PROGRAM" in refused
    refused = p.run("outcomes", "evaluate", "I-READ", "--adjust", code=1)
    assert "--control and --adjust are for a randomized design" in refused
    said = p.run(
        "outcomes",
        "evaluate",
        "I-READ",
        "--design",
        "randomized",
        "--control",
        "P-CTRL",
    )
    assert "5 assigned to the control arm, 5 of them found" in said
    assert (
        "│ randomized │ Attendance rate* │ randomized, within blocks │ 18.00 │ "
        "[7.14, 28.86] │ 5 / 5 │" in said
    )
    # nothing measured before assignment (no prior year, no demographics): the
    # adjusted estimate is the plain one, and says so by its design
    adjusted = p.run(
        "outcomes", "evaluate", "I-READ", "--design", "randomized",
        "--control", "P-CTRL", "--adjust",
    )  # fmt: skip
    assert "│ randomized, within blocks │ 18.00 │ [7.14, 28.86] │" in adjusted


def test_the_directory_template_shares_only_what_ferpa_calls_directory_information() -> (
    None
):
    doc = agreement_template(LegalBasis.directory)
    shared = {d["entity"]: {f["name"] for f in d["fields"]} for d in doc["datasets"]}
    assert set(shared) == {"partner_record", "enrollment", "graduation"}
    assert "disability" not in set().union(*shared.values())
    assert "birth_date" in shared["partner_record"]  # date of birth is, 99.3


# one row per student, a reading and a math score side by side; students exempted
# from testing are listed with no scores; 9 is the district's "not reported" level
SCORES = {
    "match": "scores*",
    "entity": "student_assessment",
    "skip_when": [{"column": "status", "equals": "EXEMPT"}],
    "each": [
        {"test": "STATE-READ", "subject": "Reading", "score": "read", "level": "rl"},
        {
            "test": "STATE-MATH",
            "subject": "Mathematics",
            "score": "math",
            "level": "ml",
        },
    ],
    "columns": {
        "student_local_id": "id",
        "assessment_identifier": {"constant": "$test"},
        "academic_subject": {"constant": "$subject"},
        "administration_date": "date",
        "school_year": {"school_year_from": "date"},
        "scale_score": "$score",
        "performance_level": {
            "column": "$level",
            "codes": {"A": "Advanced", "P": "Proficient", "B": "Basic", "9": None},
        },
    },
}


def test_a_district_sending_only_test_scores_in_one_wide_file(tmp_path: Path) -> None:
    """Four students; S3 exempt (skipped, not quarantined); S2's math score is not a
    number (its math row quarantined, its reading row loaded); S4's reading level 9
    is "not reported" (stored empty, the row kept). By hand: 4 rows read, 2 loaded
    whole, 1 quarantined, 1 skipped; 6 assessment rows in, 5 loaded."""
    p = build(
        tmp_path,
        ONE_DISTRICT,
        entities=["partner_record", "student_assessment"],
        sections=[STUDENTS, SCORES],
    )
    said = p.submit(
        "records",
        ("students.csv", FOUR_STUDENTS),
        (
            "scores.csv",
            "id,date,read,rl,math,ml,status\n"
            "S1,2026-04-10,410,P,388,B,\n"
            "S2,2026-04-10,455,A,abc,P,\n"
            "S3,2026-04-10,,,,,exempt\n"
            "S4,2026-04-10,430,9.0,401,P,\n",
        ),
    )
    assert (
        "scores.csv: 4 rows read, 2 loaded, 1 quarantined, 1 skipped by the "
        "mapping's skip_when" in said
    )
    assert "student_assessment: 6 in, 5 loaded, 1 quarantined, 2 skipped" in said
    report = p.run("submissions", "show", "2")
    assert (
        "4 rows read = 2 loaded + 1 quarantined + 1 skipped (skip_when, or not refused before in a corrected quarantine) (reconciled)"
        in report
    )
    assert (
        "row 3: part 2 of 2 — scale_score (from math): 'abc' is not a number" in report
    )
    import duckdb

    with duckdb.connect(str(p.path / "backbone.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT student_local_id, assessment_identifier, academic_subject, "
            "scale_score, performance_level, school_year FROM analytic.student_assessment "
            "ORDER BY 1, 2"
        ).fetchall()
    assert rows == [
        ("S1", "STATE-MATH", "Mathematics", 388.0, "Basic", 2026),
        ("S1", "STATE-READ", "Reading", 410.0, "Proficient", 2026),
        ("S2", "STATE-READ", "Reading", 455.0, "Advanced", 2026),
        ("S4", "STATE-MATH", "Mathematics", 401.0, "Proficient", 2026),
        ("S4", "STATE-READ", "Reading", 430.0, None, 2026),
    ]


def test_a_partnership_registered_one_command_at_a_time(tmp_path: Path) -> None:
    """No directory file: partners, a school year, a school, a program, a calendar
    from a file of dates, a college and a partner's own code, each by a command;
    a rename and closings; mistakes named, nothing half-registered."""
    p = Partnership(tmp_path / "wh", dict(WIDE))
    assert runner.invoke(app, ["init", str(p.path)]).exit_code == 0
    p.run("partner", "add", "b0", "--name", "Backbone", "--kind", "backbone")
    p.run("partner", "add", "d1", "--name", "District One", "--kind", "school_district")
    p.run("user", "add", "steward", "--partner", "b0", "--role", "steward_admin")
    token = runner.invoke(app, ["user", "token", "steward", "-w", str(p.path)])
    p.env["BACKBONE_TOKEN"] = token.stdout.strip()
    p.run("school-year", "add", "2026", "--begin", "2025-07-01", "--end", "2026-06-30")
    p.run("school", "add", "d1", "63", "One High", "--level", "High")
    said = p.run("school", "add", "d1", "63", "Another", code=1)
    assert "Cannot add school d1/63: it is registered already" in said
    p.run("program", "add", "d1", "P-READ", "Reading Buddies")
    days = p.file("days.csv", "date\n2025-09-02\n2025-09-03\n2025-09-04\n")
    said = p.run("calendar", "add", "2026", "--school", "d1/63", "--file", str(days))
    assert "3 calendar dates" in said
    bad = p.file("bad-days.csv", "date\n2025-09-02\n09/03/2025\n")
    said = p.run(
        "calendar", "add", "2026", "--school", "d1/63", "--file", str(bad), code=1
    )
    assert "bad-days.csv, row 3: '09/03/2025' is not a date like 2025-09-02" in said
    said = p.run(
        "calendar", "add", "2027", "--school", "d1/63",
        "--first-day", "2026-09-01", "--last-day", "2026-09-30", code=1,
    )  # fmt: skip
    assert "school year 2027 is not registered" in said
    said = p.run(
        "calendar", "add", "2026", "--school", "d1/63", "--first-day", "2025-09-01",
        "--last-day", "2025-09-05", "--holiday", "2025-09-01",
    )  # fmt: skip
    assert "1 calendar dates" in said  # Mon 1 off, 2-4 known already, Fri 5 new
    p.run("institution", "add", "100", "State University", "--control", "public")
    said = p.run("descriptor", "map", "d1", "SexDescriptor", "F", "Femal", code=1)
    assert "'Femal' is not a SexDescriptor value; use one of" in said
    p.run("descriptor", "map", "d1", "SexDescriptor", "F", "Female")
    p.run("school", "rename", "d1/63", "One High School")
    p.run("school", "close", "d1/63", "--on", "2026-06-30")
    p.run("program", "close", "P-READ", "--on", "2025-12-31")
    said = p.run("program", "close", "P-WRITE", "--on", "2025-12-31", code=1)
    assert "No program 'P-WRITE'" in said
    shown = p.run("partner", "show", "d1")
    assert "One High School [d1/63] (closed after 2026-06-30)" in shown
    assert "program: Reading Buddies [P-READ] (closed after 2025-12-31)" in shown
    # a participation that begins after the program closed is quarantined
    p.agreement(agreement("d1", ["partner_record", "program_participation"]))
    p.feed("d1", "records", "DSA-D1", "partner_record", "program_participation")
    p.mapping("d1", "records", [STUDENTS, PROGRAM])
    said = p.submit(
        "records",
        ("students.csv", FOUR_STUDENTS),
        ("program.csv", "id,start,end\nS1,2025-09-15,2025-12-01\nS2,2026-01-10,\n"),
    )
    assert "program.csv: 2 rows read, 1 loaded, 1 quarantined" in said
    assert "the program had closed before this begin date" in p.run(
        "submissions", "show", "2"
    )
    import duckdb

    with duckdb.connect(str(p.path / "backbone.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM ref.calendar_date WHERE school_id = 'd1/63'"
        ).fetchall() == [(4,)]
        assert con.execute("SELECT * FROM ref.descriptor_map").fetchall() == [
            ("d1", "SexDescriptor", "F", "Female")
        ]
    # a steward's correction by command stands when the directory is imported again
    p.run("descriptor", "map", "d1", "SexDescriptor", "F", "Male")
    directory = tmp_path / "again.yaml"
    directory.write_text(
        "descriptor_maps:\n  - {partner_id: d1, descriptor_name: SexDescriptor, "
        "local_code_value: F, code_value: Female}\n",
        encoding="utf-8",
    )
    assert "1 already registered" in p.run("partner", "import", str(directory))
    with duckdb.connect(str(p.path / "backbone.duckdb"), read_only=True) as con:
        assert con.execute("SELECT code_value FROM ref.descriptor_map").fetchall() == [
            ("Male",)
        ]


def test_test_scores_under_another_subject_are_named_not_silently_dropped(
    tmp_path: Path,
) -> None:
    """The initiative targets the ELA and math scores; the district's tests are
    labelled Writing and Science (valid subjects, but neither). The evaluation names
    both outcomes as not measured, with the labels it found and what it reads."""
    directory = READ_PROGRAM.replace(
        "target_outcomes: [attendance_rate, course_mark]",
        "target_outcomes: [ela_score, math_score]",
    )
    tests = {
        "match": "tests*",
        "entity": "student_assessment",
        "columns": {
            "student_local_id": "id",
            "assessment_identifier": "test",
            "academic_subject": "subject",
            "administration_date": "date",
            "school_year": {"school_year_from": "date"},
            "scale_score": "score",
        },
    }
    p = build(
        tmp_path,
        directory,
        entities=[
            "partner_record",
            "enrollment",
            "program_participation",
            "student_assessment",
        ],
        sections=[STUDENTS, ENROLLMENTS, PROGRAM, tests],
    )
    students, enrolled, program = TWENTY_NINTH_GRADERS
    scores = "id,test,subject,date,score\n" + "".join(
        f"S{i},T{k},{subject},2026-04-1{k},{400 + i}\n"
        for i in range(20)
        for k, subject in enumerate(("Writing", "Science"))
    )
    said = p.submit(
        "records",
        ("students.csv", students),
        ("enroll.csv", enrolled),
        ("program.csv", program),
        ("tests.csv", scores),
    )
    assert "tests.csv: 40 rows read, 40 loaded" in said
    p.run("link")
    p.run("indicators", "compute")
    said = p.run("outcomes", "evaluate", "I-READ", code=1)
    for label, wanted in (
        ("ELA (or reading) test score", "'English Language Arts' or 'Reading'"),
        ("Math test score", "'Mathematics'"),
    ):
        assert (
            f"Not measured: {label} — the assessments sent are labelled Science, "
            f"Writing; it is read from academic_subject {wanted} (map the partner's "
            "label to one in the feed's mapping)" in said
        ), said


def test_a_composite_outcome_of_reading_and_math_in_a_randomized_study(
    tmp_path: Path,
) -> None:
    """One school; program S1-S3, control S4-S6; scores (reading/math) 410/390,
    420/400, 430/410 against 380/380, 400/390, 390/370. By hand: reading 420 - 390
    = +30.00, math 400 - 380 = +20.00, and their mean per student (400, 410, 420
    against 380, 395, 380) 410 - 385 = +25.00."""
    six = "id,first,last,dob\n" + "".join(
        f"S{i},Name{i},Last{i},0{i}/1{i}/2010\n" for i in range(1, 7)
    )
    enrolled = "id,school,entry,grade,exit,why\n" + "".join(
        f"S{i},63,2025-08-25,9,,\n" for i in range(1, 7)
    )
    arms = "id,arm,start\n" + "".join(
        f"S{i},{'P-READ' if i <= 3 else 'P-CTRL'},2025-09-01\n" for i in range(1, 7)
    )
    marks = ["410,390", "420,400", "430,410", "380,380", "400,390", "390,370"]
    scores_file = "id,date,read,rl,math,ml,status\n" + "".join(
        f"S{i},2026-04-10,{m.split(',')[0]},P,{m.split(',')[1]},P,\n"
        for i, m in enumerate(marks, start=1)
    )
    directory = RANDOMIZED.replace(
        "target_outcomes: [attendance_rate]", "target_outcomes: []"
    )
    scores = dict(SCORES)
    scores.pop("skip_when")
    p = build(
        tmp_path,
        directory,
        entities=[
            "partner_record",
            "enrollment",
            "program_participation",
            "student_assessment",
        ],
        sections=[STUDENTS, ENROLLMENTS, ARMS, scores],
    )
    p.submit(
        "records",
        ("students.csv", six),
        ("enroll.csv", enrolled),
        ("arms.csv", arms),
        ("scores.csv", scores_file),
    )
    p.run("link")
    p.run("indicators", "compute")
    initiative = {
        "initiative_id": "I-READ",
        "funder": "f1",
        "name": "Read On",
        "programs": ["P-READ"],
        "target_outcomes": ["reading_math"],
        "composite_outcomes": [
            {
                "code": "reading_math",
                "label": "Reading and math (mean)",
                "of": ["ela_score", "math_score"],
            }
        ],
    }
    path = tmp_path / "initiative.yaml"
    path.write_text(yaml.safe_dump(initiative), encoding="utf-8")
    p.run("outcomes", "initiative", "set", str(path))
    said = p.run(
        "outcomes", "evaluate", "I-READ", "--design", "randomized", "--control", "P-CTRL"
    )  # fmt: skip
    for label, effect in (
        ("Reading and math (mean)*", "25.00"),
        ("ELA (or reading) test score", "30.00"),
        ("Math test score", "20.00"),
    ):
        assert re.search(
            rf"│ randomized │ {re.escape(label)} +│ randomized, within blocks +│ "
            rf"{effect} │",
            said,
        ), said
    # scores and attendance are not one kind: refused, with what to do
    initiative["composite_outcomes"][0]["of"] = ["ela_score", "attendance_rate"]
    path.write_text(yaml.safe_dump(initiative), encoding="utf-8")
    said = p.run("outcomes", "initiative", "set", str(path), code=1)
    assert "combine scores of one kind" in said


def test_an_evaluation_only_agreement_is_enough_for_the_evaluation(
    tmp_path: Path,
) -> None:
    """The district shares its records for program evaluation only: no early
    warning. The indicators are computed under that purpose (the default purpose is
    refused with what to do), and the evaluation runs and says what it lacks."""
    p = build(
        tmp_path,
        READ_PROGRAM,
        entities=["partner_record", "enrollment", "program_participation"],
        sections=[STUDENTS, ENROLLMENTS, PROGRAM],
        purposes=[{"id": "program_evaluation", "description": "Programs' outcomes."}],
    )
    students, enrolled, program = TWENTY_NINTH_GRADERS
    p.submit(
        "records",
        ("students.csv", students),
        ("enroll.csv", enrolled),
        ("program.csv", program),
    )
    p.run("link")
    refused = p.run("indicators", "compute", code=1)
    assert "purpose 'early_warning' is not permitted" in refused
    assert "--purpose program_evaluation for an evaluation-only agreement" in refused
    computed = p.run("indicators", "compute", "--purpose", "program_evaluation")
    assert "│ 2025-26 │ 2026-06-30 │ v1 │ 20 │" in computed
    said = p.run("outcomes", "evaluate", "I-READ", code=1)
    assert "10 found in district records (match rate 100%)" in said
    assert "Not measured: Attendance rate — no partner sends the data" in said
    assert "Not measured: Mean course mark — no partner sends the data" in said


def test_a_roster_with_birth_year_and_quarter_only(tmp_path: Path) -> None:
    """A partner that coarsens birth dates to year and quarter: both are stored, a
    quarter 5 is quarantined with the reason."""
    fields = [*FIELDS["partner_record"], "birth_year", "birth_quarter"]
    p = build(
        tmp_path,
        ONE_DISTRICT,
        entities=["partner_record"],
        sections=[
            {
                "match": "students*",
                "entity": "partner_record",
                "columns": {
                    "local_id": "id",
                    "first_name": "first",
                    "last_surname": "last",
                    "birth_year": "yob",
                    "birth_quarter": "qob",
                },
            }
        ],
        datasets=[
            {"entity": "partner_record", "fields": [{"name": f} for f in fields]}
        ],
    )
    said = p.submit(
        "records",
        (
            "students.csv",
            "id,first,last,yob,qob\nS1,Ana,Ruiz,2010,1\nS2,Ben,Lee,2010,5\n",
        ),
    )
    assert "students.csv: 2 rows read, 1 loaded, 1 quarantined" in said
    assert "birth_quarter: 5 — birth quarter must be 1 to 4" in p.run(
        "submissions", "show", "1"
    )
    import duckdb

    with duckdb.connect(str(p.path / "backbone.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT local_id, birth_date, birth_year, birth_quarter "
            "FROM identity.partner_record"
        ).fetchall() == [("S1", None, 2010, 1)]
