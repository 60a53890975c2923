"""Backbone on Spark gives the answers it gives on DuckDB.

The seam's pure parts (the SQL translation, the exchange, the settings) are tested
without Spark; the rest runs on a real Spark: ``local[2]`` in this process, and a
standalone master and worker started as processes of their own. On the
hand-worked early-warning partnership and on the 4,000-student test community,
indicators computed on Spark equal DuckDB's value for value, linkage finds the same
persons, an evaluation publishes the same numbers; every job's exchange folder is
gone after it, and the audit log says where the work ran.
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from backbone import Warehouse
from backbone.engines.exchange import Exchange, sweep, this_host
from backbone.engines.offload import EngineChoice, offloaded
from backbone.engines.spark import spark_ddl
from backbone.engines.spark_sql import in_steps, tables_read, to_spark
from backbone.errors import SettingsError, UserError, WarehouseError
from backbone.measures.definitions import default_definitions
from backbone.measures.indicator_sql import persons_sql
from backbone.settings import Settings, render_settings_toml
from tests.demo_build import DemoBuild, copy_demo
from tests.early_warning_fixtures import NOW, build
from tests.signin import steward, steward_env
from tests.spark_cluster import connect_server, standalone_cluster

# py4j (Spark's bridge from Python to Java) leaves sockets for the collector
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)

# columns a computation stamps itself: not part of the answer
STAMPS = {"computed_at", "submission_id"}


def _spark(exchange: Path, master: str = "local[2]") -> EngineChoice:
    return EngineChoice("spark", master, "", str(exchange))


# --- the SQL, as strings ------------------------------------------------------------


def test_parameters_are_written_in_by_position_and_by_name() -> None:
    sql = "SELECT ? AS a, x FROM t WHERE list_contains(?, p) AND d <= ?"
    spark = to_spark(sql, [2026, ["d1", "o'b"], date(2026, 3, 2)])
    assert spark == (
        "SELECT 2026 AS a, x FROM t WHERE ARRAY_CONTAINS(ARRAY('d1', 'o\\'b'), p) "
        "AND d <= CAST('2026-03-02' AS DATE)"
    )
    assert (
        to_spark("SELECT $y AS y, $y + 1 AS z", {"y": 7}) == "SELECT 7 AS y, 7 + 1 AS z"
    )
    with pytest.raises(ValueError, match="parameters"):
        to_spark("SELECT ? AS a", [])
    with pytest.raises(ValueError, match="not given"):
        to_spark("SELECT $a AS a", {"b": 1})


def test_markers_are_filled_in_the_order_they_are_written() -> None:
    # the parse tree keeps a CTE and a LIMIT elsewhere than the text does
    sql = "WITH a AS (SELECT ? AS x) SELECT ? AS y, '?' AS q FROM a ORDER BY 1 LIMIT ?"
    assert to_spark(sql, [1, 2, 3]) == (
        "WITH a AS (SELECT 1 AS x) SELECT 2 AS y, '?' AS q FROM a "
        "ORDER BY 1 NULLS LAST LIMIT 3"
    )


def test_a_with_whose_ctes_cannot_stand_alone_runs_whole() -> None:
    for sql in (
        "WITH a(y, x) AS (SELECT x, y FROM t) SELECT x FROM a",  # a column list
        "WITH A AS (SELECT 1 AS x) SELECT * FROM a",  # names in another case
        "WITH RECURSIVE r AS (SELECT 1 AS n) SELECT * FROM r",
    ):
        assert [view for view, _, _ in in_steps(sql, None, {}, "p")] == [None]


def test_inputs_are_renamed_to_the_jobs_views_but_not_a_cte_of_that_name() -> None:
    sql = (
        "WITH enrollment AS (SELECT * FROM analytic.enrollment) "
        "SELECT * FROM enrollment e JOIN ref.school USING (school_id)"
    )
    views = {
        "analytic.enrollment": "j_enr",
        "ref.school": "j_school",
        "enrollment": "x",
    }
    assert to_spark(sql, tables=views) == (
        "WITH enrollment AS (SELECT * FROM j_enr AS enrollment) "
        "SELECT * FROM enrollment AS e JOIN j_school AS school USING (school_id)"
    )
    assert tables_read(sql) == {"analytic.enrollment", "ref.school"}


def test_a_with_runs_in_steps_each_cte_a_view_read_as_often_as_written() -> None:
    sql = (
        "WITH a AS (SELECT ? AS x), b AS (SELECT x FROM a), "
        "c AS (SELECT * FROM a JOIN b USING (x)) SELECT * FROM c, t"
    )
    steps = in_steps(sql, [5], {"t": "v_t"}, "p")
    assert steps == [
        ("p_a", "SELECT 5 AS x", 2),
        ("p_b", "SELECT x FROM p_a AS a", 1),
        ("p_c", "SELECT * FROM p_a AS a JOIN p_b AS b USING (x)", 1),
        (None, "SELECT * FROM p_c AS c, v_t AS t", 0),
    ]
    assert in_steps("SELECT 1 AS x", None, {}, "p") == [(None, "SELECT 1 AS x", 0)]


def test_an_engine_error_is_said_in_one_line_without_the_sql_around_it() -> None:
    from pyspark.errors import AnalysisException

    from backbone.engines.spark import is_engine_error, said

    try:
        try:
            raise AnalysisException(message="[TABLE_OR_VIEW_NOT_FOUND] t\n== plan ==")
        except AnalysisException as inner:  # as Splink wraps it, with its SQL
            raise RuntimeError("SELECT name FROM t WHERE secret") from inner
    except RuntimeError as wrapped:
        assert is_engine_error(wrapped)
        message = str(said(wrapped, "to score pairs"))
    assert message.startswith("Spark failed to score pairs: [TABLE_OR_VIEW_NOT_FOUND]")
    assert "SELECT" not in message and "\n" not in message
    assert not is_engine_error(ValueError("ours"))


def test_a_spark_nobody_answers_at_is_refused_at_once(tmp_path: Path) -> None:
    from backbone.engines.spark import session

    for choice in (
        EngineChoice("spark", "local[2]", "sc://127.0.0.1:1", str(tmp_path)),
        EngineChoice("spark", "spark://127.0.0.1:1", "", str(tmp_path)),
    ):
        started = time.monotonic()
        with pytest.raises(
            WarehouseError, match=r"no Spark answers at .*127\.0\.0\.1:1"
        ):
            session(choice)
        assert time.monotonic() - started < 5


def test_arrow_types_become_spark_ddl() -> None:
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us")),
            ("gpa", pa.decimal128(4, 2)),
            ("schools", pa.list_(pa.string())),
            ("odd`name", pa.bool_()),
        ]
    )
    assert spark_ddl(schema) == (
        "`id` BIGINT, `name` STRING, `day` DATE, `at` TIMESTAMP_NTZ, "
        "`gpa` DECIMAL(4,2), `schools` ARRAY<STRING>, `odd``name` BOOLEAN"
    )


# --- the exchange and the settings --------------------------------------------------


def test_the_exchange_is_partitioned_by_provider_and_school_year_and_swept(
    tmp_path: Path,
) -> None:
    rows = pa.table(
        {
            "provider_partner_id": ["d1", "d1", "d2"],
            "school_year": [2025, 2026, 2026],
            "student_local_id": ["a", "b", "c"],
        }
    )
    job = Exchange(str(tmp_path / "exchange"))
    job.put("analytic.enrollment", rows)
    folder = Path(job.path) / "in" / "analytic.enrollment"
    parts = sorted(
        p.relative_to(folder).parent.as_posix() for p in folder.rglob("*.parquet")
    )
    assert parts == [
        "provider_partner_id=d1/school_year=2025",
        "provider_partner_id=d1/school_year=2026",
        "provider_partner_id=d2/school_year=2026",
    ]
    assert oct(Path(job.path).stat().st_mode & 0o777) == "0o700"
    # a job whose process died leaves its folder: the next job (or retention) sweeps it
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    exchange = tmp_path / "exchange"
    left = exchange / f"job-{int(time.time())}-{this_host()}-{dead}-abcd1234"
    (left / "in").mkdir(parents=True)
    # another machine's job of today, and anything not a job's folder, stay
    elsewhere = exchange / f"job-{int(time.time())}-otherhost-{dead}-abcd1234"
    elsewhere.mkdir()
    (exchange / "notes").mkdir()
    assert sweep(str(exchange)) == 1
    assert not left.exists() and Path(job.path).exists()  # a live job stays
    assert elsewhere.exists() and (exchange / "notes").exists()
    job.remove()
    assert not Path(job.path).exists()


def test_retention_removes_what_a_dead_spark_job_left_in_the_exchange(
    tmp_path: Path,
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with Warehouse.init(tmp_path / "wh") as wh:
        name = f"job-{int(time.time())}-{this_host()}-{dead}-0a0b0c0d"
        left = tmp_path / "wh" / "exchange" / name
        (left / "in" / "analytic.enrollment").mkdir(parents=True)
        with wh.session() as s:
            wh.retention.run(s)
        assert not left.exists()
        entry = [e for e in wh.audit.entries() if e.action == "retention"][-1]
        assert entry.detail["exchange_jobs_removed"] == 1


def test_the_engine_comes_from_the_settings_and_a_run_may_override_it(
    tmp_path: Path,
) -> None:
    settings = Settings.defaults()
    choice = EngineChoice.of(settings, tmp_path)
    assert (choice.kind, choice.on_spark) == ("duckdb", False)
    spark = EngineChoice.of(settings, tmp_path, "spark")
    assert spark.on_spark and spark.spark_exchange == str(tmp_path / "exchange")
    assert spark.where() == "spark local[2]"
    with pytest.raises(UserError, match=r"--engine 'flink'.*duckdb, spark"):
        EngineChoice.of(settings, tmp_path, "flink")
    toml = tmp_path / "backbone.toml"
    toml.write_text('[engine]\nkind = "postgres"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"engine\.kind.*'duckdb', 'spark'"):
        Settings.load(toml)


# --- on Spark local[2] --------------------------------------------------------------


@pytest.fixture(scope="module")
def early(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("early") / "wh"
    build(path)
    return path


def _indicators(path: Path) -> pa.Table:
    con = duckdb.connect(str(path / "backbone.duckdb"), read_only=True)
    try:
        table = con.sql("SELECT * FROM analytic.student_indicator").to_arrow_table()
    finally:
        con.close()
    keep = [c for c in table.column_names if c not in STAMPS]
    order = [
        (c, "ascending")
        for c in keep
        if not pa.types.is_list(table.schema.field(c).type)
    ]
    return table.select(keep).sort_by(order)


def _compute(path: Path, engine: str | None, **kw: Any) -> None:
    with Warehouse.open(path, clock=lambda: NOW) as wh:
        principal = wh.users.get("steward")
        with wh.session(principal, purpose="early_warning") as s:
            wh.indicators.compute(
                s, wh.access(principal, "early_warning"), engine=engine, **kw
            )


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_indicators_on_spark_equal_duckdbs_on_the_hand_worked_partnership(
    early: Path, tmp_path: Path
) -> None:
    on_duckdb, on_spark = tmp_path / "duckdb", tmp_path / "spark"
    shutil.copytree(early, on_duckdb)
    shutil.copytree(early, on_spark)
    for path, engine in ((on_duckdb, None), (on_spark, "spark")):
        _compute(path, engine)  # every school year, at its end
        _compute(path, engine, as_of=date(2025, 8, 28))  # an in-year snapshot
    spark = _indicators(on_spark)
    assert spark.equals(_indicators(on_duckdb))
    # the hand-worked facts, from Spark's rows
    rows = {
        (r["provider_partner_id"], r["student_local_id"], r["as_of_date"]): r
        for r in spark.to_pylist()
    }
    a1 = rows[("d1", "a1", date(2026, 6, 30))]
    assert (a1["days_enrolled"], a1["days_absent"], a1["conduct_incidents"]) == (
        9,
        1.5,
        2,
    )
    b2 = rows[("d2", "b2", date(2026, 6, 30))]
    assert (b2["days_enrolled"], b2["days_absent"], b2["suspension_days"]) == (4, 2, 2)
    a3 = rows[("d1", "a3", date(2026, 6, 30))]
    assert (a3["gpa"], a3["cumulative_credits"], a3["state_offenses"]) == (1.9, 2.5, 1)
    assert rows[("d1", "a1", date(2025, 8, 28))]["days_enrolled"] == 4
    # the job's files are gone, and the audit entry says where it ran
    assert not any((on_spark / "exchange").iterdir())
    with Warehouse.open(on_spark, clock=lambda: NOW) as wh:
        entry = [e for e in wh.audit.entries() if e.action == "derive"][-1]
        assert entry.detail["engine"] == "spark local[2]"


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_per_person_indicators_on_spark_equal_duckdbs(
    early: Path, tmp_path: Path
) -> None:
    shutil.copytree(early, tmp_path / "wh")
    _compute(tmp_path / "wh", None)
    con = duckdb.connect()
    con.register("computed", _indicators(tmp_path / "wh"))
    con.execute(f"ATTACH '{tmp_path / 'wh' / 'backbone.duckdb'}' AS w (READ_ONLY)")
    # as a reader's roster combines them: per person (``unit``), identifiers beside
    con.execute(
        "CREATE TABLE components AS SELECT c.*, rp.person_id, rp.person_id AS unit "
        "FROM computed c JOIN w.identity.record_person rp "
        "ON rp.partner_id = c.provider_partner_id AND rp.local_id = c.student_local_id"
    )
    sql = persons_sql({1: default_definitions()}, "components")
    with offloaded(EngineChoice(), con, ["components"]) as here:
        expected = here.table(sql)
    with offloaded(_spark(tmp_path / "exchange"), con, ["components"]) as there:
        got = there.table(sql)
    order = [(c, "ascending") for c in ("unit", "school_year", "as_of_date")]
    assert got.num_rows == expected.num_rows > 0
    assert got.sort_by(order).equals(expected.sort_by(order))


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_a_job_reads_only_the_tables_its_stage_allowed(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE allowed AS SELECT 1 AS x")
    con.execute("CREATE TABLE secret AS SELECT 'name' AS n")
    exchange = tmp_path / "exchange"
    with offloaded(_spark(exchange), con, ["allowed"]) as run:
        assert run.table("SELECT x + 1 AS y FROM allowed").to_pylist() == [{"y": 2}]
        with pytest.raises(WarehouseError, match="may not read secret"):
            run.table("SELECT n FROM secret")
        # what went to the cluster: the allowed table alone
        sent = [p.name for job in exchange.iterdir() for p in (job / "in").iterdir()]
        assert sent == ["allowed"]
    assert list(exchange.iterdir()) == []


# --- the 4,000-student test community -----------------------------------------------


def _persons(path: Path) -> set[frozenset[tuple[str, str]]]:
    """The persons as sets of records (not their ids)."""
    con = duckdb.connect(str(path / "backbone.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT person_id, partner_id, local_id FROM identity.record_person "
            "ORDER BY person_id"
        ).fetchall()
    finally:
        con.close()
    return {
        frozenset((p, r) for _, p, r in group)
        for _, group in itertools.groupby(rows, key=lambda row: row[0])
    }


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_linkage_trained_on_spark_finds_the_persons_duckdb_finds(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    demo = copy_demo(demo_build, tmp_path / "demo")
    path = demo / "warehouse"
    with Warehouse.open(path) as wh:
        admin = steward(wh, "b00-backbone")
        on_duckdb = wh.linkage.evaluate(
            wh.access(admin, "identity_resolution"), demo / "community" / "truth"
        )
    before = _persons(path)
    with Warehouse.open(path) as wh:
        with wh.session(admin, purpose="identity_resolution") as s:
            summary = wh.linkage.run(s, retrain=True, engine="spark")
        on_spark = wh.linkage.evaluate(
            wh.access(admin, "identity_resolution"), demo / "community" / "truth"
        )
        entry = [e for e in wh.audit.entries() if e.action == "link"][-1]
    after = _persons(path)
    differing = sorted(tuple(sorted(p)) for p in before.symmetric_difference(after))
    assert summary.with_model and summary.records == on_spark.records
    assert abs(on_spark.pairwise_f1 - on_duckdb.pairwise_f1) <= 0.001, differing
    assert len(differing) <= 10, differing  # persons that differ, both ways
    assert entry.detail["engine"] == "spark local[2]"
    assert not any((path / "exchange").iterdir())


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_indicators_and_an_evaluation_on_spark_equal_duckdbs_on_the_community(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    demo = copy_demo(demo_build, tmp_path / "demo")
    path = demo / "warehouse"

    def compute(engine: str | None) -> pa.Table:
        with Warehouse.open(path) as wh:
            admin = steward(wh, "b00-backbone")
            with wh.session(admin, purpose="early_warning") as s:
                wh.indicators.compute(
                    s,
                    wh.access(admin, "early_warning"),
                    engine=engine,
                    school_years=[2026],
                )
        return _indicators(path)

    assert compute("spark").equals(compute(None))

    def evaluate(engine: str | None) -> dict[str, Any]:
        with Warehouse.open(path) as wh:
            access = wh.access(steward(wh, "b00-backbone"), "program_evaluation")
            report = wh.outcomes.evaluate(access, "INIT-ATTEND", engine=engine).report()
        report.pop("release_id", None)
        return report

    on_duckdb, on_spark = evaluate(None), evaluate("spark")
    # the same numbers; the last digits of a float may differ, summed in another order
    assert _same(on_spark, on_duckdb), (on_spark, on_duckdb)
    assert any(p["effects"] for p in on_spark["programs"])


def _same(a: object, b: object) -> bool:
    """Equal, floats to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, nan_ok=True)
    return a == b


def _backbone(path: Path, *args: str) -> str:
    """A ``backbone`` command of the demo's steward admin, in a process of its own,
    on the warehouse ``path``; what it printed."""
    with Warehouse.open(path) as wh:
        env = {**os.environ, **steward_env(wh, "b00-backbone"), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "backbone", *args, "-w", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _year(path: Path, school_year: int) -> pa.Table:
    table = _indicators(path)
    return table.filter(pa.compute.equal(table["school_year"], school_year))


def _on_spark(demo_build: DemoBuild, tmp_path: Path, **engine: str) -> Path:
    """A copy of the demo whose settings send the work to Spark (``engine``
    settings), linked again there with its saved model (``backbone link`` in a
    process of its own): the same persons, nothing left in the exchange."""
    path = copy_demo(demo_build, tmp_path / "demo") / "warehouse"
    before = _persons(path)
    settings = path / "backbone.toml"
    values = {**Settings.load(settings).values, **engine}
    settings.write_text(render_settings_toml(values), encoding="utf-8")
    assert "persons" in _backbone(path, "link", "--engine", "spark")
    assert _persons(path) == before  # the saved model, the same persons
    assert not any((path / "exchange").iterdir())
    return path


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_link_and_indicators_on_a_standalone_spark_cluster(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    with standalone_cluster(tmp_path / "cluster") as (master, processes):
        path = _on_spark(demo_build, tmp_path, **{"engine.spark_master": master})
        year = ("--school-year", "2026")
        _backbone(path, "indicators", "compute", "--engine", "spark", *year)
        on_spark = _year(path, 2026)
        # the work ran on the worker: an executor for each command's application
        log = (tmp_path / "cluster" / "worker.log").read_text()
        assert log.count("Asked to launch executor") == 2, log[-3000:]
    _backbone(path, "indicators", "compute", "--engine", "duckdb", *year)
    assert on_spark.equals(_year(path, 2026))
    assert not any((path / "exchange").iterdir())
    for process in processes:
        assert process.poll() is not None  # stopped


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_indicators_through_spark_connect(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    """The Connect path in make test; linking through it (Splink's functions from
    the server's jar) was measured by hand: bench/spark.py's notes in the README."""
    path = copy_demo(demo_build, tmp_path / "demo") / "warehouse"
    year = ("--school-year", "2026")
    with connect_server(tmp_path / "connect") as (url, server):
        settings = path / "backbone.toml"
        values = {**Settings.load(settings).values, "engine.spark_remote": url}
        settings.write_text(render_settings_toml(values), encoding="utf-8")
        _backbone(path, "indicators", "compute", "--engine", "spark", *year)
        on_spark = _year(path, 2026)
    assert server.poll() is not None  # stopped
    _backbone(path, "indicators", "compute", "--engine", "duckdb", *year)
    assert on_spark.equals(_year(path, 2026))
    assert not any((path / "exchange").iterdir())
    with Warehouse.open(path) as wh:
        entries = [e for e in wh.audit.entries() if e.action == "derive"]
        assert [e.detail.get("engine") for e in entries[-2:]] == [f"spark {url}", None]


@pytest.fixture(autouse=True, scope="module")
def _stop_spark() -> Iterator[None]:
    yield
    from backbone.engines import spark

    spark.stop()
    gc.collect()


@pytest.fixture(autouse=True)
def _py4j_sockets() -> Iterator[None]:
    """py4j drops the connections of threads that called Java unclosed; they are
    collected here, inside this module's filter, not during a later test."""
    yield
    gc.collect()
