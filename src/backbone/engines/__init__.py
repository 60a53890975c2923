"""Where SQL runs. DuckDB is the embedded default."""

from backbone.engines.duckdb import (
    Connection,
    EngineError,
    begin,
    connect,
    end,
    next_id,
    next_ids,
    scratch,
    set_option,
    transaction,
)
from backbone.engines.sql import ident, literal, qualified

__all__ = [
    "Connection",
    "EngineError",
    "begin",
    "connect",
    "end",
    "ident",
    "literal",
    "next_id",
    "next_ids",
    "qualified",
    "scratch",
    "set_option",
    "transaction",
]
