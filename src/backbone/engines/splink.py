"""Where Splink runs. The only module that chooses a Splink backend.

Linkage runs in a scratch DuckDB database beside the warehouse (on disk, with the
warehouse's memory cap, spilling to a temp directory) so that Splink's many
intermediate tables never touch the warehouse database. On Spark
(:func:`model_place`), the model's training and scoring run on the cluster over the
linkage input sent through the exchange (its matching fields, no local or state
ids), with Splink's Spark backend and its bundled similarity functions; the scored
pairs come back to the scratch database, where clustering and the constraints run
as on DuckDB. The model's SQL is written in DuckDB's dialect; Splink translates it
with sqlglot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from backbone.engines.duckdb import create_table_as, registered, set_option
from backbone.engines.sql import ident

if TYPE_CHECKING:
    from splink.internals.database_api import DatabaseAPISubClass
    from splink.internals.duckdb.database_api import DuckDBAPI
    from splink.internals.splink_dataframe import SplinkDataFrame

    from backbone.engines.offload import EngineChoice

__all__ = ["ModelPlace", "model_place", "scratch_api"]

_SCORED = (
    "CAST(unique_id_l AS BIGINT) AS unique_id_l, "
    "CAST(unique_id_r AS BIGINT) AS unique_id_r, "
    "CAST(match_weight AS DOUBLE) AS match_weight, "
    "CAST(match_probability AS DOUBLE) AS match_probability"
)


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


@dataclass
class ModelPlace:
    """Where the model trains and scores: ``api`` (Splink's), ``records`` (the
    linkage input as that API takes it), ``count`` records."""

    api: DatabaseAPISubClass
    records: Any
    count: int
    _scratch: duckdb.DuckDBPyConnection
    _job: Any = None

    def scored(self, predictions: SplinkDataFrame, out: str, at_least: float) -> int:
        """Create ``out(unique_id_l, unique_id_r, match_weight, match_probability)``
        in the scratch database: the scored pairs with a probability of at least
        ``at_least``. Returns how many pairs were scored in all."""
        if self._job is None:
            table = predictions.physical_name
            n = int(
                self._scratch.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            )
            create_table_as(
                self._scratch,
                ident(out),
                f"SELECT {_SCORED} FROM {table} WHERE match_probability >= ?",
                [at_least],
            )
        else:
            frame = predictions.as_spark_dataframe()
            n = int(frame.count())
            kept = frame.where(frame["match_probability"] >= at_least).select(
                "unique_id_l", "unique_id_r", "match_weight", "match_probability"
            )
            with registered(self._scratch, spark_scored=self._job.take(kept)):
                create_table_as(
                    self._scratch, ident(out), f"SELECT {_SCORED} FROM spark_scored"
                )
        predictions.drop_table_from_database_and_remove_from_cache()
        return n


@contextmanager
def model_place(
    choice: EngineChoice,
    scratch: DuckDBAPI,
    table: str,
    columns: Sequence[str],
    where: str = "",
) -> Iterator[ModelPlace]:
    """Where Splink works on ``table`` of the scratch database: there, or on Spark
    (only ``columns`` of its rows that meet ``where`` sent, through the exchange,
    removed after)."""
    con = scratch.duckdb_con
    if not choice.on_spark:
        n = int(con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0])
        yield ModelPlace(scratch, table, n, con)
        return
    from splink.internals.spark.database_api import SparkAPI

    from backbone.engines import spark

    rows_sql = f"SELECT {', '.join(ident(c) for c in columns)} FROM {ident(table)}" + (
        f" WHERE {where}" if where else ""
    )
    n = int(con.execute(f"SELECT count(*) FROM ({rows_sql})").fetchall()[0][0])
    with spark.job(choice) as job:
        rows = con.sql(rows_sql).to_arrow_reader()
        frame = job.put(table, rows)
        try:
            spark.register_functions(job.spark)
            api = SparkAPI(  # type: ignore[no-untyped-call]
                spark_session=job.spark,
                # Spark Connect has no checkpoint directory: keep tables in memory
                break_lineage_method="persist" if choice.spark_remote else "parquet",
            )
            yield ModelPlace(api, frame, n, con, job)
        except Exception as exc:  # Spark's (or Splink's on Spark): in one line
            if not spark.is_engine_error(exc):
                raise
            raise spark.said(exc, "to train or score the linkage model") from exc
