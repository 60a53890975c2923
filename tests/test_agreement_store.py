from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import InputFileError, NotFoundError, UserError

from .governance_fixtures import agreement, register_partners, write


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.init(tmp_path / "wh") as w:
        register_partners(w)
        yield w


def _widened(tmp_path: Path, **extra: object) -> Path:
    doc = agreement(**extra)
    doc["purposes"].append(
        {"id": "college_outcomes", "description": "Link graduates to college."}
    )
    return write(tmp_path / "v2.yaml", doc)


def test_signed_agreement_is_in_force_from_its_effective_date(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        v = wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    assert (v.ref, v.status, v.in_force_from) == (
        "DSA-D1@1",
        "approved",
        date(2024, 7, 1),
    )
    assert wh.agreements.in_force("DSA-D1", date(2024, 6, 30)) is None
    assert wh.agreements.in_force("DSA-D1", date(2024, 7, 1)) == v
    assert (wh.path / "agreements" / "DSA-D1" / "v1.yaml").exists()


def test_unsigned_agreement_waits_for_every_party(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        v = wh.agreements.add(s, write(tmp_path / "a.yaml", agreement(signatories=[])))
    assert v.status == "pending" and v.awaiting == ("d1", "b0")
    with wh.session() as s:
        v = wh.agreements.approve(s, "DSA-D1", "d1", title="Sup", on=date(2024, 8, 1))
    assert v.status == "pending" and v.awaiting == ("b0",)
    with wh.session() as s:
        v = wh.agreements.approve(s, "DSA-D1", "b0", title="Dir", on=date(2024, 8, 3))
    assert v.status == "approved"
    assert v.in_force_from == date(
        2024, 8, 3
    )  # approvals came after the effective date


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"parties": {"provider": "d9", "recipient": "b0"}},
            "parties.provider: unknown partner 'd9'",
        ),
        (
            {"linkage": {"allowed": True, "linkable_with": ["zz"]}},
            r"linkage\.linkable_with\[0\]: unknown partner 'zz'",
        ),
        (
            {"signatories": [{"partner": "c1", "name": "X", "signed": "2024-01-01"}]},
            "c1 is not a party",
        ),
        ({"version": 2}, "starts at version 1"),
    ],
)
def test_bad_references_record_nothing(
    wh: Warehouse, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InputFileError, match=message), wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement(**changes)))
    assert wh.agreements.ids() == []
    assert not (wh.path / "agreements" / "DSA-D1").exists()


def test_duplicate_agreement_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with pytest.raises(UserError, match="already exists"), wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))


def test_widening_amendment_is_pending_until_every_party_approves(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with wh.session() as s:
        amended = wh.agreements.amend(
            s,
            "DSA-D1",
            _widened(tmp_path),
            effective=date(2025, 1, 1),
            summary="Add college outcomes.",
        )
    v2 = amended.version
    assert v2.change_class == "widening" and v2.status == "pending"
    assert [c.describe() for c in amended.changes] == [
        "added purposes: college_outcomes"
    ]
    assert wh.agreements.in_force("DSA-D1", date(2025, 6, 1)).version == 1  # type: ignore[union-attr]
    with wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "b0", title="Dir", on=date(2024, 12, 1))
    assert wh.agreements.in_force("DSA-D1", date(2025, 6, 1)).version == 1  # type: ignore[union-attr]
    with wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "d1", title="Sup", on=date(2024, 12, 10))
    assert wh.agreements.in_force("DSA-D1", date(2024, 12, 31)).version == 1  # type: ignore[union-attr]
    assert wh.agreements.in_force("DSA-D1", date(2025, 1, 1)).version == 2  # type: ignore[union-attr]


def test_narrowing_amendment_takes_effect_on_its_date(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with wh.session() as s:
        v2 = wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v2.yaml", agreement(publication={"min_cell_size": 11})),
            effective=date(2025, 3, 1),
            summary="Stricter minimum cell size.",
        ).version
    assert (v2.change_class, v2.status, v2.approvals) == ("narrowing", "approved", ())
    assert wh.agreements.in_force("DSA-D1", date(2025, 2, 28)).version == 1  # type: ignore[union-attr]
    assert wh.agreements.in_force("DSA-D1", date(2025, 3, 1)).version == 2  # type: ignore[union-attr]


def test_no_version_is_ever_lost(wh: Warehouse, tmp_path: Path) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with wh.session() as s:
        wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v2.yaml", agreement(publication={"min_cell_size": 11})),
            effective=date(2025, 3, 1),
            summary="Stricter.",
        )
    with wh.session() as s:
        wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v3.yaml", agreement(publication={"min_cell_size": 15})),
            effective=date(2025, 9, 1),
            summary="Stricter still.",
        )
    history = wh.agreements.versions("DSA-D1")
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.document.publication.min_cell_size for v in history] == [10, 11, 15]
    assert sorted(p.name for p in (wh.path / "agreements" / "DSA-D1").iterdir()) == [
        "v1.yaml",
        "v2.yaml",
        "v3.yaml",
    ]
    assert [c.path for c in wh.agreements.diff("DSA-D1", 1, 3)] == [
        "publication.min_cell_size"
    ]


@pytest.mark.parametrize(
    ("doc_changes", "effective", "summary", "message"),
    [
        ({"version": 3}, date(2025, 1, 1), "x", "version 3 skips or repeats a version"),
        (
            {"agreement_id": "DSA-OTHER"},
            date(2025, 1, 1),
            "x",
            "is for agreement DSA-OTHER",
        ),
        ({}, date(2025, 1, 1), "x", "identical to DSA-D1@1"),
        ({"title": "New"}, date(2024, 1, 1), "x", "before version 1's"),
        ({"title": "New"}, date(2025, 1, 1), " ", "Give the amendment a summary"),
        (
            {"parties": {"provider": "d2", "recipient": "b0"}},
            date(2025, 1, 1),
            "x",
            "cannot change the provider",
        ),
    ],
)
def test_bad_amendments_change_nothing(
    wh: Warehouse,
    tmp_path: Path,
    doc_changes: dict[str, object],
    effective: date,
    summary: str,
    message: str,
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with (
        pytest.raises((UserError, InputFileError), match=message),
        wh.session() as s,
    ):
        wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v2.yaml", agreement(**doc_changes)),
            effective=effective,
            summary=summary,
        )
    assert [v.version for v in wh.agreements.versions("DSA-D1")] == [1]


def test_a_pending_version_blocks_the_next_until_approved_or_withdrawn(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with wh.session() as s:
        wh.agreements.amend(
            s,
            "DSA-D1",
            _widened(tmp_path),
            effective=date(2025, 1, 1),
            summary="Widen.",
        )
    narrower = write(tmp_path / "v3.yaml", agreement(publication={"min_cell_size": 12}))
    with (
        pytest.raises(UserError, match="still awaits approval by d1, b0"),
        wh.session() as s,
    ):
        wh.agreements.amend(
            s, "DSA-D1", narrower, effective=date(2025, 2, 1), summary="Narrow."
        )
    with wh.session() as s:
        assert wh.agreements.withdraw(s, "DSA-D1", 2).status == "withdrawn"
    with wh.session() as s:
        v3 = wh.agreements.amend(
            s, "DSA-D1", narrower, effective=date(2025, 2, 1), summary="Narrow."
        ).version
    assert v3.version == 3 and wh.agreements.pending() == []
    with pytest.raises(UserError, match="nothing to approve"), wh.session() as s:
        wh.agreements.approve(
            s, "DSA-D1", "d1", title="x", on=date(2025, 1, 1), version=2
        )


def test_approval_only_by_a_party_and_only_once(wh: Warehouse, tmp_path: Path) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement(signatories=[])))
    with pytest.raises(UserError, match="c1 is not a party"), wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "c1", title="x", on=date(2024, 8, 1))
    with wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "d1", title="x", on=date(2024, 8, 1))
    with pytest.raises(UserError, match="already approved"), wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "d1", title="x", on=date(2024, 8, 1))


def test_lint_detects_a_version_file_edited_after_recording(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    assert wh.agreements.lint() == {"DSA-D1@1": []}
    file = wh.path / "agreements" / "DSA-D1" / "v1.yaml"
    file.write_text(file.read_text().replace("min_cell_size: 10", "min_cell_size: 2"))
    findings = wh.agreements.lint("DSA-D1")["DSA-D1@1"]
    assert [f.message for f in findings] == [
        "the version file is missing or was edited after it was recorded"
    ]


def test_expiring_agreements(wh: Warehouse, tmp_path: Path) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    assert [v.ref for v in wh.agreements.expiring(date(2027, 5, 15), 60)] == [
        "DSA-D1@1"
    ]
    assert wh.agreements.expiring(date(2027, 3, 1), 60) == []


def test_unknown_agreement_or_version(wh: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="No agreement 'X'"):
        wh.agreements.versions("X")
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    with pytest.raises(NotFoundError, match="has no version 4"):
        wh.agreements.version("DSA-D1", 4)


def test_decide_uses_the_recorded_history(wh: Warehouse, tmp_path: Path) -> None:
    from backbone.partners.agreements import AccessRequest

    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    request = AccessRequest(
        "d1",
        "b0",
        "attendance_event",
        ("event_date",),
        "early_warning",
        "row_level_view",
        date(2025, 1, 1),
        role="steward_admin",
    )
    assert wh.agreements.decide(request).agreement == "DSA-D1@1"


def test_a_withdrawn_widening_is_not_the_baseline_of_the_next_version(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    wider = agreement()
    wider["purposes"].append({"id": "p3", "description": "Something new."})
    with wh.session() as s:
        wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v2.yaml", wider),
            effective=date(2025, 1, 1),
            summary="Widen.",
        )
    with wh.session() as s:
        wh.agreements.withdraw(s, "DSA-D1", 2)
    wider_minus = agreement(publication={"min_cell_size": 12})
    wider_minus["purposes"].append({"id": "p3", "description": "Something new."})
    with wh.session() as s:
        v3 = wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v3.yaml", wider_minus),
            effective=date(2025, 1, 1),
            summary="Same widening, smuggled.",
        ).version
    assert v3.change_class == "widening" and v3.status == "pending"


def test_a_narrowing_never_takes_effect_before_the_version_it_amends(
    wh: Warehouse, tmp_path: Path
) -> None:
    with wh.session() as s:
        wh.agreements.add(s, write(tmp_path / "a.yaml", agreement()))
    wider = agreement()
    wider["purposes"].append({"id": "p2", "description": "New."})
    with wh.session() as s:
        wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v2.yaml", wider),
            effective=date(2025, 2, 1),
            summary="Widen.",
        )
    with wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "d1", title="x", on=date(2025, 6, 1))
    with wh.session() as s:
        wh.agreements.approve(s, "DSA-D1", "b0", title="x", on=date(2025, 6, 1))
    renamed = dict(wider, title="Renamed")
    with wh.session() as s:
        v3 = wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp_path / "v3.yaml", renamed),
            effective=date(2025, 2, 15),
            summary="Rename.",
        ).version
    assert v3.in_force_from == date(2025, 6, 1)
    assert wh.agreements.in_force("DSA-D1", date(2025, 3, 1)).version == 1  # type: ignore[union-attr]
