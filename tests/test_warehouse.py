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
from backbone.warehouse import SchemaMigration


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

    with Warehouse.init(tmp_path / "wh") as wh, wh.session() as s:
        wh.partners.add(s, Partner("d1", "District One", "school_district"))
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


def test_an_older_warehouse_is_migrated_by_the_explicit_step(tmp_path: Path) -> None:
    path = tmp_path / "old"
    _old_warehouse(path, version=1)
    with pytest.raises(WarehouseError, match="run `backbone migrate"):
        Warehouse.open(path)  # opening changes nothing
    assert Warehouse.migrate(path) == SchemaMigration(1, CURRENT_VERSION)
    assert not Warehouse.migrate(path).changed
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


def test_read_only_open_of_an_older_warehouse_asks_for_the_migration(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old"
    _old_warehouse(path, version=1)
    with pytest.raises(WarehouseError, match="backbone migrate"):
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


def _hold(path: Path, seconds: float | None = None) -> subprocess.Popen[str]:
    """Another process holding the warehouse for writing, until told (or a while)."""
    release = f"time.sleep({seconds})" if seconds else "sys.stdin.readline()"
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
                {release}
                wh.close()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def _wait_setting(path: Path, seconds: int) -> None:
    toml = path / "backbone.toml"
    toml.write_text(
        toml.read_text().replace(
            "lock_wait_seconds = 600", f"lock_wait_seconds = {seconds}"
        )
    )


def test_a_warehouse_held_too_long_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "busy"
    Warehouse.init(path).close()
    _wait_setting(path, 1)
    holder = _hold(path)
    try:
        heard: list[str] = []
        with pytest.raises(WarehouseError, match=r"held by .*process \d+.*gave up"):
            Warehouse.open(path, on_wait=heard.append)
        assert len(heard) == 1 and "Waiting for the warehouse" in heard[0]
        # readers wait for the writer too, and are told the same way
        with pytest.raises(WarehouseError, match="gave up"):
            Warehouse.open(path, read_only=True)
    finally:
        holder.communicate("\n", timeout=30)


def test_a_command_waits_for_the_writer_then_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "busy"
    Warehouse.init(path).close()
    holder = _hold(path, seconds=1.5)
    heard: list[str] = []
    with Warehouse.open(path, on_wait=heard.append) as wh:
        assert wh.schema_version == CURRENT_VERSION
    assert heard and "in use by" in heard[0]
    holder.communicate(timeout=30)


def test_a_long_job_hands_the_file_back_while_it_computes(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    Warehouse.init(path, name="Shared").close()
    reader = textwrap.dedent(
        f"""
        from backbone import Warehouse
        with Warehouse.open({str(path)!r}, read_only=True) as wh:
            print(wh.info().name)
        """
    )
    with Warehouse.open(path) as wh:
        with wh.released():
            # the file is free: another process reads it meanwhile, no waiting
            done = subprocess.run(
                [sys.executable, "-c", reader],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "Shared"
        # and the stages carry on with the file taken back
        assert wh.info().name == "Shared"
        with (
            wh.session(),
            pytest.raises(WarehouseError, match="unit of work"),
            wh.released(),
        ):
            pass


def test_a_unit_of_work_pauses_between_its_reads_and_its_writes(
    tmp_path: Path,
) -> None:
    from backbone.partners import Partner

    path = tmp_path / "paused"
    Warehouse.init(path, name="Paused").close()
    reader = textwrap.dedent(
        f"""
        from backbone import Warehouse
        with Warehouse.open({str(path)!r}, read_only=True) as wh:
            print(len(wh.partners.list()))
        """
    )
    with Warehouse.open(path) as wh, wh.session() as s:
        with s.released():
            done = subprocess.run(
                [sys.executable, "-c", reader],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "0"
        wh.partners.add(s, Partner("d1", "District One", "school_district"))
        with pytest.raises(WarehouseError, match="has written"), s.released():
            pass
    with Warehouse.open(path, read_only=True) as wh:
        # the write after the pause committed with the unit of work
        assert [p.partner_id for p in wh.partners.list()] == ["d1"]


def test_the_audit_chain_has_one_head_while_a_unit_of_work_is_open(
    tmp_path: Path,
) -> None:
    import threading

    from backbone.governance import AuditEntry
    from backbone.partners import Partner

    with Warehouse.init(tmp_path / "wh") as wh:
        # another thread's entry waits for the unit of work; this thread's joins it
        other = threading.Thread(
            target=lambda: wh.audit.append(AuditEntry("login", "someone"))
        )
        with wh.session() as s:
            wh.partners.add(s, Partner("d1", "District One", "school_district"))
            other.start()
            wh.audit.append(AuditEntry("read", "reader", what="a read"))
            other.join(timeout=0.5)
            assert other.is_alive()  # still waiting for the unit to end
        other.join(timeout=30)
        assert wh.audit.verify().ok
        assert [e["action"] for e in wh.audit.entries()] == ["partner", "read", "login"]
        # a unit that rolls back keeps the reads it made, not its changes
        with pytest.raises(RuntimeError), wh.session() as s:
            wh.partners.add(s, Partner("d2", "District Two", "school_district"))
            wh.audit.append(AuditEntry("read", "reader", what="another read"))
            raise RuntimeError("interrupted")
        assert wh.audit.verify().ok
        assert [e["what"] for e in wh.audit.entries()][-1] == "another read"
        assert [p.partner_id for p in wh.partners.list()] == ["d1"]


def test_a_failed_step_inside_a_unit_of_work_saves_none_of_it(tmp_path: Path) -> None:
    from backbone.engines import transaction
    from backbone.partners import Partner

    with Warehouse.init(tmp_path / "wh") as wh:
        with (
            pytest.raises(WarehouseError, match="none of it was saved"),
            wh.session() as s,
        ):
            wh.partners.add(s, Partner("d1", "District One", "school_district"))
            try:
                with transaction(s.con):
                    s.con.execute("DELETE FROM ref.partner")
                    raise ValueError("half done")
            except ValueError:
                pass  # a caller that carries on must not commit the half
        assert wh.partners.list() == []


def test_an_undone_step_keeps_the_reads_it_recorded_once(tmp_path: Path) -> None:
    """A submission refused after its receipt undoes its step; a read the unit
    recorded before stays on the chain, once, and the unit goes on."""
    from backbone.governance import AuditEntry
    from backbone.partners import Partner

    with Warehouse.init(tmp_path / "wh") as wh:
        with wh.session() as s:
            wh.audit.append(AuditEntry("read", "reader", what="a roster read"))
            wh.partners.add(s, Partner("d1", "District One", "school_district"))
            s.step(commit=False)
            wh.partners.add(s, Partner("d2", "District Two", "school_district"))
        assert wh.audit.verify().ok
        whats = [e["what"] for e in wh.audit.entries()]
        assert whats.count("a roster read") == 1
        assert [p.partner_id for p in wh.partners.list()] == ["d2"]


def test_files_a_killed_unit_left_waiting_are_swept_by_the_next(
    tmp_path: Path,
) -> None:
    """kill -9 while a unit of work holds a file for its commit: the file never
    reaches its place, and the next unit of work removes what was left waiting."""
    import os
    import signal

    from backbone.session import PENDING_FOLDER

    Warehouse.init(tmp_path / "wh").close()
    target = tmp_path / "wh" / "linkage" / "model.json"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from backbone import Warehouse
        with Warehouse.open({str(tmp_path / "wh")!r}) as wh, wh.session() as s:
            s.write_file(Path({str(target)!r}), "a model")
            print("written aside", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "written aside\n"
    waiting = tmp_path / "wh" / PENDING_FOLDER
    assert [p.read_text() for p in waiting.iterdir()] == ["a model"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert not target.exists()
    with Warehouse.open(tmp_path / "wh") as wh, wh.session() as s:
        s.write_file(target, "the next run's model")
    assert list(waiting.iterdir()) == []
    assert target.read_text() == "the next run's model"
