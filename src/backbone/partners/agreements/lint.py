"""Mandatory terms by legal basis, checked before an agreement is relied on.

FERPA's exceptions come with conditions on the written agreement. The studies
exception (34 CFR 99.31(a)(6)(iii)(C)) requires the purpose, scope and duration of the
study, the information to be disclosed, use only for that purpose, and destruction
when no longer needed with the time period for it. The audit/evaluation exception
(99.35(a)(3)) adds a description of the activity and policies to protect the data.
Consent-based sharing must scope rows to consenting persons. Lint reports each missing
term with its field path; errors block relying on the agreement, warnings do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backbone.partners.agreements.document import (
    AgreementDocument,
    LegalBasis,
    PublicationMethod,
)

__all__ = ["Finding", "Severity", "lint_document"]


class Severity(StrEnum):
    error = "error"
    warning = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    path: str
    message: str


def _require(findings: list[Finding], ok: bool, path: str, message: str) -> None:
    if not ok:
        findings.append(Finding(Severity.error, path, message))


def lint_document(doc: AgreementDocument) -> list[Finding]:
    findings: list[Finding] = []
    basis = doc.legal_basis.basis
    ferpa = basis in (LegalBasis.ferpa_studies, LegalBasis.ferpa_audit_eval)
    if ferpa or basis is LegalBasis.school_official:
        _require(
            findings,
            bool(doc.purposes),
            "purposes",
            f"a {basis.value} agreement must state its purposes",
        )
        _require(
            findings,
            bool(doc.datasets),
            "datasets",
            f"a {basis.value} agreement must list the information to be disclosed",
        )
    if ferpa:
        _require(
            findings,
            doc.effective_to is not None,
            "effective_to",
            f"a {basis.value} agreement must state its duration (an end date)",
        )
        _require(
            findings,
            doc.retention is not None
            and (
                doc.retention.destroy_after_days is not None
                or doc.retention.destroy_by is not None
            ),
            "retention",
            f"a {basis.value} agreement must say when the data is destroyed "
            "(destroy_after_days or destroy_by)",
        )
        _require(
            findings,
            doc.redisclosure.value
            in ("none", "back_to_discloser", "aggregate_public_with_rules"),
            "redisclosure",
            "FERPA data may not be re-disclosed to third parties under this exception",
        )
    if basis is LegalBasis.ferpa_audit_eval:
        for i, p in enumerate(doc.purposes):
            _require(
                findings,
                bool(p.activity_description),
                f"purposes[{i}].activity_description",
                "the audit/evaluation exception requires a description of the activity",
            )
        _require(
            findings,
            doc.security.encryption_at_rest,
            "security.encryption_at_rest",
            "the audit/evaluation exception requires policies that protect the data",
        )
    if basis is LegalBasis.consent:
        _require(
            findings,
            doc.population.consent_required,
            "population.consent_required",
            "a consent-based agreement must share only persons with a current consent",
        )
    if basis is LegalBasis.state_law:
        _require(
            findings,
            bool(doc.legal_basis.citation),
            "legal_basis.citation",
            "a state-law basis must cite the statute",
        )
    if basis is LegalBasis.directory:
        for i, d in enumerate(doc.datasets):
            for j, f in enumerate(d.fields):
                _require(
                    findings,
                    f.classification.value in ("public", "directory"),
                    f"datasets[{i}].fields[{j}]",
                    f"{f.name} is {f.classification.value}; the directory basis covers "
                    "directory information only",
                )
    _require(
        findings,
        bool(doc.recipients),
        "recipients",
        "an agreement must name its recipients",
    )
    signed = {s.partner for s in doc.signatories}
    for party in doc.parties.all():
        if party not in signed and doc.status.value == "active":
            findings.append(
                Finding(
                    Severity.warning,
                    "signatories",
                    f"{party} has not signed; the agreement waits for its approval",
                )
            )
    if doc.breach is None:
        findings.append(
            Finding(
                Severity.warning,
                "breach",
                "no breach-notice terms (notify_within_hours)",
            )
        )
    if doc.publication.min_cell_size < 5:
        findings.append(
            Finding(
                Severity.warning,
                "publication.min_cell_size",
                f"a minimum cell size of {doc.publication.min_cell_size} is below "
                "any state's practice (5 to 30, most often 10)",
            )
        )
    publication = doc.publication
    if publication.method is PublicationMethod.differential_privacy and (
        publication.dp_budget is None
        or publication.dp_budget.epsilon_per_release is None
    ):
        findings.append(
            Finding(
                Severity.error,
                "publication.dp_budget",
                "publishing by differential privacy needs a budget with "
                "epsilon and epsilon_per_release (what one table spends)",
            )
        )
    if doc.termination is None:
        findings.append(
            Finding(Severity.warning, "termination", "no termination terms")
        )
    return findings
