"""Opening the warehouse's DuckDB database with the warehouse's settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from backbone.errors import WarehouseError
from backbone.settings import Settings

__all__ = ["connect", "transaction"]


def connect(
    database: Path | str, settings: Settings, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Connect, turning DuckDB's lock and I/O errors into sentences for people."""
    config: dict[str, str | bool | int | float | list[str]] = {}
    if settings["engine.threads"]:
        config["threads"] = settings["engine.threads"]
    if settings["engine.memory_limit"]:
        config["memory_limit"] = settings["engine.memory_limit"]
    try:
        return duckdb.connect(str(database), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise WarehouseError(
                f"The warehouse database {database} is in use by another process. "
                "Wait for it to finish, or stop it, then try again."
            ) from None
        raise WarehouseError(f"Cannot open {database}: {text}") from None
    except duckdb.InvalidInputException as exc:
        raise WarehouseError(
            f"{database} is not a DuckDB database Backbone can read ({exc})."
        ) from None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: commit when the block ends, roll back if anything escapes it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
