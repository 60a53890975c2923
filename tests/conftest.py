"""Shared fixtures: a fresh warehouse, small demo communities generated once, and
one whole demo run per session (and xdist worker)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.demo import GenerateSummary, generate
from tests.demo_build import DemoBuild, build_demo, kept_demo

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


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    """`backbone demo run` once (about a minute): read it, never change it; a test
    that writes takes ``copy_demo(demo_build, tmp_path / "demo")``. Tests using it
    are marked ``xdist_group("demo")`` so one worker builds it."""
    kept = os.environ.get("BACKBONE_TEST_DEMO")  # a developer's: built once, reused
    if kept:
        return kept_demo(Path(kept))
    return build_demo(tmp_path_factory.mktemp("demo") / "demo")
