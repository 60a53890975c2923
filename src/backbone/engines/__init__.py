"""Where SQL runs. DuckDB is the embedded default."""

from backbone.engines.duckdb import connect

__all__ = ["connect"]
