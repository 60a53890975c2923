"""Commands for submissions: ``submit``, ``submissions`` and ``mapping``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from backbone.cli.common import (
    ForceOption,
    FormatOption,
    OnOption,
    OutputForm,
    PurposeOption,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _plain,
    ask,
    doors,
    emit,
    may_write,
    parse_date,
    remote_server,
    remote_token,
    signed_in,
    working,
)
from backbone.errors import UserError

if TYPE_CHECKING:
    from backbone.ingest.submit import Submission, SubmissionResult

submissions_app = typer.Typer(
    help="Submissions, their validation reports and quarantine.", no_args_is_help=True
)
mapping_app = typer.Typer(
    help="Mappings from partner files to the canonical model.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.add_typer(submissions_app, name="submissions")
    app.add_typer(mapping_app, name="mapping")


def submit(
    files: Annotated[list[Path], typer.Argument(help="Files to submit, in order.")],
    partner: Annotated[str, typer.Option(help="Submitting partner.")],
    feed: Annotated[str, typer.Option(help="The feed the files belong to.")],
    mode: Annotated[
        str | None,
        typer.Option(
            help="Override the feed's mode: replace-period or append (use append to resubmit fixed rows)."
        ),
    ] = None,
    reprocess: Annotated[
        bool,
        typer.Option(
            help="Process a file loaded before again (its feed's mapping changed): its "
            "new rows replace the ones its earlier load left."
        ),
    ] = False,
    replace_smaller: Annotated[
        bool,
        typer.Option(
            "--replace-smaller",
            help="Let a replace-period file replace a period's rows though it holds "
            "far fewer (without it such a file waits: a cut-off export is the usual "
            "cause).",
        ),
    ] = False,
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Submit partner files: validate, load, quarantine; prints the reconciled counts.

    Sign in as one of the partner's users (or the steward's). Each file is its own
    submission: a refused file stops the command, the files before it stay loaded."""
    if remote_server():
        with doors():
            _submit_to_server(
                files, partner, feed, mode, reprocess, on, token, replace_smaller
            )
        return
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        for path in files:
            # one session per file, so each file's counts are shown as it is done
            with (
                working(f"submitting {path.name}") as say,
                wh.session(principal) as s,
            ):
                results = wh.ingest.submit(
                    s,
                    partner,
                    feed,
                    [path],
                    mode=mode,
                    on=parse_date(on),
                    progress=say,
                    reprocess=reprocess,
                    replace_smaller=replace_smaller,
                )
            _print_results(results, wh.path / "reports")


def _submit_to_server(
    files: list[Path],
    partner: str,
    feed: str,
    mode: str | None,
    reprocess: bool,
    on: str | None,
    token: str | None,
    replace_smaller: bool = False,
) -> None:
    """Each file sent to the server (``backbone --server``), streamed from disk."""
    from backbone.api.client import Client

    if on is not None:
        raise UserError(
            "--on is the day a submission is recorded as of, set at the warehouse; "
            "a server records the day it receives the file."
        )
    client = Client(str(remote_server()), token or remote_token())
    try:
        for path in files:
            with working(f"sending {path.name}"):
                results = client.submit(
                    partner,
                    feed,
                    path,
                    mode=mode,
                    reprocess=reprocess,
                    replace_smaller=replace_smaller,
                )
            _print_results(results, None)
    finally:
        client.close()


def _print_results(results: list[SubmissionResult], reports: Path | None) -> None:
    """What became of each file, as counts and errors by rule; the report's files
    written into ``reports`` (here), or named on the server."""
    from backbone.ingest.report import QuarantineExample, write_report_files

    console = _plain()
    for result in results:
        console.print(result.message)
        if result.status != "loaded":
            continue
        for t in result.targets:
            replaced = (
                f", replaced {t.rows_replaced:,} earlier rows"
                if t.rows_replaced
                else ""
            )
            skipped = f", {t.rows_skipped:,} skipped" if t.rows_skipped else ""
            console.print(
                f"  {t.entity}: {t.rows_in:,} in, {t.rows_loaded:,} loaded, "
                f"{t.rows_quarantined:,} quarantined{skipped}{replaced}"
            )
        if result.undeclared or result.dropped:
            console.print(
                f"  refused and never stored: {', '.join(result.undeclared + result.dropped)}; "
                f"decide on the raw file with `backbone submissions decide-raw {result.submission_id}`"
            )
        report = result.report
        if report is None:
            continue
        for g in report.groups:
            first = g.examples[0] if g.examples else QuarantineExample(0, "")
            console.print(
                f"  {g.rule} ({g.entity}): {g.rows:,} rows, e.g. row {first.row}: {first.message}"
            )
        if reports is not None:
            html_path, _ = write_report_files(report, reports)
            if report.groups:
                console.print(f"  report: {html_path}")
        elif report.groups:
            console.print(
                f"  report: `backbone submissions show {result.submission_id}`"
            )


@submissions_app.command("list")
def submissions_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's.")] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """The submissions you may see (your partner's; the steward: all), with their
    reconciled counts."""
    from backbone.api.questions import NoParams

    with doors():
        listed: list[Submission] = sorted(
            ask("submissions", NoParams(), warehouse, user, token),
            key=lambda r: r.submission_id,
        )
        listed = [r for r in listed if partner is None or r.partner_id == partner]
        table = Table(title="Submissions")
        for c in (
            "#",
            "partner",
            "feed",
            "file",
            "received",
            "status",
            "read",
            "loaded",
            "quarantined",
        ):
            table.add_column(c)
        for r in listed:
            table.add_row(
                str(r.submission_id),
                r.partner_id,
                r.feed,
                r.file_name,
                f"{r.received_at:%Y-%m-%d %H:%M}",
                r.status,
                *(
                    f"{x:,}" if x is not None else "—"
                    for x in (r.rows_read, r.rows_loaded, r.rows_quarantined)
                ),
            )
        emit(table, form)


@submissions_app.command("show")
def submissions_show(
    submission_id: int,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the report as HTML and CSV into this folder."),
    ] = None,
    purpose: PurposeOption = "data_quality",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """A submission's validation report: counts, and errors by rule with examples
    (for the partner's own users and the steward)."""
    from backbone.api.questions import SubmissionParams
    from backbone.ingest.report import write_report_files

    with doors():
        if out is not None:  # never inside the warehouse (--out is a folder of reports)
            may_write(True, out)
        view = ask(
            "submission",
            SubmissionParams(submission_id, purpose),
            warehouse,
            user,
            token,
        )
        report = view.report
        console = _plain()
        console.print(
            f"Submission {report.submission_id}: {report.file_name} from {report.partner_id} "
            f"(feed {report.feed}), received {report.received_at}, {report.status}"
        )
        if report.status == "received":
            console.print(
                "This submission did not finish (the load was interrupted); nothing from it "
                "was loaded. Submit the file again."
            )
        elif report.status == "loaded":
            console.print(
                f"{report.rows_read:,} rows read = {report.rows_loaded:,} loaded + "
                f"{report.rows_quarantined:,} quarantined "
                + (
                    f"+ {report.rows_skipped:,} skipped (skip_when, or not refused "
                    "before in a corrected quarantine) "
                    if report.rows_skipped
                    else ""
                )
                + f"({'reconciled' if report.reconciles else 'DOES NOT RECONCILE'})"
            )
        if report.note:
            console.print(report.note)
        for d in view.raw_decisions:
            console.print(
                f"Raw file decision: {d.decision} on {d.at:%Y-%m-%d} by {d.by} "
                f"({d.reason})."
            )
        for t in report.targets:
            console.print(
                f"  {t.entity}: {t.rows_in:,} in, {t.rows_loaded:,} loaded, "
                f"{t.rows_quarantined:,} quarantined, {t.rows_replaced:,} replaced"
            )
        for g in report.groups:
            console.print(f"{g.rule} in {g.entity}: {g.rows:,} rows")
            for example in g.examples:
                console.print(f"    row {example.row}: {example.message}")
        if out is not None:
            try:
                html_path, csv_path = write_report_files(report, out)
            except OSError as exc:
                raise UserError(
                    f"Cannot write the report into {out} ({exc.strerror})."
                ) from None
            console.print(f"Wrote {html_path} and {csv_path}.")


@submissions_app.command("quarantine")
def submissions_quarantine(
    submission_id: int,
    out: Annotated[
        Path | None,
        typer.Option(
            help="CSV file to write the quarantined rows to (default: <original name>-fix.csv)."
        ),
    ] = None,
    purpose: PurposeOption = "data_quality",
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Export a submission's quarantined rows, with reasons, to fix and resubmit
    (for the partner's own users and the steward)."""
    from backbone.ingest.mapping import load_mapping

    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), purpose)
        sub = wh.ingest.get(submission_id)
        if out is None:
            out = Path(f"{Path(sub.file_name).stem}-fix.csv")
        may_write(force, out)
        text = wh.ingest.quarantine_csv(submission_id, access, to=str(out))
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"Cannot write {out} ({exc.strerror}).") from None
        n = text.count("\n") - 1
        console = _plain()
        console.print(
            f"Wrote {n:,} quarantined rows to {out}. Fix them, then: backbone submit "
            f"--partner {sub.partner_id} --feed {sub.feed} --mode append {out}"
        )
        try:
            mapping = load_mapping(wh.path / "mappings", sub.partner_id, sub.feed)
        except UserError:
            return
        if not mapping.sections_for(out.name):
            patterns = ", ".join(s.match for s in mapping.files)
            console.print(
                f"Note: the feed's mapping reads files named {patterns}; give the fixed "
                "file such a name before submitting it."
            )


@submissions_app.command("decide-raw")
def submissions_decide_raw(
    submission_id: int,
    keep: Annotated[
        bool, typer.Option("--keep/--purge", help="Keep the raw file, or purge it.")
    ],
    reason: Annotated[str, typer.Option(help="Why; kept on record.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Decide whether a raw file holding refused columns is kept or purged (a
    steward admin; the decision is recorded under their name)."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        decision = wh.ingest.decide_raw(s, submission_id, keep=keep, reason=reason)
    _plain().print(f"Raw file of submission {submission_id}: {decision} (recorded).")


@mapping_app.command("suggest")
def mapping_suggest(
    file: Path,
    entity: Annotated[str, typer.Option(help="Canonical entity the file holds.")],
    partner: Annotated[
        str, typer.Option(help="Partner the mapping is for.")
    ] = "PARTNER",
    feed: Annotated[str, typer.Option(help="Feed the mapping is for.")] = "FEED",
    out: Annotated[
        Path | None, typer.Option(help="Write the draft here (default: print it).")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Draft a mapping from a file's header and values, for the steward to edit."""
    from backbone.engines import scratch
    from backbone.ingest.suggest import suggest_mapping

    with doors():
        text = suggest_mapping(scratch(), file, entity, partner, feed)
        if out is None:
            _plain().print(text)
            return
        may_write(force, out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"Cannot write {out} ({exc.strerror}); choose another --out."
            ) from None
        _plain().print(
            f"Wrote a draft mapping to {out}; check every TODO before using it."
        )


@mapping_app.command("add")
def mapping_add(
    partner: str,
    feed: str,
    file: Annotated[Path, typer.Argument(help="The mapping (YAML) to record.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Check a mapping and record it as the feed's (a steward admin; the one it
    replaces is kept beside it)."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            path = wh.ingest.set_mapping(s, partner, feed, file)
        _plain().print(
            f"{partner}/{feed}: mapping recorded ({path}). Files already loaded keep "
            "their rows; resubmit one with --reprocess to apply it to them."
        )


@mapping_app.command("check")
def mapping_check(
    partner: str, feed: str, warehouse: WarehouseOption = Path("warehouse")
) -> None:
    """Validate a feed's mapping file."""
    from backbone.ingest.mapping import load_mapping

    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        m = load_mapping(wh.path / "mappings", partner, feed)
        _plain().print(f"{partner}/{feed}: {len(m.files)} sections, ok.")
