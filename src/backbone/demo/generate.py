"""``backbone demo generate``: write what every partner of the community would send.

Layout of the output folder::

    community.json          the steward's directory: partners, schools, programs,
                            initiatives, institutions, school years, calendars
    partners/<partner_id>/  each partner's files, in its own dialect, by school year
    truth/                  planted truth; the warehouse never reads it
    README.md               what is where
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from backbone.demo.calendar import INSTRUCTIONAL_DAYS, SCHOOL_YEAR_START_MONTH
from backbone.demo.community import (
    CBOS,
    COLLEGE_AGENCY,
    DISTRICTS,
    FUNDERS,
    INITIATIVE_TARGETS,
    INSTITUTIONS,
    PROGRAMS,
    schools,
)
from backbone.demo.exports import build_exports
from backbone.demo.governance import write_governance_files
from backbone.demo.mappings import write_mappings
from backbone.demo.planted import plant_errors
from backbone.demo.records import build_partner_records
from backbone.demo.simulate import simulate
from backbone.demo.writers import write_agency, write_cbo, write_district
from backbone.engines import (
    Connection,
    create_table_as,
    ident,
    registered,
    scratch,
)
from backbone.engines.duckdb import set_option
from backbone.engines.sql import literal
from backbone.errors import UserError
from backbone.model.calendar import school_year_bounds, school_year_label

__all__ = ["GenerateSummary", "expected_steps", "generate"]

BACKBONE_PARTNER = ("b00-backbone", "Community Backbone Collaborative")


@dataclass(frozen=True)
class GenerateSummary:
    out: Path
    students: int
    school_years: list[int]
    files: int
    bytes: int
    rows: dict[str, int]


def _label(school_year: int) -> str:
    return school_year_label(school_year, SCHOOL_YEAR_START_MONTH)


def _bounds(school_year: int) -> tuple[date, date]:
    return school_year_bounds(school_year, SCHOOL_YEAR_START_MONTH)


def expected_steps(years: int) -> int:
    """How many progress messages :func:`generate` sends (for a progress bar)."""
    # students, each year, attendance .. college (6), names, exports,
    # each district and its years, each CBO, the agency, the truth
    return 1 + years + 6 + 2 + len(DISTRICTS) * (1 + years) + len(CBOS) + 3


def _prepare(out: Path, *, replace: bool) -> None:
    """Use an empty folder, or replace an earlier demo community when asked to;
    never anything else."""
    if out.exists() and any(out.iterdir()):
        if not (out / "community.json").is_file():
            raise UserError(
                f"{out} exists and is not an earlier demo community; choose a new or "
                "empty folder so nothing there is overwritten."
            )
        if not replace:
            raise UserError(
                f"{out} holds an earlier demo community; pass --force to replace it, "
                "or choose a new or empty folder."
            )
        for child in ("partners", "truth", "agreements", "requests", "mappings"):
            shutil.rmtree(out / child, ignore_errors=True)
        for child in ("community.json", "README.md"):
            (out / child).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


# the largest community generated on purpose (bench/generate.py goes to 1M); beyond
# it a typo would fill the disk
MAX_STUDENTS = 5_000_000


def generate(
    out: Path | str,
    *,
    students: int = 12_000,
    years: int = 6,
    seed: int = 42,
    last_year: int = 2026,
    threads: int = 2,
    memory_limit: str = "1500MB",
    progress: Callable[[str], None] | None = None,
    replace: bool = False,
) -> GenerateSummary:
    """Simulate the community and write every partner's files plus the planted truth
    (replacing an earlier demo community in ``out`` only when ``replace``)."""
    if not 100 <= students <= MAX_STUDENTS:
        raise UserError(f"Generate from 100 to {MAX_STUDENTS:,} students (--students).")
    if not 2 <= years <= 20:
        raise UserError("Generate between 2 and 20 school years (--years).")
    if not 0 <= seed < 2**32:
        raise UserError(f"Give a seed from 0 to {2**32 - 1:,} (--seed).")
    if not 2000 <= last_year <= 2100:
        raise UserError("Give a last school year from 2000 to 2100 (--last-year).")
    say = progress or (lambda _msg: None)
    out = Path(out)
    _prepare(out, replace=replace)
    sim = simulate(students, years, seed, last_year, progress=say)
    rng = np.random.default_rng([seed, 1])

    # A scratch database on disk with a memory cap keeps peak memory bounded: the
    # exports are several times the size of the simulation.
    workdir = tempfile.TemporaryDirectory(prefix="backbone-demo-")
    con = scratch(Path(workdir.name) / "scratch.duckdb")
    set_option(con, "threads", threads)
    set_option(con, "memory_limit", memory_limit)
    set_option(con, "temp_directory", str(Path(workdir.name) / "spill"))
    set_option(con, "preserve_insertion_order", True)
    for name in list(sim.tables):
        source = f"{name}_arrow"
        with registered(con, **{source: sim.tables[name]}):
            create_table_as(con, ident(name), f"SELECT * FROM {ident(source)}")
        del sim.tables[name]  # free the Arrow copy as soon as DuckDB has it
    cal = sim.calendars
    n_d, n_y, _ = cal.shape
    calendar = pa.table(
        {
            "district": np.repeat(np.arange(n_d), n_y * INSTRUCTIONAL_DAYS),
            "year_index": np.tile(np.repeat(np.arange(n_y), INSTRUCTIONAL_DAYS), n_d),
            "day_index": np.tile(np.arange(INSTRUCTIONAL_DAYS), n_d * n_y),
            "d": cal.reshape(-1),
        }
    )
    with registered(con, calendar_arrow=calendar):
        con.execute("CREATE TABLE calendar AS SELECT * FROM calendar_arrow")
    say("spelling names as each partner's system does")
    build_partner_records(con, rng)
    say("building each partner's export")
    build_exports(con)

    partners_dir = out / "partners"
    files: list[Path] = []
    for d in DISTRICTS:
        say(f"writing {d.name} ({d.file_format})")
        files += write_district(con, d, sim.years, partners_dir / d.partner_id, say)
    for c in CBOS:
        say(f"writing {c.name} ({c.file_format})")
        files += write_cbo(con, c.partner_id, sim.years, partners_dir / c.partner_id)
    say("writing the college agency's files")
    files += write_agency(con, partners_dir / COLLEGE_AGENCY[0])

    say("planting the usual mistakes")
    plant_errors(out, sim.years)
    files += write_governance_files(out, last_year)
    files += write_mappings(out)
    say("writing the planted truth")
    _write_truth(con, out / "truth")
    _write_directory(sim.years, sim.calendars, out / "community.json")
    (out / "README.md").write_text(_readme(students, sim.years, seed), encoding="utf-8")

    rows = {
        name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
        for name in (
            "persons",
            "partner_record",
            "x_attendance",
            "x_courses",
            "x_discipline",
            "x_roster",
            "x_sessions",
            "x_college_terms",
        )
    }
    con.close()
    workdir.cleanup()
    return GenerateSummary(
        out=out,
        students=students,
        school_years=sim.years,
        files=len(files),
        bytes=sum(p.stat().st_size for p in files),
        rows=rows,
    )


def _write_truth(con: Connection, truth: Path) -> None:
    truth.mkdir(parents=True, exist_ok=True)
    queries = {
        "persons": "SELECT * FROM persons ORDER BY person_key",
        "records": (
            "SELECT partner_id, local_id, person_key FROM partner_record "
            "ORDER BY partner_id, local_id"
        ),
        "student_years": (
            "SELECT s.segment, s.person_key, dd.partner_id, pr.local_id, s.school_year, "
            "s.grade, s.entry_date, s.exit_date, s.exit_type, s.risk AS yearly_risk, "
            "s.absence_rate_planted FROM segments s JOIN district_dim dd USING (district) "
            "JOIN partner_record pr ON pr.partner_id = dd.partner_id "
            "AND pr.person_key = s.person_key ORDER BY segment"
        ),
        "program_participation": "SELECT * FROM participation ORDER BY participation",
        "college": "SELECT * FROM college_students ORDER BY person_key",
    }
    for name, sql in queries.items():
        target = literal(str(truth / f"{name}.parquet"))
        con.execute(f"COPY ({sql}) TO {target} (FORMAT parquet)")
    lines = [
        "program_id,partner_id,effect_attendance_pp,effect_marks,full_dose_sessions"
    ]
    for p in PROGRAMS:
        lines.append(
            f"{p.program_id},{p.partner_id},{p.effect_attendance_pp},{p.effect_marks},"
            f"{round(0.6 * p.sessions)}"
        )
    (truth / "programs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (truth / "README.md").write_text(TRUTH_README, encoding="utf-8")


def _write_directory(years: list[int], calendars: np.ndarray, path: Path) -> None:
    school_rows = schools()
    partners: list[dict[str, object]] = [
        {
            "partner_id": BACKBONE_PARTNER[0],
            "name": BACKBONE_PARTNER[1],
            "kind": "backbone",
        }
    ]
    partners += [
        {
            "partner_id": d.partner_id,
            "name": d.name,
            "kind": "school_district",
            "ed_org_id": d.ed_org_id,
        }
        for d in DISTRICTS
    ]
    partners += [
        {"partner_id": c.partner_id, "name": c.name, "kind": "community_organization"}
        for c in CBOS
    ]
    partners.append(
        {
            "partner_id": COLLEGE_AGENCY[0],
            "name": COLLEGE_AGENCY[1],
            "kind": "higher_education_agency",
        }
    )
    partners += [{"partner_id": f[0], "name": f[1], "kind": "funder"} for f in FUNDERS]
    for p in partners:
        domain = f"{p['partner_id']}.example.org"
        p["contacts"] = [
            {
                "name": f"Data Lead, {p['name']}",
                "role": "data lead",
                "email": f"data@{domain}",
            },
            {
                "name": f"Director, {p['name']}",
                "role": "director",
                "email": f"director@{domain}",
            },
        ]
    calendars_out = []
    for di, d in enumerate(DISTRICTS):
        ids = [s["school_id"] for s in school_rows if s["partner_id"] == d.partner_id]
        for yi, t in enumerate(years):
            calendars_out.append(
                {
                    "school_year": t,
                    "school_ids": ids,
                    "instructional_dates": [str(x) for x in calendars[di, yi]],
                }
            )
    doc = {
        "partners": partners,
        "schools": [{k: v for k, v in s.items() if k != "key"} for s in school_rows],
        "programs": [
            {
                "program_id": p.program_id,
                "partner_id": p.partner_id,
                "program_name": p.name,
                "program_type": p.program_type,
            }
            for p in PROGRAMS
        ],
        "initiatives": [
            {
                "initiative_id": iid,
                "funder_partner_id": fid,
                "name": name,
                "begin_date": _bounds(years[0])[0].isoformat(),
                "end_date": _bounds(years[-1])[1].isoformat(),
                "program_ids": list(progs),
                "target_outcomes": list(INITIATIVE_TARGETS[iid][0]),
                "min_sessions": INITIATIVE_TARGETS[iid][1],
                "min_hours": 0.0,
            }
            for fid, _, inits in FUNDERS
            for iid, name, progs in inits
        ],
        "institutions": [
            {
                "institution_id": i[0],
                "name": i[1],
                "level": i[2],
                "control": i[3],
                "state": "MN",
            }
            for i in INSTITUTIONS
        ],
        "school_years": [
            {
                "school_year": t,
                "description": _label(t),
                "begin_date": _bounds(t)[0].isoformat(),
                "end_date": _bounds(t)[1].isoformat(),
            }
            for t in years
        ],
        "calendars": calendars_out,
    }
    path.write_text(
        json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


TRUTH_README = """# Planted truth

The warehouse never reads this folder. Later stages are validated against it.

- `records.parquet`: the person (`person_key`) behind every partner record
  (`partner_id`, `local_id`): linkage truth covering every file in `partners/`.
- `persons.parquet`: each person's true identity, demographics, latent risk
  (`latent_risk`), and outcome (`graduated`, `dropout`, `no_diploma`, `moved_away`,
  `enrolled`) with the school year it happened (`exit_year`).
- `student_years.parquet`: each enrolment spell with the year's risk and planted
  absence rate.
- `programs.csv`: each program's true effect on attendance rate (percentage points)
  and on every course mark (0-100 points) for a participant attending at least
  `full_dose_sessions` sessions; lower attendance scales the effect down in proportion.
  Some programs have zero effect.
- `program_participation.parquet`: every participation with its realized effects
  (`effect_attendance_pp`, `effect_marks`), so the true average effect of any group
  of participants can be computed.
- `college.parquet`: for each graduate, whether and where they enrolled, remediation,
  persistence (`years_enrolled`) and degree.
"""


def _readme(students: int, years: list[int], seed: int) -> str:
    rows = "\n".join(
        f"| {d.partner_id} | {d.name} | {d.file_format} | {d.encoding} | "
        f"{d.delimiter!r} | {d.date_format} | {d.attendance} |"
        for d in DISTRICTS
    )
    cbos = "\n".join(f"| {c.partner_id} | {c.name} | {c.file_format} |" for c in CBOS)
    return f"""# Demo community

{students} students, school years {_label(years[0])} to {_label(years[-1])}, \
seed {seed}. Generated by `backbone demo generate`;
the same seed gives byte-identical files.

## School districts (`partners/<id>/<school year>/`)

| partner | name | format | encoding | delimiter | dates | attendance |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

## Community organizations (`partners/<id>/`)

| partner | name | format |
| --- | --- | --- |
{cbos}

## College agency

`partners/{COLLEGE_AGENCY[0]}/<academic year>/`: students, terms and events (CSV) for
graduates who enrolled in college.

`community.json` is the steward's directory of partners, schools, programs, funders'
initiatives, institutions and calendars. `truth/` holds the planted truth.
"""
