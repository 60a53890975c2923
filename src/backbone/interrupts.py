"""Ctrl-C and what it may cut short.

An interrupt may land anywhere: a transaction then rolls back, which is what a
person who pressed Ctrl-C wants. Two stretches must not be cut in half: a commit and
the files that go with it (a linkage run's model, a mapping, an agreement version).
:func:`deferred` holds an interrupt for such a stretch and raises it once the
stretch is done; :func:`last_word` lets a door's watchdog end the process only
between such stretches (and none starts after it). A process-wide count of commits
lets a door say whether anything was kept.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["committed", "deferred", "last_word", "note_commit"]

_state = {"commits": 0}
# held by a commit and its files, and for good by a watchdog ending the process
_stretch = threading.RLock()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then raise it (main thread only: signals
    are delivered there; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    with _stretch:
        previous = signal.signal(signal.SIGINT, hold)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
    if received and previous is not signal.SIG_IGN:
        if callable(previous):  # the handler that was held off hears it now
            previous(signal.SIGINT, None)
        raise KeyboardInterrupt


def last_word() -> None:
    """Wait for a commit under way to finish, and keep any other from starting: the
    caller is about to end the process (it never gives this back)."""
    _stretch.acquire()


def note_commit() -> None:
    """Count a committed unit of work (for the door's last word on an interrupt)."""
    _state["commits"] += 1


def committed() -> int:
    """How many units of work this process committed."""
    return _state["commits"]
