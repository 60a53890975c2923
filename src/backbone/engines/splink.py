"""Where Splink runs. The only module that chooses a Splink backend.

Linkage runs in a scratch DuckDB database beside the warehouse (on disk, with the
warehouse's memory cap, spilling to a temp directory) so that Splink's many
intermediate tables never touch the warehouse database. To link on Spark, return
``SparkAPI(spark_session=...)`` here; the model's SQL is written in DuckDB's
dialect and Splink translates it with sqlglot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from backbone.engines.duckdb import set_option

if TYPE_CHECKING:
    from splink.internals.duckdb.database_api import DuckDBAPI

__all__ = ["scratch_api"]


def scratch_api(folder: Path, *, threads: int = 0, memory_limit: str = "") -> DuckDBAPI:
    """A Splink database API over a fresh scratch database in ``folder``."""
    from splink.internals.duckdb.database_api import DuckDBAPI  # heavy: only to link

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(folder / "linkage.duckdb"))
    if threads:
        set_option(con, "threads", int(threads))
    if memory_limit:
        set_option(con, "memory_limit", memory_limit)
    set_option(con, "temp_directory", str(folder / "spill"))
    set_option(con, "preserve_insertion_order", False)
    return DuckDBAPI(connection=con)
