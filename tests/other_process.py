"""Another, real process on the same warehouse: for the tests of long jobs that
hand the file back while they compute (risk training, indicators)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def another_process(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_at_once(path: Path) -> None:
    """Another process reads the warehouse; it must get in without waiting."""
    done = another_process(
        f"""
        from backbone import Warehouse
        with Warehouse.open({str(path)!r}, read_only=True) as wh:
            print(len(wh.partners.list()))
        """
    )
    assert done.returncode == 0, done.stderr
    assert "Waiting for the warehouse" not in done.stderr
    assert int(done.stdout.strip()) > 0


def change(path: Path) -> None:
    """Another process writes: the steward records the definitions in use again
    (no new version, but an audited change like any other)."""
    done = another_process(
        f"""
        from backbone import Warehouse
        with Warehouse.open({str(path)!r}) as wh:
            store = wh.indicators.definitions
            with wh.session(wh.users.get("steward")) as s:
                store.record(s, store.text())
        """
    )
    assert done.returncode == 0, done.stderr
