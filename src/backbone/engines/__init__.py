"""Where SQL runs. DuckDB is the embedded default."""

from backbone.engines.duckdb import begin, connect, end, transaction

__all__ = ["begin", "connect", "end", "transaction"]
