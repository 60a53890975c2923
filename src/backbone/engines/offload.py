"""The engine seam for the heavy stages: which engine a run uses, and SQL over a
set of tables run there.

A stage builds its SQL once, in DuckDB's dialect, and asks :func:`offloaded` for a
runner over the tables the stage has decided the job may read (in a DuckDB
database it holds: a scratch copy, the release gate's locked database). On DuckDB
the SQL runs right there. On Spark the tables go to the exchange and the SQL runs
on the cluster (:mod:`backbone.engines.spark`); the results come back with the
types DuckDB gives the same SQL. Stages never learn which engine answered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from backbone.engines.duckdb import Connection, arrow, frame, registered
from backbone.engines.sql import qualified
from backbone.errors import UserError, WarehouseError
from backbone.settings import ENGINE_KINDS, Settings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["EngineChoice", "Params", "Runner", "offloaded"]

Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None


def _given(params: Params) -> Any:
    """Parameters as DuckDB takes them (a list in order, or a dict by name)."""
    if params is None:
        return None
    return dict(params) if isinstance(params, Mapping) else list(params)


@dataclass(frozen=True)
class EngineChoice:
    """Where a run's heavy work goes (``engine.*`` settings, ``--engine``)."""

    kind: str = "duckdb"
    spark_master: str = "local[2]"
    spark_remote: str = ""
    spark_exchange: str = ""
    spark_driver_memory: str = "4g"

    @classmethod
    def of(
        cls, settings: Settings, folder: Path, kind: str | None = None
    ) -> EngineChoice:
        """The warehouse's choice (``kind`` overrides ``engine.kind`` for a run);
        the exchange defaults to the warehouse's own ``exchange`` folder."""
        kind = kind or str(settings["engine.kind"])
        if kind not in ENGINE_KINDS:
            raise UserError(
                f"--engine {kind!r} is not an engine Backbone runs on; use one of "
                f"{', '.join(ENGINE_KINDS)}."
            )
        return cls(
            kind=kind,
            spark_master=str(settings["engine.spark_master"]),
            spark_remote=str(settings["engine.spark_remote"]),
            spark_exchange=str(settings["engine.spark_exchange"])
            or str(Path(folder) / "exchange"),
            spark_driver_memory=str(settings["engine.spark_driver_memory"]),
        )

    @property
    def on_spark(self) -> bool:
        return self.kind == "spark"

    def where(self) -> str:
        """Where it runs, for people and the audit log."""
        if not self.on_spark:
            return "duckdb"
        return f"spark {self.spark_remote or self.spark_master}"


class Runner(Protocol):
    """SQL (DuckDB's dialect) over the tables a stage gave the job."""

    def table(self, sql: str, params: Params = None) -> pa.Table: ...

    def frame(self, sql: str, params: Params = None) -> pd.DataFrame: ...


class _Here:
    def __init__(self, con: Connection) -> None:
        self._con = con

    def table(self, sql: str, params: Params = None) -> pa.Table:
        return arrow(self._con, sql, _given(params))

    def frame(self, sql: str, params: Params = None) -> pd.DataFrame:
        return frame(self._con, sql, _given(params))


class _OnSpark:
    def __init__(self, con: Connection, job: Any, allowed: Sequence[str]) -> None:
        self._con = con
        self._job = job
        self._allowed = set(allowed)

    def _send(self, sql: str) -> None:
        """Put the tables ``sql`` reads in the exchange, once each: only tables
        the stage allowed the job (a statement reading another is refused)."""
        from backbone.engines.spark_sql import tables_read  # sqlglot: only here

        wanted = tables_read(sql) - set(self._job.views)
        refused = wanted - self._allowed
        if refused:
            raise WarehouseError(
                f"a job on Spark may not read {', '.join(sorted(refused))}: only "
                f"{', '.join(sorted(self._allowed))}"
            )
        for name in sorted(wanted):
            rows = self._con.sql(
                f"SELECT * FROM {qualified(*name.split('.'))}"
            ).to_arrow_reader()
            self._job.put(name, rows)

    def table(self, sql: str, params: Params = None) -> pa.Table:
        self._send(sql)
        # DuckDB's own types for this SQL (planned, not run), so a result from
        # Spark is the result DuckDB would give, type for type
        like = arrow(
            self._con,
            f"SELECT * FROM ({sql}) LIMIT 0",
            _given(params),
        ).schema
        result: pa.Table = self._job.arrow(sql, params, like=like)
        return result

    def frame(self, sql: str, params: Params = None) -> pd.DataFrame:
        # through DuckDB, so the frame's dtypes are those DuckDB gives (a DECIMAL
        # as float64, not Python decimals)
        with registered(self._con, spark_result=self.table(sql, params)):
            return frame(self._con, "SELECT * FROM spark_result")


@contextmanager
def offloaded(
    choice: EngineChoice, con: Connection, tables: Sequence[str]
) -> Iterator[Runner]:
    """A runner of SQL over ``tables`` (``schema.table`` or plain names) of ``con``:
    ``con`` itself on DuckDB; on Spark, of those tables the ones the SQL reads sent
    to the exchange (no other may be read), and deleted from it when the block
    ends."""
    if not choice.on_spark:
        yield _Here(con)
        return
    from backbone.engines import spark  # pyspark loads only for a Spark run

    with spark.job(choice) as job:
        yield _OnSpark(con, job, tables)
