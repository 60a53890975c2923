"""Planted mistakes: the bad rows every real feed has, with the reasons they must be
quarantined for, recorded in ``truth/planted_errors.csv``.

Rows are appended to the last school year's text files (where a clerk's mistakes live:
a typed date that does not exist, an unknown code, a row pasted twice, attendance for
a student never enrolled, an exit before the entry, a mark of 150, a missing id) and
one district's first roster carries an undeclared SSN column, which must be refused
and never stored.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

from backbone.demo.calendar import SCHOOL_YEAR_START_MONTH
from backbone.demo.community import DISTRICTS, District
from backbone.demo.writers import column_name
from backbone.model.calendar import school_year_label

__all__ = ["plant_errors"]

HOSTILE_NAME = '=HYPERLINK("http://example.invalid/x","Click me")'


def _read(path: Path, d: District) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode(d.encoding)
    rows = list(csv.reader(io.StringIO(text), delimiter=d.delimiter))
    return rows[0], rows[1:]


def _append(path: Path, d: District, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=d.delimiter, lineterminator="\n").writerows(rows)
    encoding = "utf-8" if d.encoding == "utf-8-sig" else d.encoding
    with path.open("ab") as f:
        f.write(buffer.getvalue().encode(encoding))


def _fmt(d: District, day: date | str) -> str:
    if isinstance(day, str):
        return day
    return day.strftime(d.date_format)


def _text_district(
    d: District, folder: Path, out: Path, record: list[list[str]]
) -> None:
    ext = {",": "csv", ";": "csv", "|": "txt", "\t": "tsv"}[d.delimiter]

    def col(name: str) -> str:
        return column_name(d, name)

    def plant(stem: str, entity: str, rows: list[tuple[list[str], str]]) -> None:
        path = folder / f"{stem}.{ext}"
        _, data = _read(path, d)
        start = len(data) + 2  # the header is row 1
        _append(path, d, [r for r, _ in rows])
        for i, (_, rule) in enumerate(rows):
            record.append(
                [d.partner_id, str(path.relative_to(out)), str(start + i), entity, rule]
            )

    if d.attendance == "daily":
        header, data = _read(folder / f"attendance.{ext}", d)
        i_date, i_code, i_id = (
            header.index(col("date")),
            header.index(col("code")),
            header.index(col("local_id")),
        )
        bad_date = list(data[0])
        bad_date[i_date] = {
            "%Y-%m-%d": "2026-02-30",
            "%d.%m.%Y": "30.02.2026",
            "%m/%d/%Y": "02/30/2026",
        }[d.date_format]
        bad_code = list(data[1])
        bad_code[i_code] = "ZZ"
        ghost = list(data[3])
        ghost[i_id] = "X0000000"
        plant(
            "attendance",
            "attendance_event",
            [
                (bad_date, "invalid_date"),
                (bad_code, "unknown_code"),
                (list(data[2]), "duplicate_in_file"),
                (ghost, "unknown_enrollment"),
            ],
        )
    else:
        header, data = _read(folder / f"attendance_terms.{ext}", d)
        bad = list(data[0])
        bad[header.index(col("days_present"))] = str(
            int(float(bad[header.index(col("days_enrolled"))])) + 7
        )
        plant("attendance_terms", "attendance_period", [(bad, "out_of_range")])
    header, data = _read(folder / f"enrollments.{ext}", d)
    row = list(data[0])
    entry = datetime.strptime(
        row[header.index(col("entry_date"))], d.date_format
    ).date()
    row[header.index(col("exit_date"))] = _fmt(d, entry - timedelta(days=10))
    row[header.index(col("exit_code"))] = d.codes["ExitWithdrawTypeDescriptor"][
        "Transferred"
    ]
    plant("enrollments", "enrollment", [(row, "date_order")])
    header, data = _read(folder / f"courses.{ext}", d)
    row = list(data[0])
    row[header.index(col("mark"))] = "150"
    plant("courses", "course_transcript", [(row, "out_of_range")])
    header, data = _read(folder / f"students.{ext}", d)
    row = list(data[0])
    row[header.index(col("local_id"))] = ""
    plant("students", "partner_record", [(row, "required")])
    record.append(
        [d.partner_id, record[-1][1], record[-1][2], "demographics", "required"]
    )


def _jsonl_district(
    d: District, folder: Path, out: Path, record: list[list[str]]
) -> None:
    path = folder / "attendance.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines[:4]]
    rows[0][column_name(d, "date")] = "2026-02-30T00:00:00"
    rows[1][column_name(d, "code")] = "Absent - Skipped"
    rows[3][column_name(d, "local_id")] = "MV-000000"
    rules = ["invalid_date", "unknown_code", "duplicate_in_file", "unknown_enrollment"]
    with path.open("a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    for i, rule in enumerate(rules):
        record.append(
            [
                d.partner_id,
                str(path.relative_to(out)),
                str(len(lines) + 1 + i),
                "attendance_event",
                rule,
            ]
        )


def _ssn_column(d: District, path: Path, out: Path, record: list[list[str]]) -> None:
    """An export that carries SSNs no agreement allows."""
    header, data = _read(path, d)
    text = io.StringIO()
    writer = csv.writer(text, delimiter=d.delimiter, lineterminator="\n")
    writer.writerow([*header, "SSN"])
    for i, row in enumerate(data):
        writer.writerow([*row, f"{900 + i % 99:03d}-{10 + i % 89:02d}-{1000 + i:04d}"])
    path.write_bytes(text.getvalue().encode(d.encoding))
    record.append(
        [
            d.partner_id,
            str(path.relative_to(out)),
            "",
            "partner_record",
            "undeclared_column:SSN",
        ]
    )


def _cbo_roster(path: Path, out: Path, record: list[list[str]]) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header, data = rows[0], rows[1:]
    bad = list(data[0])
    bad[header.index("BIRTHDATE")] = "13/45/2016"
    bad[header.index("FIRST")] = HOSTILE_NAME
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(bad)
    with path.open("a", encoding="utf-8") as f:
        f.write(buffer.getvalue())
    row = str(len(data) + 2)
    for entity in ("partner_record", "program_participation"):
        record.append(
            [
                "c02-eastside",
                str(path.relative_to(out)),
                row,
                entity,
                "invalid_date" if entity == "partner_record" else "duplicate_in_file",
            ]
        )


def plant_errors(out: Path, years: list[int]) -> Path:
    """Plant the mistakes into ``out/partners`` and write ``out/truth/planted_errors.csv``."""
    record: list[list[str]] = []
    partners = out / "partners"
    last = str(years[-1])
    for d in DISTRICTS:
        folder = partners / d.partner_id / last
        if d.file_format == "csv":
            _text_district(d, folder, partners, record)
        elif d.file_format == "jsonl":
            _jsonl_district(d, folder, partners, record)
    hillcrest = next(d for d in DISTRICTS if d.partner_id == "d04-hillcrest")
    _ssn_column(
        hillcrest,
        partners / hillcrest.partner_id / str(years[0]) / "students.txt",
        partners,
        record,
    )
    year = school_year_label(years[-1], SCHOOL_YEAR_START_MONTH)
    _cbo_roster(partners / "c02-eastside" / f"roster_{year}.csv", partners, record)
    path = out / "truth" / "planted_errors.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["partner_id", "file", "row", "entity", "rule"])
    writer.writerows(record)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path
