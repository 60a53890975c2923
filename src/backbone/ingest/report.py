"""The validation report of a submission: counts, errors grouped by rule with
examples and row numbers; as data, HTML and CSV for the partner, and the export of
quarantined rows for fixing (formula-safe)."""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

from backbone.engines import Connection
from backbone.ingest.rules import RULE_HELP
from backbone.spreadsheet import formula_safe

__all__ = [
    "Report",
    "RuleGroup",
    "TargetCounts",
    "build_report",
    "quarantine_csv",
    "report_csv",
    "report_html",
    "safe_cell",
]

EXAMPLES = 5


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will never run: formula-like text is prefixed with a quote
    (numbers such as -1 stay numbers)."""
    return formula_safe("" if value is None else str(value))


@dataclass(frozen=True)
class QuarantineExample:
    """A row the rule quarantined, and what it said about it."""

    row: int
    """the row's number in the file as sent (its header is row 1)"""
    message: str


@dataclass(frozen=True)
class RuleGroup:
    """The rows one rule quarantined from one canonical table, with the first few."""

    entity: str
    rule: str
    rows: int
    examples: tuple[QuarantineExample, ...] = ()


@dataclass(frozen=True)
class TargetCounts:
    """What one canonical table got from a submission."""

    entity: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_replaced: int
    rows_skipped: int = 0


@dataclass
class Report:
    submission_id: int
    partner_id: str
    feed: str
    file_name: str
    received_at: str
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    note: str | None
    targets: list[TargetCounts]
    groups: list[RuleGroup]
    rows_skipped: int = 0
    """rows the mapping's skip_when left out on purpose"""

    @property
    def reconciles(self) -> bool:
        return self.rows_read == (
            self.rows_loaded + self.rows_quarantined + self.rows_skipped
        ) and all(t.rows_in == t.rows_loaded + t.rows_quarantined for t in self.targets)


def build_report(con: Connection, submission_id: int) -> Report:
    row = con.execute(
        "SELECT submission_id, partner_id, feed, file_name, strftime(received_at, '%Y-%m-%d %H:%M'), status, "
        "coalesce(rows_read, 0), coalesce(rows_loaded, 0), coalesce(rows_quarantined, 0), note, "
        "coalesce(rows_skipped, 0) FROM ops.submission WHERE submission_id = ?",
        [submission_id],
    ).fetchall()[0]
    targets = [
        TargetCounts(*r)
        for r in con.execute(
            "SELECT entity, rows_in, rows_loaded, rows_quarantined, rows_replaced, "
            "coalesce(rows_skipped, 0) FROM ops.submission_target "
            "WHERE submission_id = ? ORDER BY entity",
            [submission_id],
        ).fetchall()
    ]
    counts = con.execute(
        "SELECT entity, rule, count(*) FROM (SELECT entity, unnest(list_distinct(rules)) AS rule FROM ops.quarantine "
        "WHERE submission_id = ?) GROUP BY ALL ORDER BY 3 DESC, 1, 2",
        [submission_id],
    ).fetchall()
    examples: dict[tuple[str, str], list[QuarantineExample]] = {}
    for entity, rule, source_row, message in con.execute(
        f"""
        SELECT entity, rule, source_row, message FROM (
            SELECT entity, source_row, unnest(rules) AS rule, unnest(messages) AS message
            FROM ops.quarantine WHERE submission_id = ?)
        QUALIFY row_number() OVER (PARTITION BY entity, rule ORDER BY source_row, message) <= {EXAMPLES}
            AND row_number() OVER (PARTITION BY entity, rule, source_row ORDER BY message) = 1
        ORDER BY entity, rule, source_row
        """,
        [submission_id],
    ).fetchall():
        examples.setdefault((entity, rule), []).append(
            QuarantineExample(int(source_row), str(message))
        )
    groups = [
        RuleGroup(entity, rule, int(n), tuple(examples.get((entity, rule), ())))
        for entity, rule, n in counts
    ]
    *head, skipped = row
    return Report(*head, targets=targets, groups=groups, rows_skipped=skipped)  # type: ignore[misc]


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["entity", "rule", "rows", "what it means", "example row", "example"]
    )
    for g in report.groups:
        shown: list[tuple[int | None, str]] = [
            (x.row, x.message) for x in g.examples
        ] or [(None, "")]
        for source_row, message in shown:
            writer.writerow(
                [
                    safe_cell(x)
                    for x in (
                        g.entity,
                        g.rule,
                        g.rows,
                        RULE_HELP.get(g.rule, ""),
                        source_row,
                        message,
                    )
                ]
            )
    return out.getvalue()


def report_html(report: Report) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(t.entity)}</td><td>{t.rows_in:,}</td><td>{t.rows_loaded:,}</td>"
        f"<td>{t.rows_quarantined:,}</td><td>{t.rows_replaced:,}</td></tr>"
        for t in report.targets
    )
    groups = ""
    for g in report.groups:
        examples = "".join(f"<li>row {x.row}: {e(x.message)}</li>" for x in g.examples)
        groups += (
            f"<h3>{e(g.rule)} in {e(g.entity)}: {g.rows:,} rows</h3>"
            f"<p>{e(RULE_HELP.get(g.rule, ''))}</p><ul>{examples}</ul>"
        )
    status = "reconciled" if report.reconciles else "DOES NOT RECONCILE"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Validation report: submission {report.submission_id}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#1d2733}"
        "table{border-collapse:collapse}td,th{border:1px solid #c9d1d9;padding:.3rem .6rem;text-align:right}"
        "td:first-child,th:first-child{text-align:left}h3{margin-bottom:.2rem}</style></head><body>"
        f"<h1>Validation report: {e(report.file_name)}</h1>"
        f"<p>Submission {report.submission_id} from {e(report.partner_id)}, feed {e(report.feed)}, "
        f"received {e(report.received_at)}: <b>{e(report.status)}</b>. {report.rows_read:,} rows read, "
        f"{report.rows_loaded:,} loaded, {report.rows_quarantined:,} quarantined"
        + (
            f", {report.rows_skipped:,} skipped on purpose"
            if report.rows_skipped
            else ""
        )
        + f" ({status}).</p>"
        + (f"<p><b>{e(report.note)}</b></p>" if report.note else "")
        + "<table><tr><th>entity</th><th>rows in</th><th>loaded</th><th>quarantined</th><th>replaced</th></tr>"
        + rows
        + "</table><h2>Errors by rule</h2>"
        + (groups or "<p>None.</p>")
        + "</body></html>\n"
    )


def quarantine_csv(con: Connection, submission_id: int) -> str:
    """The quarantined rows as sent (declared columns), each with its reasons, to fix
    and resubmit. Formula-like cells are neutralised."""
    rows = con.execute(
        "SELECT entity, source_row, record, messages FROM ops.quarantine WHERE submission_id = ? "
        "ORDER BY source_row, entity",
        [submission_id],
    ).fetchall()
    records: dict[int, dict[str, object]] = {}
    reasons: dict[int, list[str]] = {}
    for entity, source_row, record, messages in rows:
        values = json.loads(record) if isinstance(record, str) else record
        records.setdefault(source_row, {}).update(values)
        reasons.setdefault(source_row, []).extend(f"{entity}: {m}" for m in messages)
    columns: list[str] = []
    for values in records.values():
        for key in values:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*columns, "backbone_errors"])
    for source_row, values in records.items():
        writer.writerow(
            [
                *(safe_cell(values.get(c)) for c in columns),
                safe_cell("; ".join(reasons[source_row])),
            ]
        )
    return out.getvalue()


def write_report_files(report: Report, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"submission-{report.submission_id}.html"
    csv_path = folder / f"submission-{report.submission_id}.csv"
    html_path.write_text(report_html(report), encoding="utf-8")
    csv_path.write_text(report_csv(report), encoding="utf-8")
    return html_path, csv_path
