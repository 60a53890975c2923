"""Training the risk model does not hold the warehouse while the models fit.

The training rows are read inside the unit of work; then the file is handed back,
so another process reads (or writes) while scikit-learn works; then it is taken
back and the model written, unless someone changed the warehouse meanwhile: then
the rows are read and fitted once more, and a second change refuses. The demo's
warehouse (copied) is big enough to train on; the other process is real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backbone import Warehouse
from backbone.errors import WarehouseError
from backbone.measures import risk_model
from backbone.measures.risk import TrainingReport
from tests.demo_build import DemoBuild, copy_demo
from tests.other_process import change, read_at_once

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


@pytest.fixture
def path(demo_build: DemoBuild, tmp_path: Path) -> Path:
    """A private copy of the demo's warehouse, where a process held up by another
    gives up after a second instead of waiting its turn."""
    folder = copy_demo(demo_build, tmp_path / "demo") / "warehouse"
    toml = folder / "backbone.toml"
    toml.write_text(
        toml.read_text().replace("lock_wait_seconds = 600", "lock_wait_seconds = 1")
    )
    return folder


def _while_fitting(
    monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[int], None]
) -> list[int]:
    """Run ``meanwhile(n)`` at the start of the n-th fit; returns the fits made."""
    fit = risk_model.train
    fits: list[int] = []

    def observed(*args: Any, **kwargs: Any) -> risk_model.TrainedModels:
        fits.append(len(fits) + 1)
        meanwhile(fits[-1])
        return fit(*args, **kwargs)

    monkeypatch.setattr(risk_model, "train", observed)
    return fits


def _train(path: Path) -> TrainingReport:
    with Warehouse.open(path) as wh:
        steward = wh.users.get("steward")
        with wh.session(steward, purpose="early_warning") as s:
            return wh.risk.train(s, wh.access(steward, "early_warning"))


def _models_and_entries(path: Path) -> tuple[int, int]:
    with Warehouse.open(path, read_only=True) as wh:
        row = wh._con.execute(
            "SELECT (SELECT count(*) FROM gov.risk_model), "
            "(SELECT count(*) FROM gov.audit_log "
            " WHERE json_extract_string(entry, '$.what') = 'risk model')"
        ).fetchone()
        assert row is not None and wh.audit.verify().ok
        return int(row[0]), int(row[1])


def test_another_process_reads_the_warehouse_while_the_model_fits(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models, entries = _models_and_entries(path)
    fits = _while_fitting(monkeypatch, lambda _n: read_at_once(path))
    trained = _train(path)
    assert fits == [1]
    assert _models_and_entries(path) == (models + 1, entries + 1)
    with Warehouse.open(path, read_only=True) as wh:
        latest = wh.risk.latest()
        assert latest is not None and latest.model_id == trained.model_id


def test_a_change_while_the_model_fits_means_reading_and_fitting_again(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models, entries = _models_and_entries(path)
    fits = _while_fitting(monkeypatch, lambda n: change(path) if n == 1 else None)
    _train(path)
    assert fits == [1, 2]
    assert _models_and_entries(path) == (models + 1, entries + 1)


def test_a_warehouse_that_keeps_changing_saves_no_model(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models, entries = _models_and_entries(path)
    fits = _while_fitting(monkeypatch, lambda _n: change(path))
    with pytest.raises(WarehouseError, match="changed while the risk model trained"):
        _train(path)
    assert fits == [1, 2]
    assert _models_and_entries(path) == (models, entries)
