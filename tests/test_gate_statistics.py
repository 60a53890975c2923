"""Statistics through the release gate, on the hand-worked partnership of
tests/early_warning_fixtures.py (d1 minimum cell 10, d2 11): a statistic is
published only when every group of persons it counts is; groups are protected
like counts, earlier releases included; a release repeated exactly keeps its
decisions; a derivation cannot return rows; a funder reaches nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from backbone import Warehouse
from backbone.errors import PolicyDenied
from backbone.governance.release import Derived, Statistic
from backbone.measures.outcomes import _Collector
from tests.early_warning_fixtures import build

INPUTS = {"indicator": ("student_indicator", ["school_year", "days_absent"])}


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "wh"
    build(path)
    with Warehouse.open(path) as wh:
        steward = wh.users.get("steward")
        with wh.session(steward) as s:
            wh.indicators.compute(s, wh.access(steward, "early_warning"))
    return path


def _by_absence(con: duckdb.DuckDBPyConnection) -> Derived:
    """Persons with and without any absence, and the mean absence of each."""
    rows = con.sql(
        "SELECT unit, sum(days_absent) AS absent FROM indicator GROUP BY unit"
    ).fetchall()
    groups: dict[str, list[tuple[str, float]]] = {"none": [], "some": []}
    for unit, absent in rows:
        groups["some" if absent else "none"].append((unit, float(absent)))
    labels, units, stats = [], [], []
    for name, members in groups.items():
        label = json.dumps([name])
        labels += [label] * len(members)
        units += [u for u, _ in members]
        mean = sum(a for _, a in members) / len(members)
        stats.append(Statistic({"group": name}, (label,), {"mean": round(mean, 2)}))
    return Derived(pa.table({"label": labels, "unit": units}), stats)


def test_a_statistic_of_a_small_group_is_not_published(warehouse: Path) -> None:
    with Warehouse.open(warehouse) as wh:
        steward = wh.access(wh.users.get("steward"), "early_warning")
        release = steward.statistics(
            INPUTS, _by_absence, definition={"name": "absence means"}
        )
        shown = {s.key["group"]: s for s in release.statistics}
        # the 54 persons fall in two groups, each above the minimum cell:
        # both means are published
        assert all(s.values is not None for s in shown.values())
        assert sum(n for s in shown.values() for n in s.persons.values() if n) == 54

        def tiny(con: duckdb.DuckDBPyConnection) -> Derived:
            unit = con.sql("SELECT min(unit) FROM indicator").fetchall()[0][0]
            label = json.dumps(["one"])
            return Derived(
                pa.table({"label": [label], "unit": [unit]}),
                [Statistic({"group": "one"}, (label,), {"mean": 3.0})],
            )

        small = steward.statistics(INPUTS, tiny, definition={"name": "one person"})
        assert small.statistics[0].values is None
        assert small.statistics[0].persons == {json.dumps(["one"]): None}


def test_the_same_release_again_keeps_its_decisions(warehouse: Path) -> None:
    with Warehouse.open(warehouse) as wh:
        steward = wh.access(wh.users.get("steward"), "early_warning")
        first = steward.statistics(INPUTS, _by_absence, definition={"name": "a"})
        again = steward.statistics(INPUTS, _by_absence, definition={"name": "a"})
        assert again.release_id != first.release_id
        assert [s.persons for s in again.statistics] == [
            s.persons for s in first.statistics
        ]
        same = wh._con.execute(
            "SELECT json_extract_string(definition, '$.same_as') FROM gov.release "
            "WHERE release_id = ?",
            [again.release_id],
        ).fetchall()[0][0]
        assert same == str(first.release_id)


def test_a_derivation_cannot_return_rows_or_strangers(warehouse: Path) -> None:
    with Warehouse.open(warehouse) as wh:
        steward = wh.access(wh.users.get("steward"), "early_warning")

        def rows(con: duckdb.DuckDBPyConnection) -> Derived:
            derived = _by_absence(con)
            leaked = Statistic(
                {"group": "all"},
                derived.statistics[0].cells,
                {"values": [1.0, 2.0, 3.0]},  # type: ignore[dict-item]
            )
            return Derived(derived.members, [leaked])

        with pytest.raises(ValueError, match="single number"):
            steward.statistics(INPUTS, rows, definition={"name": "rows"})

        def stranger(con: duckdb.DuckDBPyConnection) -> Derived:
            label = json.dumps(["x"])
            return Derived(
                pa.table({"label": [label] * 12, "unit": [f"u{i}" for i in range(12)]}),
                [Statistic({"group": "x"}, (label,), {"mean": 1.0})],
            )

        with pytest.raises(ValueError, match="not given"):
            steward.statistics(INPUTS, stranger, definition={"name": "stranger"})


def test_a_funder_without_a_grant_is_refused_and_it_is_recorded(
    warehouse: Path,
) -> None:
    with Warehouse.open(warehouse) as wh:
        viewer = wh.access(wh.users.get("f1.viewer"), "early_warning")
        with pytest.raises(PolicyDenied):
            viewer.statistics(INPUTS, _by_absence, definition={"name": "f"})
        denied = [
            e
            for e in wh.audit.entries()
            if e["actor"] == "f1.viewer" and e["decision"] == "deny"
        ]
        assert denied


def test_a_group_is_named_once_and_equal_groups_share_a_name() -> None:
    col = _Collector()
    first = col.cell('["a"]', ["u1@2024", "u2@2024"])
    assert col.cell('["b"]', ["u2@2025", "u1@2023"]) == first  # the same persons
    with pytest.raises(ValueError, match="two different groups"):
        col.cell('["a"]', ["u3@2024"])


def test_other_processes_read_the_warehouse_while_a_derivation_runs(
    warehouse: Path,
) -> None:
    # a reader that would have to wait for the file gives up at once instead
    reader = (
        "import sys\nfrom backbone import Warehouse\n"
        "def busy(message): print('waited:', message); sys.exit(3)\n"
        f"with Warehouse.open({str(warehouse)!r}, read_only=True, on_wait=busy) as wh:\n"
        "    print(len(wh.partners.list()))\n"
    )
    seen: list[subprocess.CompletedProcess[str]] = []

    def slow(con: duckdb.DuckDBPyConnection) -> Derived:
        # matching and model fitting take long on a real partnership; meanwhile
        # another process opens the warehouse without waiting
        seen.append(
            subprocess.run(
                [sys.executable, "-c", reader],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        )
        return _by_absence(con)

    with Warehouse.open(warehouse) as wh:
        steward = wh.access(wh.users.get("steward"), "early_warning")
        release = steward.statistics(INPUTS, slow, definition={"name": "slow"})
        assert len(release.statistics) == 2
    assert seen and seen[0].returncode == 0, seen[0].stdout + seen[0].stderr
    assert int(seen[0].stdout.strip()) > 0
