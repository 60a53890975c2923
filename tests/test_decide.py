"""The decision function, table-driven over a small history of agreements."""

from datetime import date
from typing import Any

import pytest

from backbone.partners.agreements import AccessRequest, decide
from backbone.partners.agreements.decide import VersionView
from backbone.partners.agreements.document import AgreementDocument

from .governance_fixtures import agreement


def _view(
    version: int,
    state: str = "approved",
    in_force: str | None = "2024-07-01",
    awaiting: tuple[str, ...] = (),
    **changes: Any,
) -> VersionView:
    doc = AgreementDocument.model_validate(agreement(**changes))
    return VersionView(
        "DSA-D1",
        version,
        doc,
        state,
        date.fromisoformat(in_force) if in_force else None,
        awaiting,
    )


HISTORY = [
    _view(1),
    _view(
        2,
        state="pending",
        in_force=None,
        awaiting=("d1",),
        purposes=[
            {"id": "early_warning", "description": "x"},
            {"id": "program_evaluation", "description": "y"},
            {"id": "college_outcomes", "description": "z"},
        ],
    ),
]
SUSPENDED = [_view(1), _view(2, in_force="2025-01-01", status="suspended")]


def ask(**overrides: Any) -> AccessRequest:
    base: dict[str, Any] = dict(
        provider="d1",
        recipient="b0",
        role="steward_admin",
        entity="attendance_event",
        fields=("event_date",),
        purpose="early_warning",
        operation="row_level_view",
        on=date(2025, 3, 1),
    )
    base.update(overrides)
    return AccessRequest(**base)


CASES = [
    ("allowed", ask(), HISTORY, True, "allowed by DSA-D1@1", "DSA-D1@1"),
    (
        "expired",
        ask(on=date(2027, 7, 1)),
        HISTORY,
        False,
        "expired on 2027-06-30",
        "DSA-D1@1",
    ),
    (
        "not yet in force",
        ask(on=date(2024, 1, 1)),
        HISTORY,
        False,
        "no version in force on 2024-01-01",
        None,
    ),
    (
        "suspended",
        ask(on=date(2025, 6, 1)),
        SUSPENDED,
        False,
        "the agreement is suspended",
        "DSA-D1@2",
    ),
    (
        "suspension applies only from its date",
        ask(on=date(2024, 12, 1)),
        SUSPENDED,
        True,
        "allowed",
        "DSA-D1@1",
    ),
    (
        "pending widening",
        ask(purpose="college_outcomes"),
        HISTORY,
        False,
        "DSA-D1@2 would allow it but awaits approval by d1",
        "DSA-D1@1",
    ),
    (
        "unknown purpose",
        ask(purpose="marketing"),
        HISTORY,
        False,
        "purpose 'marketing' is not permitted",
        "DSA-D1@1",
    ),
    (
        "purpose outside the recipient's",
        ask(recipient="c1", role=None, purpose="program_evaluation"),
        HISTORY,
        False,
        "purpose 'program_evaluation' is not permitted",
        "DSA-D1@1",
    ),
    (
        "undeclared field",
        ask(fields=("event_date", "attendance_event_reason")),
        HISTORY,
        False,
        "field(s) attendance_event_reason of attendance_event are not declared",
        "DSA-D1@1",
    ),
    (
        "entity not shared",
        ask(entity="graduation", fields=()),
        HISTORY,
        False,
        "graduation is not shared",
        "DSA-D1@1",
    ),
    (
        "operation not permitted",
        ask(operation="export_microdata"),
        HISTORY,
        False,
        "operation 'export_microdata' is not permitted for b0",
        "DSA-D1@1",
    ),
    (
        "aggregate-only funder asks for rows",
        ask(recipient="f1", role=None, purpose="program_evaluation"),
        HISTORY,
        False,
        "operation 'row_level_view' is not permitted for f1",
        "DSA-D1@1",
    ),
    (
        "aggregate-only funder asks for counts",
        ask(
            recipient="f1",
            role=None,
            purpose="program_evaluation",
            operation="aggregate",
        ),
        HISTORY,
        True,
        "aggregate access",
        "DSA-D1@1",
    ),
    (
        "linkage allowed with a listed partner",
        ask(operation="link", link_with="c1"),
        HISTORY,
        True,
        "identified access",
        "DSA-D1@1",
    ),
    (
        "linkage with an unlisted partner",
        ask(operation="link", link_with="a1"),
        HISTORY,
        False,
        "linkage with a1 is not permitted",
        "DSA-D1@1",
    ),
    (
        "linkage not permitted",
        ask(operation="link"),
        [_view(1, linkage={"allowed": False})],
        False,
        "linkage is not permitted",
        "DSA-D1@1",
    ),
    (
        "not a recipient",
        ask(recipient="a1", role=None),
        HISTORY,
        False,
        "a1 is not a recipient",
        "DSA-D1@1",
    ),
    (
        "role not covered",
        ask(role="partner_analyst"),
        HISTORY,
        False,
        "role partner_analyst of b0 is not covered",
        "DSA-D1@1",
    ),
    (
        "no agreement for the provider",
        ask(provider="d2"),
        HISTORY,
        False,
        "no agreement covers data provided by d2",
        None,
    ),
    (
        "withdrawn versions never count",
        ask(purpose="college_outcomes"),
        [
            _view(1),
            _view(
                2,
                state="withdrawn",
                in_force=None,
                purposes=HISTORY[1].document.model_dump(mode="json")["purposes"],
            ),
        ],
        False,
        "purpose 'college_outcomes' is not permitted",
        "DSA-D1@1",
    ),
]


@pytest.mark.parametrize(
    ("name", "request_", "versions", "allowed", "reason", "ref"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decisions(
    name: str,
    request_: AccessRequest,
    versions: list[VersionView],
    allowed: bool,
    reason: str,
    ref: str | None,
) -> None:
    decision = decide(request_, versions)
    assert decision.allowed is allowed, decision.reason
    assert reason in decision.reason
    assert decision.agreement == ref


def test_an_allowed_decision_names_the_access_level() -> None:
    assert decide(ask(recipient="c1", role=None), HISTORY).access == "pseudonymous"
