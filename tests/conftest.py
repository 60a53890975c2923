"""Shared fixtures: a fresh warehouse, and small demo communities generated once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.demo import GenerateSummary, generate

STATS_STUDENTS = 4_000
STATS_YEARS = 5


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.init(tmp_path / "wh", name="Test warehouse") as wh:
        yield wh


@pytest.fixture(scope="session")
def community(tmp_path_factory: pytest.TempPathFactory) -> GenerateSummary:
    """A small community, big enough for base rates to be stable (about 3 s)."""
    out = tmp_path_factory.mktemp("community")
    return generate(out, students=STATS_STUDENTS, years=STATS_YEARS, seed=11)
