"""Ctrl-C anywhere: one line, exit 130 within a couple of seconds, and a warehouse whose
tables, audit chain and files still agree.

Real ``backbone`` processes on a copy of the test demo get SIGINT at points spread
over the length of an uninterrupted run of the same command (the first while the
command line is still loading). After each: a linkage run is in ``identity.link_run``
exactly when its audit entry and its model file are there; a submission's raw file
is there exactly when its receipt is; indicators change exactly when their audit
entry is written; no file is left half-placed; the audit chain verifies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backbone import Warehouse

from .demo_build import DemoBuild, copy_demo

# their own worker (and demo build): beside the demo group, not after it
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo-doors")]

# the first lands while the command line is still loading
FRACTIONS = (0.15, 0.5, 0.85)
NOTHING_CHANGED = "Interrupted: nothing was changed."


def _env(demo: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BACKBONE_WAREHOUSE": str(demo / "warehouse"),
        "BACKBONE_TOKEN": (demo / "steward.token").read_text().strip(),
        "COLUMNS": "200",
    }


def _full_run(args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "backbone", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def _interrupted(args: list[str], env: dict[str, str], after: float) -> str:
    """Run, send SIGINT after ``after`` seconds; the line it ended with ("" when it
    had finished before the signal came). Checks the door."""
    child = subprocess.Popen(
        [sys.executable, "-m", "backbone", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(after)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=60)
    took = time.monotonic() - sent
    if child.returncode == 0:
        return ""
    assert child.returncode == 130, err
    assert took < 3, f"{args} took {took:.1f} s to stop after Ctrl-C"
    assert "Traceback" not in err and "SELECT" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Interrupted:"), err
    return lines[0]


def _rows(wh: Warehouse, sql: str, params: list[object] | None = None) -> list[tuple]:
    return wh._con.execute(sql, params or []).fetchall()


def _audit(wh: Warehouse, action: str) -> list[str]:
    rows = _rows(
        wh,
        "SELECT entry FROM gov.audit_log "
        "WHERE json_extract_string(entry, '$.action') = ? ORDER BY seq",
        [action],
    )
    return [json.loads(r[0])["what"] for r in rows]


def _no_half_placed_files(root: Path) -> None:
    stray = [
        p for p in (*root.rglob("*.pending"), *root.glob(".pending/*")) if p.is_file()
    ]
    assert not stray, stray


def _check_link(root: Path) -> None:
    with Warehouse.open(root, read_only=True) as wh:
        runs = {r[0] for r in _rows(wh, "SELECT run_id FROM identity.link_run")}
        audited = {int(w.split()[-1]) for w in _audit(wh, "link")}
        assert wh.audit.verify().ok
    models = {int(p.name.split("-")[1]) for p in (root / "linkage").glob("run-*")}
    assert runs == audited == models
    _no_half_placed_files(root)


def _check_submit(root: Path) -> None:
    with Warehouse.open(root, read_only=True) as wh:
        subs = _rows(wh, "SELECT submission_id, status, raw_path FROM ops.submission")
        uploads = _audit(wh, "upload")
        assert wh.audit.verify().ok
    for _sid, _status, raw in subs:
        assert (root / raw).is_file(), raw
    referenced = {raw for _sid, _status, raw in subs}
    stored = {
        str(p.relative_to(root))
        for p in (root / "raw").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert stored == referenced
    audited = {int(w.split()[1]) for w in uploads}
    finished = {sid for sid, status, _ in subs if status != "received"}
    assert finished <= audited  # a load or refusal never without its entry
    _no_half_placed_files(root)


def _indicator_state(root: Path) -> tuple[int, int]:
    with Warehouse.open(root, read_only=True) as wh:
        derived = len(_audit(wh, "derive"))
        rows = _rows(
            wh,
            "SELECT count(*), coalesce(sum(hash(t)), 0) FROM analytic.student_indicator t",
        )
        assert wh.audit.verify().ok
    return derived, int(rows[0][1]) ^ int(rows[0][0])


def _each_interrupt(
    args: list[str],
    env: dict[str, str],
    after_each: Callable[[str], None],
    ready: Callable[[], None] = lambda: None,
) -> list[str]:
    """Time a whole run, call ``ready``, then interrupt runs at points across it."""
    full = _full_run(args, env)
    ready()
    statuses = []
    for after in (full * f for f in FRACTIONS):
        said = _interrupted(args, env, after)
        after_each(said)
        statuses.append(said)
    return statuses


def test_interrupted_link_leaves_runs_audit_and_models_in_step(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    demo = copy_demo(demo_build, tmp_path / "demo")
    statuses = _each_interrupt(
        ["link", "--retrain"], _env(demo), lambda _s: _check_link(demo / "warehouse")
    )
    assert sum(s.startswith("Interrupted") for s in statuses) >= 2, (
        statuses
    )  # most signals landed mid-run


def test_interrupted_submit_keeps_receipts_and_raw_files_together(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    demo = copy_demo(demo_build, tmp_path / "demo")
    env = _env(demo)
    source = (
        demo / "community" / "partners" / "d02-riverside" / "2026" / "attendance.csv"
    )
    text = source.read_text()
    copies = iter(range(100))

    def args() -> list[str]:
        # a new file each time (a file sent before is only a duplicate)
        sent = tmp_path / f"attendance-{next(copies)}.csv"
        sent.write_text(text + "\n" * (1 + len(list(tmp_path.glob("attendance-*")))))
        return [
            "submit",
            "--partner",
            "d02-riverside",
            "--feed",
            "attendance",
            str(sent),
        ]

    full = _full_run(args(), env)
    statuses = []
    for after in (full * f for f in FRACTIONS):
        statuses.append(_interrupted(args(), env, after))
        _check_submit(demo / "warehouse")
    assert sum(s.startswith("Interrupted") for s in statuses) >= 2, statuses


def test_interrupted_indicators_compute_changes_nothing(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    demo = copy_demo(demo_build, tmp_path / "demo")
    root = demo / "warehouse"
    args = ["indicators", "compute", "--as-of", "2026-01-15"]
    env = _env(demo)
    seen: list[tuple[int, int]] = []

    def check(said: str) -> None:
        now = _indicator_state(root)
        if said == NOTHING_CHANGED:
            assert now == seen[-1]
        else:  # finished, or interrupted once its work was committed (and said so)
            assert now[0] == seen[-1][0] + 1
        seen.append(now)

    statuses = _each_interrupt(
        args, env, check, ready=lambda: seen.append(_indicator_state(root))
    )
    assert sum(s.startswith("Interrupted") for s in statuses) >= 2, statuses
