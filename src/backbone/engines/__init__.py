"""Where SQL runs. DuckDB is the embedded default."""

from backbone.engines.duckdb import (
    begin,
    connect,
    end,
    next_id,
    next_ids,
    set_option,
    transaction,
)
from backbone.engines.sql import ident, literal, qualified

__all__ = [
    "begin",
    "connect",
    "end",
    "ident",
    "literal",
    "next_id",
    "next_ids",
    "qualified",
    "set_option",
    "transaction",
]
