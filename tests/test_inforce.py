"""The one rule for the agreement version in force on a day, and where it stands."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from backbone.partners.agreements.decide import VersionView
from backbone.partners.agreements.document import AgreementDocument
from backbone.partners.agreements.inforce import (
    Standing,
    VersionState,
    came_into_force,
    end_of,
    in_force_by_agreement,
    version_in_force,
)

from .governance_fixtures import agreement

D = date
START = D(2024, 7, 1)


def _view(
    version: int,
    state: str = "approved",
    in_force: date | None = START,
    agreement_id: str = "DSA-D1",
    **changes: Any,
) -> VersionView:
    doc = AgreementDocument.model_validate(agreement(**changes))
    return VersionView(agreement_id, version, doc, state, in_force)


# v1 from 2024-07-01; v2 (narrowing) from 2025-01-01; v3 pending; v4 withdrawn
HISTORY = [
    _view(1),
    _view(2, in_force=D(2025, 1, 1)),
    _view(3, state="pending", in_force=None),
    _view(4, state="withdrawn", in_force=None),
]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2024, 6, 30), None),  # before anything was in force
        (D(2024, 7, 1), 1),
        (D(2024, 12, 31), 1),
        (D(2025, 1, 1), 2),  # the amendment takes over on its day
        (D(2030, 1, 1), 2),  # pending and withdrawn versions never are
    ],
)
def test_the_version_in_force(day: date, expected: int | None) -> None:
    for order in (HISTORY, list(reversed(HISTORY))):
        found = version_in_force(order, day)
        assert (found.version if found else None) == expected
    assert [v.version for v in came_into_force(HISTORY, day)] == (
        list(range(1, expected + 1)) if expected else []
    )


def test_each_agreement_separately() -> None:
    other = [_view(1, agreement_id="DSA-D2", in_force=D(2025, 3, 1))]
    found = in_force_by_agreement([*HISTORY, *other], D(2025, 2, 1))
    assert {k: v.version for k, v in found.items()} == {"DSA-D1": 2}
    found = in_force_by_agreement([*other, *HISTORY], D(2025, 3, 1))
    assert [(k, v.version) for k, v in found.items()] == [("DSA-D2", 1), ("DSA-D1", 2)]


@pytest.mark.parametrize(
    ("changes", "day", "standing", "text", "why"),
    [
        ({}, D(2025, 3, 1), Standing.applies, "v1 in force", None),
        (
            {},
            D(2027, 7, 1),
            Standing.ended,
            "v1 (ended 2027-06-30)",
            "the agreement expired on 2027-06-30",
        ),
        (
            {"effective_from": "2025-06-01"},
            D(2025, 3, 1),
            Standing.not_started,
            "v1 (starts 2025-06-01)",
            "the agreement takes effect on 2025-06-01",
        ),
        # the status comes first, even past the end
        (
            {"status": "suspended"},
            D(2027, 7, 1),
            Standing.inactive,
            "v1 (suspended)",
            "the agreement is suspended",
        ),
    ],
)
def test_where_a_version_stands(
    changes: dict[str, Any],
    day: date,
    standing: Standing,
    text: str,
    why: str | None,
) -> None:
    state = VersionState(_view(1, **changes), day)
    assert state.standing is standing
    assert str(state) == text
    assert state.refusal() == why
    assert state.applies == (standing is Standing.applies)


def test_the_parts_of_a_standing_each_use_asks_for() -> None:
    suspended = VersionState(_view(1, status="suspended"), D(2025, 3, 1))
    # a suspended agreement is within its term and not ended: retention keeps its
    # data and its feeds are still owed, but nothing flows under it
    assert (suspended.in_term, suspended.ended, suspended.active) == (
        True,
        False,
        False,
    )
    assert not suspended.applies
    later = VersionState(_view(1, effective_from="2025-06-01"), D(2025, 3, 1))
    assert (later.in_term, later.ended, later.active) == (False, False, True)
    ended = VersionState(_view(1), D(2027, 7, 1))
    assert (ended.in_term, ended.ended, ended.active) == (False, True, True)


def test_nothing_in_force() -> None:
    state: VersionState[VersionView] = VersionState(None, D(2025, 3, 1))
    assert state.standing is Standing.none
    assert str(state) == "none in force"
    assert state.refusal() == "no version is in force on 2025-03-01"
    assert not (state.applies or state.active or state.in_term or state.ended)


@pytest.mark.parametrize(
    ("view", "end"),
    [
        (_view(1), D(2027, 6, 30)),  # at the end of its term
        (_view(1, effective_to=None), None),  # no end while it has none
        # a suspension ends nothing: its data stays until the term is over
        (_view(1, status="suspended"), D(2027, 6, 30)),
        # a termination ends it on the day it came into force, not at the term's end
        (_view(2, status="terminated", in_force=D(2026, 3, 1)), D(2026, 3, 1)),
        (
            _view(2, status="terminated", in_force=None, effective_from="2026-01-15"),
            D(2026, 1, 15),
        ),
    ],
)
def test_when_a_version_ends(view: VersionView, end: date | None) -> None:
    assert end_of(view) == end
