"""Writes of the measures and of governance authorize and audit inside the stage
(issue 15): with no one signed in they are refused and change nothing; a role that
may not is refused with one deny entry; done, they leave exactly one audit entry.
Reading the indicator definitions never writes, and every stored value names a
definitions version that is kept."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import AuthenticationFailed, Forbidden
from backbone.measures.definitions import default_text
from backbone.measures.initiatives import Initiative
from backbone.session import Session
from tests.early_warning_fixtures import NOW, build

Write = Callable[[Warehouse, Session], object]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("writes") / "wh"
    build(path)
    with Warehouse.open(path, clock=lambda: NOW) as wh:
        wh._con.execute(
            "INSERT INTO ref.program VALUES ('MENTOR', 'c1', 'Mentoring', NULL, NULL)"
        )
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh", clock=lambda: NOW) as w:
        yield w


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _compute(wh: Warehouse, s: Session) -> object:
    # the access is the acting user's (the steward's when no one is signed in:
    # the session refuses before it is used)
    who = s.principal.user_id if s.principal else "steward"
    return wh.indicators.compute(s, wh.access(wh.users.get(who), "early_warning"))


WRITES: dict[str, tuple[Write, str]] = {
    "definitions set": (
        lambda wh, s: wh.indicators.definitions.record(
            s, default_text().replace("chronic_below: 0.90", "chronic_below: 0.85")
        ),
        "definitions",
    ),
    "initiative set": (
        lambda wh, s: wh.initiatives.set(
            s,
            Initiative(
                initiative_id="INIT-MENTOR",
                funder="f1",
                name="Mentoring",
                programs=("MENTOR",),
            ),
        ),
        "initiative",
    ),
    "user add": (
        lambda wh, s: wh.users.add(
            s, "new.analyst", partner="d1", role="partner_analyst"
        ),
        "user",
    ),
    "definitions set from a file": (
        lambda wh, s: wh.indicators.definitions.record_file(
            s,
            _text(
                wh.path / "definitions.yaml",
                default_text().replace("chronic_below: 0.90", "chronic_below: 0.8"),
            ),
        ),
        "definitions",
    ),
    "initiative set from a file": (
        lambda wh, s: wh.initiatives.set_file(
            s,
            _text(
                wh.path / "initiative.yaml",
                "initiative_id: INIT-MENTOR\nfunder: f1\nname: Mentoring\n"
                "programs: [MENTOR]\n",
            ),
        ),
        "initiative",
    ),
    "retention run": (lambda wh, s: wh.retention.run(s), "retention"),
    "indicators compute": (_compute, "derive"),
}
TABLES = (
    "gov.indicator_definition",
    "ref.initiative",
    "gov.principal",
    "gov.purge",
    "analytic.student_indicator",
    "gov.audit_log",
)


def _state(wh: Warehouse) -> dict[str, int]:
    return {
        t: int(wh._con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
        for t in TABLES
    }


def _entries_after(wh: Warehouse, before: dict[str, int]) -> list[dict[str, object]]:
    return wh.audit.entries(since_seq=before["gov.audit_log"])


@pytest.mark.parametrize("name", WRITES)
def test_without_sign_in_nothing_changes(wh: Warehouse, name: str) -> None:
    write, _ = WRITES[name]
    before = _state(wh)
    with pytest.raises(AuthenticationFailed, match="sign in first"), wh.session() as s:
        write(wh, s)
    assert _state(wh) == before


@pytest.mark.parametrize("name", WRITES)
def test_a_role_that_may_not_is_refused_with_one_deny_entry(
    wh: Warehouse, name: str
) -> None:
    write, _ = WRITES[name]
    before = _state(wh)
    with (
        pytest.raises(Forbidden, match=r"d1\.analyst"),
        wh.session(wh.users.get("d1.analyst")) as s,
    ):
        write(wh, s)
    [entry] = _entries_after(wh, before)
    assert (entry["decision"], entry["actor"]) == ("deny", "d1.analyst")
    assert _state(wh) == {**before, "gov.audit_log": before["gov.audit_log"] + 1}


@pytest.mark.parametrize("name", WRITES)
def test_done_it_leaves_exactly_one_audit_entry(wh: Warehouse, name: str) -> None:
    write, action = WRITES[name]
    before = _state(wh)
    with wh.session(wh.users.get("steward")) as s:
        write(wh, s)
    [entry] = _entries_after(wh, before)
    assert (entry["action"], entry["decision"], entry["actor"]) == (
        action,
        "allow",
        "steward",
    )
    assert wh.audit.verify().ok


def test_reading_definitions_never_writes_and_values_name_a_kept_version(
    wh: Warehouse,
) -> None:
    store = wh.indicators.definitions
    assert store.current().version == 1 and store.text() == default_text()
    [shipped] = store.history()
    assert (shipped.version, shipped.recorded_at) == (1, None)
    assert _state(wh)["gov.indicator_definition"] == 0  # read, not recorded
    with wh.session(wh.users.get("steward")) as s:
        _compute(wh, s)
    kept = dict(
        wh._con.execute(
            "SELECT version, document FROM gov.indicator_definition"
        ).fetchall()
    )
    assert kept == {1: default_text()}  # recorded by the computation that used it
    used = {
        v
        for (v,) in wh._con.execute(
            "SELECT DISTINCT definition_version FROM analytic.student_indicator"
        ).fetchall()
    }
    assert used == {1}
    # new definitions come after the shipped ones, whatever was read before
    with wh.session(wh.users.get("steward")) as s:
        version = store.record(
            s, default_text().replace("incidents_at_risk: 5", "incidents_at_risk: 4")
        )
    assert version == 2 and store.get(1).attendance.chronic_below == 0.90


def test_the_disclosure_report_is_the_partners_own_or_the_auditors(
    wh: Warehouse,
) -> None:
    before = _state(wh)
    with wh.session(wh.users.get("d1.analyst")) as s:
        own = wh.audit.report(s, "d1")
    assert own.partner == "d1" and own.head.seq == before["gov.audit_log"]
    with (
        pytest.raises(Forbidden, match="only d1's disclosure report"),
        wh.session(wh.users.get("d1.analyst")) as s,
    ):
        wh.audit.report(s, "d2")
    [entry] = _entries_after(wh, before)
    assert (entry["decision"], entry["providers"]) == ("deny", ["d2"])
    with wh.session(wh.users.get("steward")) as s:
        assert wh.audit.report(s, "d2").partner == "d2"
