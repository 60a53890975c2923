import pytest

from backbone.partners.agreements import Severity, lint_document
from backbone.partners.agreements.document import AgreementDocument

from .governance_fixtures import agreement


def _errors(**changes: object) -> list[tuple[str, str]]:
    doc = AgreementDocument.model_validate(agreement(**changes))
    return [
        (f.path, f.message) for f in lint_document(doc) if f.severity is Severity.error
    ]


def test_a_complete_studies_agreement_has_no_errors() -> None:
    assert _errors() == []


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"purposes": [], "recipients": []}, "purposes"),
        ({"effective_to": None}, "effective_to"),
        ({"retention": None}, "retention"),
        ({"retention": {"destruction_method": "shred"}}, "retention"),
        ({"datasets": []}, "datasets"),
        ({"redisclosure": "named_third_parties"}, "redisclosure"),
    ],
)
def test_ferpa_studies_requires_purpose_duration_scope_and_destruction(
    changes: dict[str, object], path: str
) -> None:
    assert path in [p for p, _ in _errors(**changes)]


def test_audit_evaluation_requires_activity_descriptions() -> None:
    errors = _errors(legal_basis={"basis": "ferpa_audit_eval"})
    assert (
        "purposes[0].activity_description",
        "the audit/evaluation exception requires a description of the activity",
    ) in errors


def test_consent_basis_must_scope_rows_to_consent() -> None:
    assert [p for p, _ in _errors(legal_basis={"basis": "consent"})] == [
        "population.consent_required"
    ]
    assert (
        _errors(legal_basis={"basis": "consent"}, population={"consent_required": True})
        == []
    )


def test_directory_basis_covers_directory_fields_only() -> None:
    errors = _errors(legal_basis={"basis": "directory"})
    assert any(p.startswith("datasets[0].fields[0]") for p, _ in errors)


def test_state_law_needs_a_citation() -> None:
    assert (
        "legal_basis.citation",
        "a state-law basis must cite the statute",
    ) in _errors(legal_basis={"basis": "state_law"})


def test_warnings_do_not_block() -> None:
    doc = AgreementDocument.model_validate(
        agreement(breach=None, signatories=[], publication={"min_cell_size": 3})
    )
    findings = lint_document(doc)
    assert {f.severity for f in findings} == {Severity.warning}
    assert {f.path for f in findings} == {
        "breach",
        "signatories",
        "publication.min_cell_size",
    }
