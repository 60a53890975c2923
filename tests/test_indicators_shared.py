"""Computing indicators does not hold the warehouse while the snapshots are
computed: the inputs are copied inside the unit of work, the file is handed back
while DuckDB works on the copies, then taken back and the snapshots stored, unless
someone changed the warehouse meanwhile: then they are read and computed once
more, and a second change refuses, storing nothing. The other process is real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import WarehouseError
from backbone.measures.indicators import Snapshot
from tests.early_warning_fixtures import build
from tests.other_process import change, read_at_once


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """The hand-worked partnership, where a process held up by another gives up
    after a second instead of waiting its turn."""
    folder = tmp_path / "wh"
    build(folder)
    toml = folder / "backbone.toml"
    toml.write_text(
        toml.read_text().replace("lock_wait_seconds = 600", "lock_wait_seconds = 1")
    )
    return folder


def _compute(path: Path, meanwhile: Callable[[int], None]) -> list[Snapshot]:
    """Compute every year's snapshot; ``meanwhile(n)`` runs as the n-th pass
    over the inputs starts (the progress line of its first year)."""
    passes = [0]
    calls: list[str] = []

    def told(message: str) -> None:
        calls.append(message)
        if message.startswith("indicators for") and (
            len(calls) == 1 or calls[-2].startswith("the warehouse changed")
        ):
            passes[0] += 1
            meanwhile(passes[0])

    with Warehouse.open(path) as wh:
        steward = wh.users.get("steward")
        with wh.session(steward) as s:
            return wh.indicators.compute(
                s, wh.access(steward, "early_warning"), progress=told
            )


def _stored(path: Path) -> tuple[int, int]:
    """(indicator rows, 'derive' audit entries) in the warehouse."""
    with Warehouse.open(path, read_only=True) as wh:
        row = wh._con.execute(
            "SELECT (SELECT count(*) FROM analytic.student_indicator), "
            "(SELECT count(*) FROM gov.audit_log "
            " WHERE json_extract_string(entry, '$.action') = 'derive')"
        ).fetchone()
        assert row is not None and wh.audit.verify().ok
        return int(row[0]), int(row[1])


def test_another_process_reads_while_indicators_are_computed(path: Path) -> None:
    snapshots = _compute(path, lambda _n: read_at_once(path))
    rows, entries = _stored(path)
    assert snapshots and rows == sum(s.records for s in snapshots) > 0
    assert entries == 1


def test_a_change_meanwhile_means_computing_again(path: Path) -> None:
    passes: list[int] = []

    def meanwhile(n: int) -> None:
        passes.append(n)
        if n == 1:
            change(path)

    snapshots = _compute(path, meanwhile)
    assert passes == [1, 2]
    rows, entries = _stored(path)
    assert rows == sum(s.records for s in snapshots) > 0 and entries == 1


def test_a_warehouse_that_keeps_changing_stores_no_indicators(path: Path) -> None:
    with pytest.raises(WarehouseError, match="changed while the indicators"):
        _compute(path, lambda _n: change(path))
    assert _stored(path) == (0, 0)
