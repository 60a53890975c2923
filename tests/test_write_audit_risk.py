"""Training the risk model is a write like any other (issue 15): with no one signed
in it is refused and changes nothing; a funder's viewer, who may not derive, is
refused with one deny entry; the steward's training leaves exactly one entry. On a
copy of the demo's warehouse, the smallest one the model can be validated on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import AuthenticationFailed, Forbidden
from backbone.governance import Role
from tests.demo_build import DemoBuild, copy_demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


@pytest.fixture
def wh(demo_build: DemoBuild, tmp_path: Path) -> Iterator[Warehouse]:
    folder = copy_demo(demo_build, tmp_path / "demo") / "warehouse"
    with Warehouse.open(folder) as w:
        yield w


def _models(wh: Warehouse) -> int:
    row = wh._con.execute("SELECT count(*) FROM gov.risk_model").fetchone()
    assert row is not None
    return int(row[0])


def _viewer(wh: Warehouse) -> str:
    [user_id] = [
        p.user_id
        for p in wh.users.list()
        if p.role == Role.funder_viewer and not p.disabled
    ][:1]
    return user_id


def test_training_without_sign_in_or_by_a_viewer_is_refused(wh: Warehouse) -> None:
    models, seq = _models(wh), wh.audit.head().seq
    steward = wh.users.get("steward")
    with pytest.raises(AuthenticationFailed, match="sign in first"), wh.session() as s:
        wh.risk.train(s, wh.access(steward, "early_warning"))
    assert (_models(wh), wh.audit.head().seq) == (models, seq)

    viewer = _viewer(wh)
    with pytest.raises(Forbidden), wh.session(wh.users.get(viewer)) as s:
        wh.risk.train(s, wh.access(steward, "early_warning"))
    assert _models(wh) == models
    [entry] = wh.audit.entries(since_seq=seq)
    assert (entry["decision"], entry["action"], entry["actor"]) == (
        "deny",
        "derive",
        viewer,
    )


def test_the_stewards_training_leaves_one_entry(wh: Warehouse) -> None:
    models, steward = _models(wh), wh.users.get("steward")
    seq = wh.audit.head().seq
    # the read of the training rows is its own audited disclosure; the write is one
    access = wh.access(steward, "early_warning")
    with wh.session(steward, purpose="early_warning") as s:
        wh.risk.train(s, access)
    assert _models(wh) == models + 1
    derived = [e for e in wh.audit.entries(since_seq=seq) if e["action"] == "derive"]
    assert [(e["decision"], e["actor"]) for e in derived] == [("allow", "steward")]
    assert wh.audit.verify().ok
