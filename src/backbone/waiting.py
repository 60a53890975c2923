"""What a door asks of a process that waits for a held warehouse: to be told when
it waits (the CLI prints it on stderr), and a limit below the setting
(``--no-wait``: none). Here, at the bottom of the layers, so that a door sets them
without loading the database engine; :func:`backbone.engines.duckdb.connect` reads
them."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = [
    "PROGRESS_LINES",
    "PROGRESS_PREFIX",
    "limit",
    "opened",
    "process_alive",
    "report_waits_to",
    "reporter",
    "wait_at_most",
]

# set in a command's environment by whoever runs it as a job (the web's jobs):
# each progress message goes to stderr on its own line, after the prefix
PROGRESS_LINES = "BACKBONE_PROGRESS_LINES"
PROGRESS_PREFIX = "progress: "

_reporter: list[Callable[[str], None]] = []
_limit: list[float] = []


def report_waits_to(reporter: Callable[[str], None]) -> None:
    """Tell ``reporter`` whenever a connection has to wait for another process."""
    _reporter[:] = [reporter]


def reporter() -> Callable[[str], None] | None:
    return _reporter[0] if _reporter else None


def wait_at_most(seconds: float | None) -> None:
    """Wait for a held warehouse no longer than ``seconds`` in this process (None:
    as long as the setting says)."""
    _limit[:] = [] if seconds is None else [seconds]


def limit() -> float | None:
    return _limit[0] if _limit else None


def opened() -> None:
    """The command has the warehouse: the limit was for getting it, not for taking
    it back after a long job handed it over (that waits as the setting says)."""
    _limit.clear()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
