"""Opening the warehouse's DuckDB database with the warehouse's settings.

DuckDB lets one process write a database file, or several processes read it, never
both. Backbone shares a warehouse between processes by that rule: a command that
writes opens the file for writing and holds it only while it runs; one that reads
opens it read-only. A command that finds the file held waits for it (up to
``engine.lock_wait_seconds``), saying what it waits for, instead of failing with
DuckDB's lock error. The writer leaves a note beside the database (who, since when)
so the waiting command can name it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import duckdb

from backbone import waiting
from backbone.engines.sql import SqlValue, ident, literal
from backbone.errors import WarehouseError
from backbone.settings import Settings

if TYPE_CHECKING:  # heavy libraries stay out of start-up
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "Connection",
    "EngineError",
    "Handle",
    "arrow",
    "begin",
    "clear_note",
    "columns",
    "connect",
    "create_table_as",
    "cut_short",
    "end",
    "frame",
    "holder_note",
    "next_id",
    "next_ids",
    "register",
    "registered",
    "scratch",
    "set_option",
    "transaction",
    "unregister",
]

# What stages hold and catch: the engine's connection and its error. A stage names
# these, never the engine's module, so a second engine fills the same names.
Connection: TypeAlias = duckdb.DuckDBPyConnection
EngineError = duckdb.Error

POLL_SECONDS = 0.2
# how long another thread waits for a long job to take the file back
WAIT_FOR_RETURN_SECONDS = 3600.0


def _note_path(database: Path) -> Path:
    return database.with_name(database.name + ".writer")


def holder_note(database: Path | str) -> str:
    """Who holds the warehouse for writing, from the note the writer left (a note of
    a process that is gone names nobody: readers may be what holds it)."""
    try:
        note = json.loads(_note_path(Path(database)).read_text(encoding="utf-8"))
        os.kill(int(note["pid"]), 0)  # still running?
        return f"`{note['command']}` (process {note['pid']}, since {note['since']} UTC)"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _leave_note(database: Path) -> None:
    command = " ".join(["backbone", *sys.argv[1:3]] if sys.argv else ["backbone"])
    note = {
        "pid": os.getpid(),
        "command": command,
        "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    with suppress(OSError):
        _note_path(database).write_text(json.dumps(note), encoding="utf-8")


def clear_note(database: Path | str) -> None:
    """Remove the writer's note when it closes the database (only its own)."""
    path = _note_path(Path(database))
    with suppress(OSError, ValueError, KeyError, TypeError):
        if json.loads(path.read_text(encoding="utf-8"))["pid"] == os.getpid():
            path.unlink()


def _waiting_path(database: Path) -> Path:
    return database.with_name(f"{database.name}.waiting.{os.getpid()}")


def others_waiting(database: Path | str) -> bool:
    """Whether another running process waits for the database file (it leaves a
    note while it does): a process that keeps the file open between pieces of work,
    the web server, hands it over then."""
    database = Path(database)
    for note in database.parent.glob(f"{database.name}.waiting.*"):
        pid = note.name.rsplit(".", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # gone without clearing it
            with suppress(OSError):
                note.unlink()
            continue
        except OSError:
            pass
        return True
    return False


def connect(
    database: Path | str,
    settings: Settings,
    *,
    read_only: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect, waiting while another process holds the file; DuckDB's lock and I/O
    errors become sentences for people."""
    config: dict[str, str | bool | int | float | list[str]] = {}
    if settings["engine.threads"]:
        config["threads"] = settings["engine.threads"]
    if settings["engine.memory_limit"]:
        config["memory_limit"] = settings["engine.memory_limit"]
    on_wait = on_wait or waiting.reporter()
    limit = waiting.limit()
    patience = min(float(settings["engine.lock_wait_seconds"]), limit or float("inf"))
    if limit == 0:
        patience = 0.0
    waiting_note = _waiting_path(Path(database))
    try:
        return _connect_waiting(
            database, read_only, config, patience, on_wait, waiting_note
        )
    finally:
        with suppress(OSError):
            waiting_note.unlink()


def _connect_waiting(
    database: Path | str,
    read_only: bool,
    config: dict[str, str | bool | int | float | list[str]],
    patience: float,
    on_wait: Callable[[str], None] | None,
    waiting_note: Path,
) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + patience
    told = False
    while True:
        try:
            con = duckdb.connect(str(database), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" not in text.lower():
                raise WarehouseError(f"Cannot open {database}: {text}") from None
            holder = holder_note(database)
            if time.monotonic() >= deadline:
                waited = f"after waiting {patience:g} s" if patience else "at once"
                raise WarehouseError(
                    f"The warehouse database {database} is held by {holder}; gave up "
                    f"{waited}. Wait for it to finish, or stop it, then try again."
                ) from None
            if not told:
                with suppress(OSError):  # a holder that can hand it over will
                    waiting_note.write_text(str(os.getpid()), encoding="utf-8")
                if on_wait is not None:
                    on_wait(f"Waiting for the warehouse: it is in use by {holder} ...")
                told = True
            time.sleep(POLL_SECONDS)
            continue
        except duckdb.InvalidInputException as exc:
            raise WarehouseError(
                f"{database} is not a DuckDB database Backbone can read ({exc})."
            ) from None
        if not read_only:
            _leave_note(Path(database))
        waiting.opened()
        return con


def scratch(
    path: Path | str | None = None, *, memory_limit: str | None = None
) -> Connection:
    """A private working database: in memory, or in the file ``path`` (for work too
    big for memory), within ``memory_limit`` (``engine.memory_limit``) if given.
    Not the warehouse; nothing in it is shared."""
    config: dict[str, str | bool | int | float | list[str]] = (
        {"memory_limit": memory_limit} if memory_limit else {}
    )
    return duckdb.connect(":memory:" if path is None else str(path), config=config)


class Handle:
    """The warehouse's connection, which a long job can hand back while it computes.

    Stages hold the handle, not the connection: every attribute is the current
    connection's. :meth:`released` closes the database file, so other processes may
    read or write it meanwhile, and opens it again (waiting its turn) afterwards; the
    stages then use the new connection without knowing.
    """

    def __init__(
        self,
        opener: Callable[[], duckdb.DuckDBPyConnection],
        first: duckdb.DuckDBPyConnection | None = None,
        *,
        database: Path | None = None,
    ) -> None:
        self._opener = opener
        self._current: duckdb.DuckDBPyConnection | None = first or opener()
        self.database = database
        self._back = threading.Event()
        self._back.set()
        self._releaser: int | None = None

    @property
    def is_open(self) -> bool:
        return self._current is not None

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        # another thread of this process waits while a long job has the file out
        if self._current is None and threading.get_ident() != self._releaser:
            self._back.wait(timeout=WAIT_FOR_RETURN_SECONDS)
        if self._current is None:
            raise WarehouseError(
                "The warehouse was handed back to other processes for a while; "
                "this step needs it and may not run meanwhile."
            )
        return self._current

    def __getattr__(self, name: str) -> object:
        return getattr(self.connection, name)

    def _settled(self) -> duckdb.DuckDBPyConnection:
        """The connection with no half-read result pending. DuckDB 2 refuses a
        relation or a registration while an ``execute`` result is not fetched to its
        end (``fetchone`` leaves it so); on the one connection every stage shares, one
        stage's ``fetchone`` must not break the next stage's ``sql``."""
        con = self.connection
        con.execute("SELECT 1").fetchall()
        return con

    def sql(self, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyRelation:
        return self._settled().sql(*args, **kwargs)

    def register(self, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        return self._settled().register(*args, **kwargs)

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give the database file back for the block; reopen it afterwards."""
        self.connection.close()
        if self.database is not None:
            clear_note(self.database)
        self._back.clear()
        self._releaser = threading.get_ident()
        self._current = None
        try:
            yield
        finally:
            try:
                self._current = self._opener()
            finally:
                self._releaser = None
                self._back.set()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


# Connections with a transaction opened by :func:`begin` (a session's): a block of
# :func:`transaction` on one of them joins it. DuckDB cannot be asked (a BEGIN inside
# a transaction aborts it), so the warehouse keeps the set.
_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
_DOOMED: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


def begin(con: duckdb.DuckDBPyConnection) -> None:
    """Open a unit of work's transaction on ``con``."""
    con.execute("BEGIN TRANSACTION")
    _OPEN.add(con)


def cut_short(exc: BaseException) -> bool:
    """Whether a database error only says a query was interrupted (Ctrl-C): the
    caller must let the interrupt go up, never take it for a problem of the data."""
    return isinstance(exc, duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()
    )


def end(con: duckdb.DuckDBPyConnection, *, commit: bool) -> None:
    """Commit or roll back the transaction :func:`begin` opened. A transaction in
    which a joined block failed is never committed, even if its caller went on."""
    _OPEN.discard(con)
    if commit and con in _DOOMED:
        _DOOMED.discard(con)
        con.execute("ROLLBACK")
        raise WarehouseError(
            "a step of this unit of work failed part-way, so none of it was saved."
        )
    _DOOMED.discard(con)
    con.execute("COMMIT" if commit else "ROLLBACK")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: commit when the block ends, roll back if anything escapes it.

    Inside a session's transaction the block joins it: the session commits or rolls
    back the whole unit of work."""
    if con in _OPEN:
        try:
            yield
        except BaseException:
            _DOOMED.add(con)  # its partial writes must not be committed later
            raise
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# The settings Backbone changes on a connection. ``SET`` takes no parameter in every
# DuckDB Backbone supports, so the name is checked here and the value quoted.
OPTIONS = frozenset(
    {
        "enable_external_access",
        "lock_configuration",
        "memory_limit",
        "preserve_insertion_order",
        "temp_directory",
        "threads",
    }
)


def set_option(con: duckdb.DuckDBPyConnection, name: str, value: SqlValue) -> None:
    """``SET name = value`` for one of :data:`OPTIONS`."""
    if name not in OPTIONS:
        raise ValueError(f"{name!r} is not an engine option Backbone sets")
    con.execute(f"SET {name} = {literal(value)}")


def next_id(con: duckdb.DuckDBPyConnection, sequence: str) -> int:
    """The next number of ``sequence`` (``schema.name``). Sequences never hand out a
    number twice, even when the transaction that drew it rolls back."""
    row = con.execute("SELECT nextval(?)", [sequence]).fetchone()
    assert row is not None
    return int(row[0])


def next_ids(con: duckdb.DuckDBPyConnection, sequence: str, count: int) -> list[int]:
    """The next ``count`` numbers of ``sequence``, ascending (not necessarily
    consecutive: hand them out from the list, never by arithmetic)."""
    rows = con.execute(
        "SELECT nextval(?) AS id FROM range(?) ORDER BY id", [sequence, count]
    ).fetchall()
    return [int(r[0]) for r in rows]


# What a stage asks of the engine beyond DB-API ``execute``/``fetch*``: results as
# Arrow, NumPy or pandas, Arrow tables visible to SQL under a name, a table made from
# a query. A second engine (Spark) fills these same functions.
Params: TypeAlias = "list[Any] | dict[str, Any] | None"


def _settled(con: Any) -> duckdb.DuckDBPyConnection:
    """The connection with no half-read result pending (see ``Handle._settled``)."""
    if isinstance(con, Handle):
        return con._settled()
    if isinstance(con, duckdb.DuckDBPyConnection):
        # a session's cursor, like the handle: a fetchone() may have left a result
        con.execute("SELECT 1").fetchall()
    return con  # type: ignore[no-any-return]


def arrow(con: Any, sql: str, params: Params = None) -> pa.Table:
    """The result of ``sql`` as an Arrow table."""
    return _settled(con).sql(sql, params=params).to_arrow_table()


def columns(con: Any, sql: str, params: Params = None) -> dict[str, np.ndarray]:
    """The result of ``sql`` as NumPy arrays by column name."""
    return _settled(con).execute(sql, params or []).fetchnumpy()


def frame(con: Any, sql: str, params: Params = None) -> pd.DataFrame:
    """The result of ``sql`` as a pandas frame (for statsmodels / scikit-learn)."""
    return _settled(con).sql(sql, params=params).df()


def register(con: Any, name: str, table: object) -> None:
    """Make an Arrow table (or frame) readable by SQL as ``name`` until
    :func:`unregister`; prefer :func:`registered`, which cannot forget."""
    _settled(con).register(name, table)


def unregister(con: Any, name: str) -> None:
    con.unregister(name)


@contextmanager
def registered(con: Any, **tables: object) -> Iterator[None]:
    """Tables readable by SQL under their keyword names for the block."""
    done: list[str] = []
    try:
        for name, table in tables.items():
            register(con, name, table)
            done.append(name)
        yield
    finally:
        for name in reversed(done):
            with suppress(duckdb.Error):
                con.unregister(name)


@contextmanager
def attached(con: Any, path: Path, alias: str) -> Iterator[None]:
    """Another database file readable, read-only, as ``alias`` for the block: a job's
    scratch results taken into the warehouse's transaction with no copy through
    memory, every type as it was. Attaching is transactional: a rollback undoes it."""
    _settled(con).execute(f"ATTACH {literal(str(path))} AS {ident(alias)} (READ_ONLY)")
    try:
        yield
    finally:
        with suppress(duckdb.Error):
            con.execute(f"DETACH {ident(alias)}")


def create_table_as(
    con: Any,
    name: str,
    sql: str,
    params: Params = None,
    *,
    replace: bool = False,
    temporary: bool = False,
) -> None:
    """``CREATE [OR REPLACE] [TEMP] TABLE name AS sql``; ``name`` already quoted
    (``qualified``/``ident``)."""
    head = "CREATE OR REPLACE" if replace else "CREATE"
    kind = "TEMP TABLE" if temporary else "TABLE"
    con.execute(f"{head} {kind} {name} AS {sql}", params or [])
