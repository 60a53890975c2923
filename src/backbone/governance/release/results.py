"""What the gate returns: released tables and statistics, and what a derivation
hands the gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = [
    "Derived",
    "PublishedStatistic",
    "Release",
    "Statistic",
    "StatisticsRelease",
]


@dataclass(frozen=True)
class Release:
    release_id: int
    table: pa.Table
    """One row per cell: the dimensions (``(all)`` on a margin), ``persons`` (null
    when suppressed) and ``note``."""
    cells: int
    suppressed: int
    agreements: tuple[str, ...]
    mode: str
    epsilon: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class Statistic:
    """A statistic a derivation computed, and the cells (groups of persons) it
    was computed from."""

    key: dict[str, str]
    cells: tuple[str, ...]
    values: dict[str, Any]


@dataclass(frozen=True)
class Derived:
    """What a derivation returns to the gate: who is in each cell, and the
    statistics of those cells."""

    members: pa.Table
    """(label, unit): the persons each cell counted"""
    statistics: list[Statistic]


@dataclass(frozen=True)
class PublishedStatistic:
    key: dict[str, str]
    persons: dict[str, int | None]
    """each cell it counted, with its persons (None when suppressed)"""
    values: dict[str, Any] | None
    """None when suppressed"""
    note: str


@dataclass(frozen=True)
class StatisticsRelease:
    release_id: int
    statistics: list[PublishedStatistic]
    cells: int
    suppressed: int
    agreements: tuple[str, ...]
    left_out: dict[str, str]
    """inputs the reader may not aggregate, and why"""
