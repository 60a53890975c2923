"""Helpers every command shares: consoles, the --warehouse option, dates, doors()."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from backbone import waiting
from backbone.errors import AuthenticationFailed, BackboneError, UserError
from backbone.spreadsheet import formula_safe

if TYPE_CHECKING:
    from backbone.governance import Principal
    from backbone.governance.access import Access, ExportFormat
    from backbone.governance.release import Release
    from backbone.warehouse import Warehouse
else:

    class _WarehouseOnFirstUse:
        """:class:`~backbone.warehouse.Warehouse` for the commands: its module (and
        every stage's) loads when a command first uses it, not when the command line
        is built, so ``backbone --help`` stays cheap. mypy sees the real class."""

        def __getattr__(self, name: str) -> Any:
            from backbone.warehouse import Warehouse

            if _remote.get("server"):
                raise UserError(
                    "this command works on a warehouse folder on this machine; "
                    f"against a server (--server) run one of: {REMOTE_COMMANDS}."
                )
            return getattr(Warehouse, name)

    Warehouse = _WarehouseOnFirstUse()

__all__ = [
    "REMOTE_COMMANDS",
    "ForceOption",
    "FormatOption",
    "OnOption",
    "OutputForm",
    "PurposeOption",
    "TokenOption",
    "UserOption",
    "Warehouse",
    "WarehouseOption",
    "ask",
    "doors",
    "emit",
    "export_target",
    "forget_warehouses",
    "may_write",
    "maybe_signed_in",
    "notes",
    "parse_date",
    "parse_pairs",
    "print_release",
    "reading",
    "remote_server",
    "remote_token",
    "signed_in",
    "use_server",
    "working",
    "write_file",
]


# `backbone --server URL` asks a server these (the API's questions), all else is local
REMOTE_COMMANDS = (
    "submit, submissions list, submissions show, rows, count, indicators roster, "
    "indicators count, outcomes college, outcomes scorecard, agreement export"
)
_remote: dict[str, str | None] = {}


def use_server(server: str | None, token: str | None) -> None:
    """Send this process's questions to ``server`` (from ``backbone --server``)."""
    _remote.update(server=server, token=token)


def remote_server() -> str | None:
    return _remote.get("server")


def remote_token() -> str | None:
    """The token given before the command (``backbone --server URL --token T``)."""
    return _remote.get("token")


def ask(
    name: str, params: Any, warehouse: Path, user: str | None, token: str | None
) -> Any:
    """The answer to the API's question ``name``: from the server when the command
    line named one (``--server``), else from the warehouse folder here, signed in
    as the command says. The same code answers both (backbone.api.questions)."""
    server = _remote.get("server")
    if server:
        from backbone.api.client import Client

        client = Client(server, token or _remote.get("token"), working)
        try:
            return client.ask(name, params)
        finally:
            client.close()
    from backbone.api.questions import BY_NAME
    from backbone.warehouse import Warehouse as Local

    with Local.open(warehouse) as wh:
        return BY_NAME[name].answer(wh, signed_in(wh, user, token), params)


# Output read by a program or kept in a log is never cut to the width of a terminal.
UNCUT_WIDTH = 100_000


def _width() -> int | None:
    """The terminal's width (Rich reads it, and COLUMNS) when standard output is one;
    otherwise nothing is truncated or wrapped to fit."""
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else UNCUT_WIDTH


def _out() -> Console:
    """Consoles are made per call (nothing global at import): they read the terminal
    width and COLUMNS when used."""
    _quiet_spinner()
    return Console(width=_width())


def _plain() -> Console:
    """A console that prints text as given: user data like 'HS [d2/HS01]' is not markup."""
    _quiet_spinner()
    return Console(markup=False, highlight=False, width=_width())


class OutputForm(StrEnum):
    """How a listing is printed: for people, or for programs and spreadsheets."""

    table = "table"
    csv = "csv"
    json = "json"


FormatOption = Annotated[
    OutputForm,
    typer.Option(
        "--format",
        help="table (for people), csv or json (for programs and spreadsheets).",
    ),
]


_GROUPED = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")


def _plain_number(cell: str) -> str:
    """'6,600' as a program reads a number: 6600."""
    return cell.replace(",", "") if _GROUPED.fullmatch(cell) else cell


def emit(table: Table, form: OutputForm = OutputForm.table) -> None:
    """A listing as a table, or its cells (whole, never cut) as CSV or JSON on
    standard output."""
    if form == "table":
        _plain().print(table)
        return
    _quiet_spinner()
    headers = [str(c.header) for c in table.columns]
    rows = list(
        zip(
            *([_plain_number(str(cell)) for cell in c.cells] for c in table.columns),
            strict=True,
        )
    )
    if form == "csv":  # for a spreadsheet: no cell runs as a formula
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow([formula_safe(h) for h in headers])
        out.writerows([formula_safe(cell) for cell in row] for row in rows)
    else:
        records = [dict(zip(headers, r, strict=True)) for r in rows]
        sys.stdout.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")


def _err() -> Console:
    _quiet_spinner()
    return Console(stderr=True)


_spinner: list[Any] = []  # the one live status line on stderr, while a command works


@contextmanager
def working(what: str) -> Iterator[Callable[[str], None]]:
    """Say on stderr what the command is doing (a spinner with ``what``; nothing when
    stderr is not a terminal) until it prints anything; yields a function that
    changes the message, for a stage's progress. Nested, it changes the one line."""
    if _spinner:
        _spinner[-1][1](what)
        yield _spinner[-1][1]
        return
    if os.environ.get(
        waiting.PROGRESS_LINES
    ):  # a job runner reads them (the web's jobs)

        def line(message: str) -> None:
            sys.stderr.write(f"{waiting.PROGRESS_PREFIX}{message}\n")
            sys.stderr.flush()

        line(what)
        yield line
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _message: None
        return
    from rich.live import Live
    from rich.spinner import Spinner

    spinner = Spinner("dots", text=what)
    # standard output stays the command's own: CSV piped from it never goes through here
    live = Live(
        spinner,
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
        refresh_per_second=12.5,
    )

    def say(message: str) -> None:
        spinner.update(text=message)

    live.start()
    _spinner.append((live, say))
    try:
        yield say
    finally:
        _spinner.pop()
        live.stop()


def _quiet_spinner() -> None:
    """The command is about to print: its spinner goes, so no line is garbled."""
    for live, _say in _spinner:
        live.stop()


def notes(form: OutputForm) -> Console:
    """Where the words around a listing go: with it, or to stderr beside a CSV or
    JSON on standard output."""
    return _plain() if form is OutputForm.table else _err()


# The warehouse folders this command names: no file it writes may land inside one
# (an export over the database or the settings would destroy the warehouse).
_warehouses: set[Path] = set()


def forget_warehouses() -> None:
    """Start a command afresh (several may run in one process, as in the tests)."""
    _warehouses.clear()


def _note_warehouse(folder: Path | None) -> Path | None:
    if folder is not None:
        _warehouses.add(folder)
    return folder


WarehouseOption = Annotated[
    Path,
    typer.Option(
        "--warehouse",
        "-w",
        envvar="BACKBONE_WAREHOUSE",
        help="Warehouse folder (default: $BACKBONE_WAREHOUSE, then ./warehouse).",
        show_default=False,
        callback=_note_warehouse,
    ),
]


# After Ctrl-C a command has this long to undo what it was doing and say so; then the
# process ends anyway (an uncommitted transaction is simply not there).
INTERRUPT_GRACE_SECONDS = 1.5
_interrupt: dict[str, bool] = {}


def interrupted() -> bool:
    """True once Ctrl-C was pressed in this process."""
    return bool(_interrupt.get("received"))


def _interrupted_line() -> str:
    from backbone.interrupts import committed

    if not committed():
        return "Interrupted: nothing was changed."
    return (
        "Interrupted: the step under way was undone; what this command had finished "
        "before is kept."
    )


def end_interrupted() -> NoReturn:
    """Say once that the command was interrupted, and end the process with 130.

    Not by ``sys.exit``: CPython 3.11 marks a KeyboardInterrupt that passed through
    any ``exec`` of source text (dataclasses and pydantic build methods that way) as
    unhandled even once it was caught, and then ends the process by SIGINT instead
    of the status asked for. The work under way has unwound by now."""
    if not _interrupt.get("said"):
        _interrupt["said"] = True
        _err().print(_interrupted_line(), highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _after_grace() -> None:
    import time

    from backbone.interrupts import last_word

    time.sleep(INTERRUPT_GRACE_SECONDS)
    last_word()  # a commit and its files are never cut in half
    end_interrupted()


def on_interrupt(_signum: int, _frame: object) -> None:
    """The command's Ctrl-C: the work under way is abandoned (a transaction rolls
    back as the interrupt goes up) and a watchdog ends the process after a grace."""
    if _interrupt.get("received"):
        return  # pressed again: the first is being handled (and the watchdog runs)
    import threading

    _interrupt["received"] = True
    threading.Thread(target=_after_grace, daemon=True).start()
    raise KeyboardInterrupt


@contextmanager
def doors() -> Iterator[None]:
    """Turn Backbone's errors into one clear line and exit status 1."""
    try:
        yield
    except BackboneError as exc:
        if interrupted():  # an error that only says the work was cut short
            raise KeyboardInterrupt from None
        message = Text("Error: ", style="bold red") + Text(str(exc))
        _err().print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Replace what is already there (refused without it)."),
]


def _inside_warehouse(target: Path) -> Path | None:
    """The warehouse folder ``target`` would land in, if any: the folder itself
    or any of its parents that exists is the warehouse's (compared as files, so
    links, letter case and other spellings do not get round it)."""
    try:
        where = target.absolute()
        existing = [p for p in (where, *where.parents) if p.exists()]
        homes = [
            (folder, folder.stat())
            for folder in _warehouses | _env_warehouse()
            if folder.is_dir()
        ]
        for folder, home in homes:
            if any(os.path.samestat(p.stat(), home) for p in existing):
                return folder
            resolved = where.resolve()  # a link from outside into the folder
            if any(
                os.path.samestat(p.stat(), home)
                for p in (resolved, *resolved.parents)
                if p.exists()
            ):
                return folder
    except (OSError, RuntimeError):  # a loop of links, a path too long
        raise UserError(
            f"{target}: cannot tell where this path leads (a loop of links?); "
            "choose another."
        ) from None
    return None


def _env_warehouse() -> set[Path]:
    named = os.environ.get("BACKBONE_WAREHOUSE")
    return {Path(named)} if named else set()


def may_write(force: bool, *targets: Path) -> None:
    """Refuse, before any work is done or disclosed, to write inside the warehouse
    folder (never, --force or not: its database, settings and files are the
    warehouse's own), or to replace a file (or a folder's contents) that is already
    there unless --force was given."""
    for target in targets:
        folder = _inside_warehouse(target)
        if folder is not None:
            raise UserError(
                f"{target} is inside the warehouse folder {folder}; write outputs "
                "elsewhere (--out a path outside it)."
            )
    if force:
        return
    for target in targets:
        if target.is_file() or (target.is_dir() and any(target.iterdir())):
            raise UserError(
                f"{target} already exists; pass --force to replace it, or choose "
                "another name."
            )


def export_target(out: Path, force: bool) -> ExportFormat:
    """The format an export's file asks for by its name, and that it may be written:
    both settled before anything is read, so a refusal discloses nothing."""
    from backbone.governance.access import ExportFormat  # loads with the command

    form = ExportFormat.of(out)
    may_write(force, out)
    return form


def write_file(out: Path, content: bytes, what: str) -> None:
    """Put what a stage made (a report, an export) at ``out``: where bytes go is the
    door's one decision about them (:func:`may_write` asked first)."""
    may_write(True, out)  # never inside the warehouse, whatever the caller asked
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(content)
        out.chmod(0o600)  # its writer's alone, even where it replaced another's file
    except OSError as exc:
        raise UserError(
            f"{out}: cannot write {what} ({exc.strerror or exc})."
        ) from None


def parse_date(text: str | None, what: str = "date") -> date:
    """An ISO date typed by a person; today when omitted."""
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{what} {text!r} is not a date; write it as YYYY-MM-DD."
        ) from None


OnOption = Annotated[
    str | None,
    typer.Option(
        "--on", help="The day to act or report as of (YYYY-MM-DD; default today)."
    ),
]


def _token_value(ctx: typer.Context, value: str | None) -> str | None:
    """The token, from where a secret belongs: ``--token @FILE`` or
    $BACKBONE_TOKEN_FILE (a file only its owner reads), or $BACKBONE_TOKEN. One
    written on the command line itself works, with a warning: every user of the
    machine sees a command line (``ps``)."""
    if value is None:
        named = os.environ.get("BACKBONE_TOKEN_FILE")
        return _token_file(Path(named)) if named else None
    if value.startswith("@"):
        return _token_file(Path(value[1:]))
    source = ctx.get_parameter_source("token") if ctx else None
    if source is not None and source.name == "COMMANDLINE":
        _err().print(
            "Warning: a token on the command line is visible to other users of this "
            "machine; use --token @FILE, $BACKBONE_TOKEN_FILE or $BACKBONE_TOKEN.",
            highlight=False,
        )
    return value


def _token_file(path: Path) -> str:
    try:
        if path.stat().st_mode & 0o077:
            _err().print(
                f"Warning: the token file {path} can be read by other users of this "
                f"machine; `chmod 600 {path}`.",
                highlight=False,
            )
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read the token file {path} ({exc.strerror or exc})."
        ) from None
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{path} is not a token file (not text).") from None
    if not text:
        raise typer.BadParameter(f"the token file {path} is empty.")
    return text


TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="BACKBONE_TOKEN",
        help="Your API token: @FILE reads it from a file (default: $BACKBONE_TOKEN, "
        "then the file $BACKBONE_TOKEN_FILE); `backbone user token` issues one.",
        show_default=False,
        callback=_token_value,
    ),
]
# Passwords asked for while the command line is read, before any command opens the
# warehouse: a prompt left waiting must not hold the file and keep others out.
_passwords: dict[str, str] = {}


def _ask_password(ctx: typer.Context, user: str | None) -> str | None:
    token_given = (
        ctx.params.get("token")
        or os.environ.get("BACKBONE_TOKEN")
        or os.environ.get("BACKBONE_TOKEN_FILE")
    )
    if user and not token_given and os.environ.get("BACKBONE_PASSWORD") is None:
        _passwords[user] = typer.prompt(f"Password for {user}", hide_input=True)
    return user


EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where the heavy work runs for this run: duckdb (this machine) or "
        "spark (engine.spark_master / engine.spark_remote); default: engine.kind.",
        show_default=False,
    ),
]

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="BACKBONE_USER",
        help="Sign in as this user; the password is asked for (or $BACKBONE_PASSWORD).",
        show_default=False,
        callback=_ask_password,
    ),
]
PurposeOption = Annotated[
    str,
    typer.Option(
        "--purpose",
        help="Why you need it: one of the purposes of the agreements (e.g. early_warning).",
    ),
]


def signed_in(wh: Warehouse, user: str | None, token: str | None) -> Principal:
    """The principal behind a command: a token, or a user and password."""
    if token:
        return wh.sign_in_token(token, source=_local_source())
    if user:
        password = os.environ.get("BACKBONE_PASSWORD")
        if password is None:
            password = _passwords.get(user)
        if password is None:
            password = typer.prompt(f"Password for {user}", hide_input=True)
        return wh.sign_in(user, password, source=_local_source())
    raise AuthenticationFailed(
        "sign in first: pass --token (or set BACKBONE_TOKEN), or --user (or set "
        "BACKBONE_USER) and give the password."
    )


def _local_source() -> str:
    """Where a command-line sign-in comes from: this machine's account (by its
    number: $USER is whatever the caller sets)."""
    return f"cli:uid {os.getuid()}"


@contextmanager
def reading(
    warehouse: Path, user: str | None, token: str | None, purpose: str = "data_quality"
) -> Iterator[tuple[Warehouse, Access]]:
    """The warehouse and the signed-in reader of its metadata (agreements,
    requests, feeds, submissions, users): every listing shows each partner its
    own, and nobody anything without signing in (the sign-in is audited)."""
    with Warehouse.open(warehouse) as wh:
        yield wh, wh.access(signed_in(wh, user, token), purpose)


def maybe_signed_in(
    wh: Warehouse, user: str | None, token: str | None
) -> Principal | None:
    """The principal if the command was signed in, else None: the stage then refuses
    unless the warehouse is new and has no user yet."""
    return signed_in(wh, user, token) if (user or token) else None


def parse_pairs(
    items: list[str] | None, option: str = "--where"
) -> dict[str, list[str]]:
    """``NAME=VALUE`` options (repeatable) as {name: [values]}."""
    pairs: dict[str, list[str]] = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise UserError(f"{option} {item!r}: write it as COLUMN=VALUE.")
        pairs.setdefault(column.strip(), []).append(value)
    return pairs


def print_release(release: Release, title: str) -> None:
    """A table released by the gate, with its suppression or noise explained."""
    table = Table(title=f"Release {release.release_id}: {title}")
    # a person reads the rate as its text; its number is for charts and the API
    shown = [c for c in release.table.column_names if c != "rate_value"]
    for column in shown:
        table.add_column(
            column,
            justify="right" if column in ("persons", "matching", "rate") else "left",
        )
    for r in release.table.select(shown).to_pylist():
        table.add_row(
            *(
                ("*" if k in ("persons", "matching") else "") if v is None else str(v)
                for k, v in r.items()
            )
        )
    _plain().print(table)
    if release.mode == "dp":
        _plain().print(
            f"Differentially private (epsilon {release.epsilon:g}); each count is "
            f"within ±{release.accuracy:.1f} of the truth with 95% probability."
        )
    else:
        _plain().print(
            f"{release.suppressed} of {release.cells} cells suppressed (*); "
            f"under {', '.join(release.agreements) or 'your own data'}."
        )
