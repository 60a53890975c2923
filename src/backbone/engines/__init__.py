"""Where SQL runs. DuckDB is the embedded default."""

from backbone.engines.duckdb import connect, transaction

__all__ = ["connect", "transaction"]
