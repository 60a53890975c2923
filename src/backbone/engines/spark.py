"""Where Spark runs: the only module that imports pyspark.

A job (:class:`SparkJob`) is one stage's use of the cluster: the tables the stage
decided the job may read go to the exchange as Parquet (partitioned by provider
and school year, :mod:`backbone.engines.exchange`) and are registered as views
under names of this job alone; the stage's DuckDB SQL runs translated
(:func:`backbone.engines.spark_sql.to_spark`); each result comes back through the
exchange, cast to the types DuckDB gives the same SQL, so a stage cannot tell
which engine answered. The job's folder is deleted when it ends.

One Spark session per process (starting one costs seconds): ``local[N]``, a
standalone master (``spark://host:7077``) or Spark Connect (``sc://host:15002``).
Splink's bundled similarity functions are on its class path.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa

from backbone.engines.exchange import Exchange
from backbone.engines.spark_sql import SPARK_FUNCTIONS, in_steps
from backbone.errors import UserError, WarehouseError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from backbone.engines.offload import EngineChoice

__all__ = [
    "SparkJob",
    "is_engine_error",
    "job",
    "register_functions",
    "said",
    "session",
    "spark_ddl",
    "stop",
]

_lock = threading.Lock()
_current: dict[str, Any] = {}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REACH_SECONDS = 10.0


def _similarity_jar() -> str:
    from splink.internals.spark.jar_location import similarity_jar_location

    return str(similarity_jar_location())


def _first_line(exc: BaseException) -> str:
    """An engine's error in one line: the Java cause's message where there is one
    (py4j's own says only which call failed)."""
    while type(exc).__module__.split(".")[0] not in ("pyspark", "py4j", "grpc"):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner  # the engine's own error, not a wrapper's (with its SQL)
    java = getattr(exc, "java_exception", None)
    text = str(java) if java is not None else str(exc)
    if "An error occurred while calling" in text and exc.__cause__ is not None:
        text = str(exc.__cause__)
    return (text.strip().splitlines() or [type(exc).__name__])[0][:500]


def is_engine_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from Spark (its Python side, py4j, a Connect call), or
    wraps such an error (Splink's, with its SQL)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if type(seen).__module__.split(".")[0] in ("pyspark", "py4j", "grpc"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def said(exc: BaseException, doing: str) -> WarehouseError:
    """Spark's error while ``doing``, in one line, for people."""
    return WarehouseError(f"Spark failed {doing}: {_first_line(exc)}")


def _on_this_machine(master: str) -> bool:
    return master.startswith("local") or urlparse(master).hostname in _LOOPBACK


def _reachable(url: str, default_port: int) -> None:
    """Refuse at once a master or Connect server nobody answers at (Spark's own
    clients retry for minutes)."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=REACH_SECONDS):
            pass
    except OSError as exc:
        raise WarehouseError(
            f"no Spark answers at {url} ({exc.strerror or exc}). Check "
            "engine.spark_remote / engine.spark_master and that the cluster runs."
        ) from None


def session(choice: EngineChoice) -> SparkSession:
    """The process's Spark session for ``choice`` (started once; another master's
    session is stopped first)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(
            "engine.kind 'spark' needs pyspark: install Backbone with its spark extra "
            "(pip install 'backbone[spark]'), and Java 17."
        ) from None

    key = choice.spark_remote or choice.spark_master
    if choice.spark_remote:
        _reachable(choice.spark_remote, 15002)
    elif choice.spark_master.startswith("spark://"):
        _reachable(choice.spark_master.split(",")[0], 7077)
    with _lock:
        if _current.get("key") == key:
            found: SparkSession = _current["session"]
            return found
        _stop_locked()
        logging.getLogger("py4j").setLevel(logging.WARNING)
        builder: Any = SparkSession.builder
        try:
            if choice.spark_remote:
                # the server has Splink's jar (`--jars`, see the README); SQL only
                spark = builder.remote(choice.spark_remote).getOrCreate()
            else:
                builder = (
                    builder.master(choice.spark_master)
                    .appName("backbone")
                    .config("spark.jars", _similarity_jar())
                    .config("spark.driver.memory", choice.spark_driver_memory)
                    .config("spark.ui.enabled", "false")
                    .config("spark.ui.showConsoleProgress", "false")
                )
                if _on_this_machine(choice.spark_master):
                    builder = builder.config(
                        "spark.driver.bindAddress", "127.0.0.1"
                    ).config("spark.driver.host", "127.0.0.1")
                if choice.spark_master.startswith("local"):
                    builder = builder.config("spark.sql.shuffle.partitions", "8")
                spark = builder.getOrCreate()
                spark.sparkContext.setLogLevel("ERROR")
            # DuckDB's semantics where Spark's differ: times without zones, NULL
            # (not an error) for a division by zero, timestamps as DuckDB reads them
            # (a Connect session reaches its server only here)
            for name, value in (
                ("spark.sql.session.timeZone", "UTC"),
                ("spark.sql.ansi.enabled", "false"),
                ("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"),
                ("spark.sql.timestampType", "TIMESTAMP_NTZ"),
            ):
                spark.conf.set(name, value)
        except Exception as exc:  # Java missing, master unreachable: say which
            raise WarehouseError(
                f"Spark did not start at {key} ({_first_line(exc)}). "
                "Check engine.spark_master / engine.spark_remote, that the cluster "
                "runs, and that Java 17 is installed."
            ) from None
        _current.update(key=key, session=spark)
        started: SparkSession = spark
        return started


def stop() -> None:
    """Stop the process's Spark session, if any."""
    with _lock:
        _stop_locked()


def _stop_locked() -> None:
    spark = _current.pop("session", None)
    _current.pop("key", None)
    if spark is not None:
        with suppress(Exception):
            spark.stop()


_SIMPLE = {
    pa.string(): "STRING",
    pa.large_string(): "STRING",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.uint8(): "SMALLINT",
    pa.uint16(): "INT",
    pa.uint32(): "BIGINT",
    pa.uint64(): "DECIMAL(20,0)",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
    pa.binary(): "BINARY",
    pa.large_binary(): "BINARY",
    pa.null(): "STRING",
}


def _spark_type(t: pa.DataType) -> str:
    if t in _SIMPLE:
        return _SIMPLE[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if t.tz else "TIMESTAMP_NTZ"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"ARRAY<{_spark_type(t.value_type)}>"
    if pa.types.is_struct(t):
        fields = ", ".join(
            f"`{f.name.replace('`', '``')}`: {_spark_type(f.type)}" for f in t
        )
        return f"STRUCT<{fields}>"
    raise WarehouseError(f"a column of type {t} cannot go to Spark")


def spark_ddl(schema: pa.Schema) -> str:
    """An Arrow schema as Spark's DDL (``\\`a\\` BIGINT, ...``)."""
    return ", ".join(
        f"`{f.name.replace('`', '``')}` {_spark_type(f.type)}" for f in schema
    )


def _cast_like(table: pa.Table, like: pa.Schema) -> pa.Table:
    """Spark's result with DuckDB's columns and types for the same SQL (both give
    the columns in the statement's order; names are compared as Spark folds them)."""
    got = [name.lower() for name in table.column_names]
    want = [field.name.lower() for field in like]
    if got != want:
        raise WarehouseError(
            "Spark's result has other columns than DuckDB's for the same SQL "
            f"({', '.join(table.column_names)} against {', '.join(like.names)})"
        )
    columns = [
        column.cast(field.type, safe=False)
        for column, field in zip(table.columns, like, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=like)


class SparkJob:
    """One stage's job on Spark: inputs through the exchange, SQL, results back."""

    def __init__(self, choice: EngineChoice) -> None:
        self.spark = session(choice)
        self.exchange = Exchange(choice.spark_exchange)
        self._tag = "bb_" + secrets.token_hex(4)
        self.views: dict[str, str] = {}
        self._temporary: list[str] = []
        self._results = 0
        self._steps = 0
        if not choice.spark_remote:
            # Splink breaks long lineages by writing tables here: in the job's
            # folder, which the cluster reaches and which is deleted with it
            self.spark.sparkContext.setCheckpointDir(self.exchange.uri("checkpoints"))

    def put(self, name: str, rows: pa.Table | pa.RecordBatchReader) -> DataFrame:
        """``rows`` readable by the job's SQL as ``name`` (``schema.table`` or a
        plain name), through the exchange."""
        schema = rows.schema
        safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
        uri = self.exchange.put(safe, rows)
        ddl = spark_ddl(schema)
        try:
            if self.exchange.empty(safe):
                frame = self.spark.createDataFrame([], ddl)
            else:
                # partition columns come last from the files: put them back
                frame = self.spark.read.schema(ddl).parquet(uri)
                frame = frame.select(
                    *[f"`{c.replace('`', '``')}`" for c in schema.names]
                )
        except Exception as exc:
            if not is_engine_error(exc):
                raise
            raise said(exc, f"to read {name} from the exchange") from exc
        view = f"{self._tag}_{safe}"
        frame.createOrReplaceTempView(view)
        self.views[name] = view
        return frame

    def sql(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> DataFrame:
        """DuckDB SQL over the job's inputs, as a Spark frame."""
        self._steps += 1
        try:
            frame = None
            for view, text, reads in in_steps(
                sql, params, self.views, f"{self._tag}_s{self._steps}"
            ):
                frame = self.spark.sql(text)
                if view is not None:
                    if reads > 1:  # computed once, its lineage cut
                        frame = frame.localCheckpoint(eager=True)
                    frame.createOrReplaceTempView(view)
                    self._temporary.append(view)
            assert frame is not None
            return frame
        except Exception as exc:  # Spark's analysis error: one line, no trace
            if not is_engine_error(exc):
                raise
            raise said(exc, "to run the job's SQL") from exc

    def arrow(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        like: pa.Schema | None = None,
    ) -> pa.Table:
        """The result of DuckDB SQL run on Spark, back through the exchange (cast
        like ``like``, DuckDB's schema of the same SQL)."""
        return self.take(self.sql(sql, params), like=like)

    def take(self, frame: DataFrame, *, like: pa.Schema | None = None) -> pa.Table:
        """A Spark frame's rows, written by the cluster to the exchange and read
        back here."""
        self._results += 1
        name = f"result{self._results}"
        try:
            frame.write.parquet(self.exchange.out(name))
        except Exception as exc:  # the cluster's error, said in one line
            if not is_engine_error(exc):
                raise
            raise said(exc, "running the job") from exc
        table = self.exchange.take(name)
        if like is None:
            return table
        if not table.num_rows:
            return like.empty_table()
        return _cast_like(table, like)

    def close(self) -> None:
        for view in [*self.views.values(), *self._temporary]:
            with suppress(Exception):
                self.spark.catalog.dropTempView(view)
        if not self.exchange.remove():
            # the rows stay where the cluster can read them: say so, loudly
            raise WarehouseError(
                f"could not delete the job's files {self.exchange.path} from the "
                "Spark exchange; delete them (or run `backbone retention run`)."
            )


@contextmanager
def job(choice: EngineChoice) -> Iterator[SparkJob]:
    """A Spark job whose exchange folder is removed when it ends, however it ends."""
    work = SparkJob(choice)
    try:
        yield work
    except Exception:
        with suppress(WarehouseError):  # the job's own error is the one to tell
            work.close()
        raise
    work.close()


def register_functions(
    spark: SparkSession, names: Mapping[str, str] = SPARK_FUNCTIONS
) -> None:
    """The Java functions the translated SQL calls by sqlglot's names."""
    from pyspark.sql.types import DoubleType

    for name, java_class in names.items():
        spark.udf.registerJavaFunction(name.lower(), java_class, DoubleType())
