"""Data-sharing agreements: documents, versions, the version in force, differences,
lint and decisions."""

from backbone.partners.agreements.decide import AccessRequest, Decision, decide
from backbone.partners.agreements.diff import Change, Effect, diff_documents
from backbone.partners.agreements.document import AgreementDocument, load_document
from backbone.partners.agreements.inforce import (
    Standing,
    VersionState,
    version_in_force,
)
from backbone.partners.agreements.lint import Finding, Severity, lint_document
from backbone.partners.agreements.store import (
    AgreementRegistry,
    Amendment,
    VersionRecord,
)

__all__ = [
    "AccessRequest",
    "AgreementDocument",
    "AgreementRegistry",
    "Amendment",
    "Change",
    "Decision",
    "Effect",
    "Finding",
    "Severity",
    "Standing",
    "VersionRecord",
    "VersionState",
    "decide",
    "diff_documents",
    "lint_document",
    "load_document",
    "version_in_force",
]
