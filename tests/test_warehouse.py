import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from backbone import Warehouse
from backbone.errors import NotAWarehouseError, SchemaVersionError, WarehouseError
from backbone.model.migrations import CURRENT_VERSION, migrate
from backbone.settings import render_settings_toml


def test_init_lays_out_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "wh"
    with Warehouse.init(path, name="Northside Partnership") as wh:
        assert wh.schema_version == CURRENT_VERSION
        assert wh.settings["warehouse.name"] == "Northside Partnership"
    for name in ("backbone.toml", "backbone.duckdb", "raw", "agreements", "mappings"):
        assert (path / name).exists(), name
    assert (path / "raw").is_dir()


def test_info_lists_tables_with_row_counts(warehouse: Warehouse) -> None:
    facts = warehouse.info()
    tables = {t.name: t.rows for t in facts.tables}
    assert tables["analytic.attendance_event"] == 0
    assert tables["ref.descriptor"] > 50
    assert facts.partners == []
    assert facts.database_bytes > 0
    assert facts.created_at is not None


def test_reopening_keeps_data(tmp_path: Path) -> None:
    from backbone.partners import Partner

    with Warehouse.init(tmp_path / "wh") as wh:
        wh.partners.add(Partner("d1", "District One", "school_district"))
    with Warehouse.open(tmp_path / "wh", read_only=True) as wh:
        assert [p.partner_id for p in wh.partners.list()] == ["d1"]


def test_init_refuses_an_existing_warehouse(tmp_path: Path) -> None:
    Warehouse.init(tmp_path / "wh").close()
    with pytest.raises(WarehouseError, match="already a Backbone warehouse"):
        Warehouse.init(tmp_path / "wh")


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(WarehouseError, match="not empty"):
        Warehouse.init(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_open_missing_folder_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(NotAWarehouseError, match="backbone init"):
        Warehouse.open(tmp_path / "nowhere")


def test_open_foreign_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(NotAWarehouseError, match="not a Backbone warehouse"):
        Warehouse.open(tmp_path)


def test_default_location_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Warehouse.init(tmp_path / "envwh").close()
    monkeypatch.setenv("BACKBONE_WAREHOUSE", str(tmp_path / "envwh"))
    with Warehouse.open() as wh:
        assert wh.path == tmp_path / "envwh"


def _old_warehouse(path: Path, version: int) -> None:
    path.mkdir()
    (path / "backbone.toml").write_text(render_settings_toml(), encoding="utf-8")
    con = duckdb.connect(str(path / "backbone.duckdb"))
    migrate(con, target=version)
    con.close()


def test_opening_an_older_warehouse_migrates_it(tmp_path: Path) -> None:
    path = tmp_path / "old"
    _old_warehouse(path, version=1)
    with Warehouse.open(path) as wh:
        assert wh.schema_version == CURRENT_VERSION
        versions = [
            r[0]
            for r in wh._con.execute(
                "SELECT version FROM ops.schema_migration ORDER BY version"
            ).fetchall()
        ]
        assert versions == list(range(1, CURRENT_VERSION + 1))
        assert wh._con.execute("SELECT count(*) FROM ref.calendar_date").fetchone() == (
            0,
        )


def test_read_only_open_of_an_older_warehouse_asks_for_a_write_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old"
    _old_warehouse(path, version=1)
    with pytest.raises(WarehouseError, match="open it once for writing"):
        Warehouse.open(path, read_only=True)


def test_a_newer_warehouse_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new"
    Warehouse.init(path).close()
    con = duckdb.connect(str(path / "backbone.duckdb"))
    con.execute("UPDATE ops.meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = (path / "backbone.duckdb").read_bytes()
    with pytest.raises(
        SchemaVersionError, match=r"schema version 99.*Upgrade Backbone"
    ):
        Warehouse.open(path)
    assert (path / "backbone.duckdb").read_bytes() == before


def test_a_warehouse_in_use_by_another_process_gets_a_clear_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy"
    Warehouse.init(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from backbone import Warehouse
                wh = Warehouse.open({str(path)!r})
                print("ready", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseError, match="in use by another process"):
            Warehouse.open(path)
    finally:
        holder.communicate("\n", timeout=30)
