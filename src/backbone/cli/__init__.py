"""The ``backbone`` command. A door only: it translates arguments into calls on
:class:`~backbone.warehouse.Warehouse` and results into tables; a user's mistake
becomes one line on stderr, never a traceback."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from backbone import __version__
from backbone.cli.common import (
    REMOTE_COMMANDS,
    ForceOption,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _err,
    _out,
    _plain,
    doors,
    end_interrupted,
    forget_warehouses,
    interrupted,
    on_interrupt,
    signed_in,
    use_server,
    working,
)
from backbone.errors import UserError
from backbone.settings import SETTINGS

if TYPE_CHECKING:
    from backbone.demo import GenerateSummary

app = typer.Typer(
    name="backbone",
    help="Backbone: a community data-sharing warehouse for collective-impact partnerships.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(
    help="Build and run the synthetic demo community.", no_args_is_help=True
)
app.add_typer(demo_app, name="demo")


def _version(value: bool) -> None:
    if value:
        _out().print(f"backbone {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version."
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            envvar="BACKBONE_NO_WAIT",
            help="Fail at once when another command holds the warehouse, instead "
            "of waiting for it (engine.lock_wait_seconds) with a message.",
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="BACKBONE_SERVER",
            help="Ask a Backbone server (its URL, e.g. https://backbone.example.org) "
            f"instead of a warehouse folder here: {REMOTE_COMMANDS}. Sign in with "
            "--token (or $BACKBONE_TOKEN).",
            show_default=False,
        ),
    ] = None,
    token: TokenOption = None,
) -> None:
    """Backbone: a community data-sharing warehouse."""
    from backbone.waiting import wait_at_most

    wait_at_most(0 if no_wait else None)
    use_server(server, token)
    forget_warehouses()  # the command's own --warehouse is noted as it is parsed


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder to create the warehouse in.")
    ],
    name: Annotated[str | None, typer.Option(help="Name shown on reports.")] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="Also write starting files into DIRECTORY/templates: a partnership "
            "directory and an agreement for this legal basis (ferpa_studies, "
            "ferpa_audit_eval, consent, directory, school_official, state_law, "
            "contract)."
        ),
    ] = None,
) -> None:
    """Create a new warehouse folder with the canonical schema."""
    from backbone.partners.agreements.document import LegalBasis

    with doors():
        bases = [b.value for b in LegalBasis]
        if template is not None and template not in bases:
            raise UserError(
                f"--template {template!r} is not a legal basis; use one of "
                f"{', '.join(bases)}."
            )
        with Warehouse.init(directory, name=name) as wh:
            _out().print(
                f"Created warehouse [bold]{escape(wh.settings['warehouse.name'])}[/] "
                f"at {escape(str(directory))} (schema version {wh.schema_version})."
            )
        if template is not None:
            from backbone.partners.agreements.templates import (
                DIRECTORY_EXAMPLE,
                template_yaml,
            )

            folder = directory / "templates"
            folder.mkdir(exist_ok=True)
            (folder / "partnership.yaml").write_text(DIRECTORY_EXAMPLE, "utf-8")
            agreement = folder / f"DSA-{template}.yaml"
            agreement.write_text(template_yaml(LegalBasis(template)), "utf-8")
            _out().print(
                f"Wrote {escape(str(folder / 'partnership.yaml'))} and "
                f"{escape(str(agreement))}: edit them, then `backbone partner "
                "import` and `backbone agreement add` (README: Starting your own "
                "partnership)."
            )


@app.command()
def info(
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Show what a warehouse holds: partners, sizes, and (to its steward, signed
    in) every table's row count."""
    with doors():
        if user or token:  # the sign-in is audited: open for writing
            with Warehouse.open(warehouse) as wh:
                facts = wh.info(signed_in(wh, user, token))
        else:
            with Warehouse.open(warehouse, read_only=True) as wh:
                facts = wh.info()
    _out().print(f"[bold]{escape(facts.name)}[/] at {escape(str(facts.path))}")
    _out().print(
        f"schema version {facts.schema_version}; created {facts.created_at}; "
        f"database {_size(facts.database_bytes)}; raw store {facts.raw_files} files, "
        f"{_size(facts.raw_bytes)}"
    )
    partners = Table(title=f"Partners ({len(facts.partners)})")
    for column in ("id", "name", "kind"):
        partners.add_column(column)
    for p in facts.partners:
        partners.add_row(p.partner_id, p.name, p.kind)
    _plain().print(partners)
    tables = Table(title="Tables")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for t in facts.tables:
        tables.add_row(t.name, f"{t.rows:,}")
    if facts.tables:
        _out().print(tables)
    else:
        _out().print(
            "Row counts per table are the steward's (signed in with --user or "
            "--token); a partner's own files and their rows: `backbone submissions "
            "list`."
        )


@app.command()
def serve(
    warehouse: WarehouseOption = Path("warehouse"),
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web site and the API (/api/v1, documented at /api/v1/docs) for
    the warehouse: every role signs in (a password on the site, a token on the
    API) and sees what the agreements let it see. Ctrl-C stops it."""
    with doors():
        import uvicorn

        from backbone.api import API_PREFIX, create_api
        from backbone.serving import Serving
        from backbone.web import create_app

        serving = Serving(warehouse)
        site = create_app(warehouse, serving)
        site.mount(API_PREFIX, create_api(serving))
    _plain().print(
        f"Serving {warehouse} at http://{host}:{port}/ and its API at "
        f"http://{host}:{port}{API_PREFIX}/docs (Ctrl-C stops)."
    )
    # the peer's address is the client's: a forwarded-for header from anyone on
    # this machine would let a guesser be a new source at every try (README, Security)
    uvicorn.run(
        site,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def migrate(warehouse: WarehouseOption = Path("warehouse")) -> None:
    """Bring a warehouse written by an older Backbone to this version's schema, in
    one transaction (take a copy of the folder first). Opening never migrates."""
    with doors():
        done = Warehouse.migrate(warehouse)
    if not done.changed:
        _out().print(
            f"{escape(str(warehouse))} is at schema version {done.to_version}; "
            "nothing to do."
        )
    else:
        _out().print(
            f"Migrated {escape(str(warehouse))} from schema version "
            f"{done.from_version} to {done.to_version}."
        )


@app.command("settings")
def show_settings() -> None:
    """List every warehouse setting (backbone.toml) with its default and meaning."""
    table = Table(title="Settings in backbone.toml")
    table.add_column("setting", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("meaning")
    for s in SETTINGS:
        table.add_row(s.name, repr(s.default), s.help)
    _out().print(table)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_err(),
        transient=True,
    )


class _BarProgress:
    """The demo's phases on one progress line (a bar where the steps are known)."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._task: TaskID | None = None

    def phase(self, name: str, total: int | None = None) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(name, total=total)

    def step(self, message: str, *, advance: bool = True) -> None:
        if self._task is not None:
            self._bar.update(self._task, description=message, advance=int(advance))


def _generate(
    out_dir: Path, students: int, years: int, seed: int, last_year: int, force: bool
) -> GenerateSummary:
    from backbone.demo import expected_steps, generate

    with _progress() as bar:
        task = bar.add_task("generating", total=expected_steps(years))

        def step(message: str) -> None:
            bar.update(task, description=message, advance=1)

        return generate(
            out_dir,
            students=students,
            years=years,
            seed=seed,
            last_year=last_year,
            progress=step,
            replace=force,
        )


@demo_app.command("generate")
def demo_generate(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder to write the community to.")
    ],
    students: Annotated[int, typer.Option(help="Students who ever attend.")] = 12_000,
    years: Annotated[int, typer.Option(help="School years of data.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    last_year: Annotated[
        int, typer.Option(help="Last school year (2026 = 2025-26).")
    ] = 2026,
    force: ForceOption = False,
) -> None:
    """Write the files every partner of a synthetic community would send."""
    with doors():
        summary = _generate(out_dir, students, years, seed, last_year, force)
    _out().print(
        f"Wrote {summary.files} files ({_size(summary.bytes)}) for {summary.students:,} "
        f"students to {summary.out}/partners; planted truth in {summary.out}/truth."
    )


@demo_app.command("run")
def demo_run(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo.")] = Path(
        "demo-out"
    ),
    students: Annotated[int, typer.Option(help="Students who ever attend.")] = 12_000,
    years: Annotated[int, typer.Option(help="School years of data.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    force: ForceOption = False,
) -> None:
    """Generate the community, build a warehouse from it and run every stage (an
    existing demo folder is replaced only with --force)."""
    from backbone.demo.run import run_demo  # the demo loads only for its commands

    with doors(), _progress() as bar:
        done = run_demo(
            out_dir,
            students=students,
            years=years,
            seed=seed,
            progress=_BarProgress(bar),
            replace=force,
        )
    summary, community, warehouse = done.generated, done.community, done.warehouse
    counts, ingested, linked, accuracy = (
        done.registered,
        done.ingested,
        done.linked,
        done.accuracy,
    )
    tour, token_file, facts = done.tour, done.token_file, done.facts
    table = Table(title="Demo community built", show_header=False)
    table.add_column("what")
    table.add_column("result")
    table.add_row(
        "partner files",
        f"{summary.files} files, {_size(summary.bytes)} in {community}/partners",
    )
    table.add_row(
        "students",
        f"{summary.students:,} over school years {summary.school_years[0]}-{summary.school_years[-1]}",
    )
    table.add_row(
        "partner records",
        f"{summary.rows['partner_record']:,} (one per partner and student)",
    )
    table.add_row("planted truth", f"{community}/truth (the warehouse never reads it)")
    table.add_row("warehouse", f"{warehouse} (schema version {facts.schema_version})")
    for key, value in counts.items():
        table.add_row(f"  registered {key.replace('_', ' ')}", f"{value:,}")
    _out().print(table)
    loads = Table(title="Submissions (every row loaded or quarantined)")
    for column in ("partner", "files", "rows read", "loaded", "quarantined"):
        loads.add_column(column, justify="left" if column == "partner" else "right")
    for partner, done_by in ingested.by_partner.items():
        loads.add_row(
            partner,
            f"{done_by.files:,}",
            f"{done_by.rows_read:,}",
            f"{done_by.rows_loaded:,}",
            f"{done_by.rows_quarantined:,}",
        )
    loads.add_row(
        "all",
        f"{ingested.submissions:,}",
        f"{ingested.rows_read:,}",
        f"{ingested.rows_loaded:,}",
        f"{ingested.rows_quarantined:,}",
    )
    _plain().print(loads)
    reconciled = ingested.rows_read == ingested.rows_loaded + ingested.rows_quarantined
    _out().print(
        f"Counts {'reconcile' if reconciled else 'DO NOT reconcile'}: "
        f"{ingested.rows_read:,} = {ingested.rows_loaded:,} + {ingested.rows_quarantined:,}."
    )
    _out().print(
        f"Linked {linked.records:,} partner records into {linked.persons:,} persons in "
        f"{linked.seconds:.1f} s ({linked.review_pairs:,} pairs wait for `backbone review`); "
        f"against the planted truth: pairwise F1 {accuracy.pairwise_f1:.4f} "
        f"(precision {accuracy.pairwise_precision:.4f}, recall {accuracy.pairwise_recall:.4f})."
    )
    for line in tour:
        _plain().print(line)
    _plain().print(
        f"Sign in as the demo's steward admin: export BACKBONE_TOKEN=$(cat {token_file}) "
        f"BACKBONE_WAREHOUSE={warehouse}"
    )
    for refused in ingested.refused_columns:
        sid = refused.submission_id
        _out().print(
            f"Submission {sid}: refused and never stored: "
            f"{escape(', '.join(refused.columns))} "
            f"(see `backbone submissions show {sid} -w {warehouse}`)."
        )
    from backbone.cli.partners import status

    # the partnership at a glance, as the steward (signed in with the demo's token)
    status(warehouse=warehouse, on=None, token=token_file.read_text("utf-8").strip())
    _out().print(
        f"Next: [bold]backbone info --warehouse {warehouse}[/] shows what it holds; "
        f"[bold]backbone agreement history DSA-A01 --warehouse {warehouse}[/] shows a "
        f"living agreement; {community}/README.md describes each partner's dialect."
    )
    if done.sign_ins:
        _plain().print(
            f"The web site: backbone serve --warehouse {warehouse}   "
            "(then open http://127.0.0.1:8000/), signing in as"
        )
        for user_id, password, who in done.sign_ins:
            _plain().print(f"  {user_id} / {password}   ({who})")


def _register() -> None:
    from backbone.cli import (
        directory,
        governance,
        ingest,
        linkage,
        measures,
        outcomes,
        partners,
    )

    partners.register(app)
    directory.register(app)
    ingest.register(app)
    linkage.register(app)
    governance.register(app, linkage.export_app)
    measures.register(app)
    outcomes.register(app)
    _say_working(app, "backbone")


# commands that ask questions as they go: a spinner would sit on the prompt
# and the demo's, which draw their own progress bars
_INTERACTIVE = {
    "backbone review",
    "backbone user add",
    "backbone user password",
    "backbone demo run",
    "backbone demo generate",
}


def _say_working(group: typer.Typer, path: str) -> None:
    """Every command shows, while it runs, a spinner saying which command is at work
    (its stage's own progress replaces the words where it reports any)."""
    for command in group.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        where = f"{path} {name.replace('_', '-')}"
        if command.callback is None or where in _INTERACTIVE:
            continue
        command.callback = _spinning(command.callback, where)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            callback = sub.typer_instance.registered_callback
            where = f"{path} {sub.name}"
            if callback and callback.callback and where not in _INTERACTIVE:
                callback.callback = _spinning(callback.callback, where)
            _say_working(sub.typer_instance, where)


def _spinning(callback: Any, where: str) -> Any:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        with working(f"{where} …"):
            return callback(*args, **kwargs)

    return run


_register()


def main() -> None:
    import os
    import signal

    from backbone.waiting import report_waits_to

    # every file and folder a command makes (the database and its journal, raw
    # files, reports, exports) is its user's alone: 0600 and 0700
    os.umask(0o077)

    # a command that finds the warehouse held says what it waits for, on stderr
    report_waits_to(lambda message: _err().print(message, highlight=False))
    signal.signal(signal.SIGINT, on_interrupt)
    try:
        app()  # typer ends every command with SystemExit (130 for Ctrl-C, silently)
    except SystemExit:
        if interrupted():
            end_interrupted()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the work is done: just end
        raise
    except BaseException:
        # after Ctrl-C, whatever comes up (DuckDB's or Splink's way of saying a query
        # was cut short) is the interrupt: one line, no traceback
        if not interrupted():
            raise
        end_interrupted()
