"""The three checks every write of the unit of work must pass, shared by the
write-audit tests of each stage: no sign-in changes nothing; a signed-in user who may
not is refused (403) and the refusal audited; a write leaves exactly one entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import AuthenticationFailed, Forbidden
from backbone.session import Session


@dataclass(frozen=True)
class Case:
    name: str
    action: str
    may: str
    """a user who may"""
    may_not: str
    """a signed-in user who may not (wrong role or another partner)"""
    write: Callable[[Warehouse, Session, Path], object]


def snapshot(wh: Warehouse, tables: tuple[str, ...], folder: str) -> dict[str, object]:
    """Every row of ``tables`` and every file under the warehouse's ``folder``."""
    state: dict[str, object] = {
        t: sorted(map(repr, wh._con.execute(f"SELECT * FROM {t}").fetchall()))
        for t in tables
    }
    state["files"] = sorted(str(p) for p in (wh.path / folder).rglob("*"))
    return state


State = Callable[[Warehouse], object]


def unsigned_changes_nothing(
    wh: Warehouse, tmp_path: Path, case: Case, state: State
) -> None:
    before, seq = state(wh), wh.audit.head().seq
    with pytest.raises(AuthenticationFailed, match="sign in first"), wh.session() as s:
        case.write(wh, s, tmp_path)
    assert state(wh) == before
    assert wh.audit.head().seq == seq


def refusal_is_audited(wh: Warehouse, tmp_path: Path, case: Case, state: State) -> None:
    before, seq = state(wh), wh.audit.head().seq
    with pytest.raises(Forbidden), wh.session(wh.users.get(case.may_not)) as s:
        case.write(wh, s, tmp_path)
    assert state(wh) == before
    [entry] = wh.audit.entries(since_seq=seq)
    assert (entry["decision"], entry["action"], entry["actor"]) == (
        "deny",
        case.action,
        case.may_not,
    )


def one_entry_per_write(
    wh: Warehouse, tmp_path: Path, case: Case, state: State
) -> None:
    before, seq = state(wh), wh.audit.head().seq
    with wh.session(wh.users.get(case.may)) as s:
        case.write(wh, s, tmp_path)
    assert state(wh) != before
    [entry] = wh.audit.entries(since_seq=seq)
    assert (entry["decision"], entry["action"], entry["actor"]) == (
        "allow",
        case.action,
        case.may,
    )
    assert wh.audit.verify().ok
