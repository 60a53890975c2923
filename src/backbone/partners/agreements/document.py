"""The agreement document: a versioned, machine-readable data-sharing agreement.

One YAML document per agreement version, validated by the pydantic models below on
load. The field groups follow the partnership's governance reference: identity and
tier, lifecycle, parties, legal basis, purposes, datasets with allowed fields and
their classification, population scope, recipients with access level and permitted
operations, linkage, re-disclosure, publication rules, security, retention and
destruction, breach notice, termination, signatories.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backbone.errors import InputFileError
from backbone.model.schema import ALL_TABLES
from backbone.yamltext import read_yaml

__all__ = [
    "AccessLevel",
    "AgreementDocument",
    "LegalBasis",
    "Operation",
    "dump_document",
    "load_document",
    "parse_document",
]

ACCESS_ORDER = ("aggregate", "pseudonymous", "identified")
REDISCLOSURE_ORDER = (
    "none",
    "back_to_discloser",
    "named_third_parties",
    "aggregate_public_with_rules",
)
# Entities an agreement may share: analytic facts and identifying records.
SHAREABLE = {
    t.name: t
    for t in ALL_TABLES
    if t.schema in ("analytic",) or t.name == "partner_record"
}


class Tier(StrEnum):
    mou = "mou"
    dsa = "dsa"
    dul = "dul"


class Status(StrEnum):
    draft = "draft"
    active = "active"
    suspended = "suspended"
    terminated = "terminated"


class LegalBasis(StrEnum):
    ferpa_studies = "ferpa_studies"
    ferpa_audit_eval = "ferpa_audit_eval"
    consent = "consent"
    directory = "directory"
    school_official = "school_official"
    state_law = "state_law"
    contract = "contract"
    """non-FERPA data (community programs, funders) under an ordinary contract"""


class AccessLevel(StrEnum):
    aggregate = "aggregate"
    pseudonymous = "pseudonymous"
    identified = "identified"


class Operation(StrEnum):
    row_level_view = "row_level_view"
    link = "link"
    aggregate = "aggregate"
    export_microdata = "export_microdata"
    download = "download"


class Classification(StrEnum):
    public = "public"
    directory = "directory"
    confidential = "confidential"
    restricted = "restricted"


class Redisclosure(StrEnum):
    none = "none"
    back_to_discloser = "back_to_discloser"
    named_third_parties = "named_third_parties"
    aggregate_public_with_rules = "aggregate_public_with_rules"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Contact(_Model):
    name: str
    email: str
    role: str | None = None


class Parties(_Model):
    provider: str = Field(description="the partner disclosing the data")
    recipient: str = Field(
        description="the partner receiving it (usually the backbone)"
    )
    licensees: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return (self.provider, self.recipient, *self.licensees)


class Basis(_Model):
    basis: LegalBasis
    citation: str | None = None


class Purpose(_Model):
    id: str
    description: str
    activity_description: str | None = None


class DatasetField(_Model):
    name: str
    classification: Classification = Classification.confidential


class Dataset(_Model):
    entity: str
    fields: tuple[DatasetField, ...]

    @model_validator(mode="after")
    def _known_entity_and_fields(self) -> Dataset:
        table = SHAREABLE.get(self.entity)
        if table is None:
            raise ValueError(
                f"unknown entity {self.entity!r}; use one of {', '.join(sorted(SHAREABLE))}"
            )
        known = {c.name for c in table.columns}
        for f in self.fields:
            if f.name not in known:
                raise ValueError(
                    f"{self.entity} has no field {f.name!r}; its fields are "
                    f"{', '.join(sorted(known))}"
                )
        return self

    def field_names(self) -> set[str]:
        return {f.name for f in self.fields}


class Population(_Model):
    school_years: tuple[int, ...] | None = None
    grades: tuple[int, ...] | None = None
    schools: tuple[str, ...] | None = None
    consent_required: bool = False
    opt_out_honoured: bool = True


class Recipient(_Model):
    partner: str
    roles: tuple[str, ...] = ()
    """Roles of the partner's users covered; empty means every role."""
    access: AccessLevel
    operations: tuple[Operation, ...]
    purposes: tuple[str, ...] = ()
    """Purposes this recipient may use the data for; empty means all of the agreement's."""

    @model_validator(mode="after")
    def _operations_fit_access(self) -> Recipient:
        row_ops = {Operation.row_level_view, Operation.export_microdata, Operation.link}
        if self.access is AccessLevel.aggregate and row_ops & set(self.operations):
            bad = sorted(o.value for o in row_ops & set(self.operations))
            raise ValueError(
                f"aggregate access cannot include row-level operations ({', '.join(bad)})"
            )
        return self


class Linkage(_Model):
    allowed: bool = False
    linkable_with: tuple[str, ...] = ()
    """Partner ids whose records this provider's data may be linked with."""
    method: str = "clear_text"
    keys_retention_days: int | None = None


class TopBottomCoding(_Model):
    top_percent: float = 95.0
    bottom_percent: float = 5.0


class DpBudget(_Model):
    epsilon: float = Field(gt=0)
    delta: float = Field(default=0.0, ge=0)
    epsilon_per_release: float | None = Field(default=None, gt=0)
    """What one count table spends when ``publication.method`` is
    ``differential_privacy`` and the reader names no epsilon."""


class PublicationMethod(StrEnum):
    """How aggregates of the provider's data leave: small cells suppressed and
    every release audited against the earlier ones, or noisy counts charged to a
    privacy budget (for data published over and over; see docs/RELEASES.md)."""

    suppression = "suppression"
    differential_privacy = "differential_privacy"


class Publication(_Model):
    method: PublicationMethod = PublicationMethod.suppression
    min_cell_size: int = Field(default=10, ge=1)
    extract_k: int = Field(default=5, ge=2)
    """In a pseudonymous extract, every pseudonym's history (schools, years,
    grades, dates, demographics) is shared by at least this many pseudonyms:
    dates are coarsened, and the persons still rarer withheld."""
    complementary_suppression: bool = True
    top_bottom_coding: TopBottomCoding | None = None
    dp_budget: DpBudget | None = None
    partner_review_days: int | None = None


class Security(_Model):
    encryption_at_rest: bool = True
    mfa_required: bool = True
    storage_location: str | None = None
    no_local_download: bool = False


class Retention(_Model):
    destroy_after_days: int | None = Field(default=None, ge=0)
    """Days after the agreement ends by which the provider's data is destroyed."""
    destroy_by: date | None = None
    destruction_method: str | None = None
    certificate_required: bool = True


class Breach(_Model):
    notify_within_hours: int = Field(gt=0)
    notify_parties: tuple[str, ...] = ()
    incident_contact: str | None = None


class Termination(_Model):
    notice_days: int = Field(default=30, ge=0)
    on_termination: str = "revoke_immediately"
    destroy_within_days: int | None = None


class Signatory(_Model):
    partner: str
    name: str
    title: str | None = None
    signed: date


class AgreementDocument(_Model):
    agreement_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: int | None = Field(default=None, ge=1)
    title: str
    tier: Tier
    status: Status
    effective_from: date
    effective_to: date | None = None
    parties: Parties
    contacts: dict[str, Contact] = Field(default_factory=dict)
    legal_basis: Basis
    purposes: tuple[Purpose, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    population: Population = Population()
    recipients: tuple[Recipient, ...] = ()
    linkage: Linkage = Linkage()
    redisclosure: Redisclosure = Redisclosure.none
    publication: Publication = Publication()
    security: Security = Security()
    retention: Retention | None = None
    breach: Breach | None = None
    termination: Termination | None = None
    signatories: tuple[Signatory, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AgreementDocument:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError(
                f"effective_to ({self.effective_to}) is before effective_from "
                f"({self.effective_from})"
            )
        purpose_ids = [p.id for p in self.purposes]
        if len(purpose_ids) != len(set(purpose_ids)):
            raise ValueError("purpose ids must be unique")
        entities = [d.entity for d in self.datasets]
        if len(entities) != len(set(entities)):
            raise ValueError("each entity may appear in only one dataset")
        for r in self.recipients:
            unknown = set(r.purposes) - set(purpose_ids)
            if unknown:
                raise ValueError(
                    f"recipient {r.partner} names purpose {sorted(unknown)[0]!r}, which "
                    "is not among the agreement's purposes"
                )
        return self

    # --- questions the policy layer asks ---------------------------------------

    def dataset(self, entity: str) -> Dataset | None:
        return next((d for d in self.datasets if d.entity == entity), None)

    def purpose_ids(self) -> set[str]:
        return {p.id for p in self.purposes}

    def in_term(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def parse_document(data: Any, *, source: Path | str) -> AgreementDocument:
    """Validate parsed YAML; every problem is reported at once with its field path."""
    if not isinstance(data, dict):
        raise InputFileError(
            "an agreement must be a YAML mapping of fields (agreement_id, title, ...).",
            path=source,
        )
    try:
        return AgreementDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_location(tuple(error['loc']))}: {message}")
        raise InputFileError(
            "the agreement is not valid: " + "; ".join(problems) + ". Fix these fields "
            "and load it again; nothing was recorded.",
            path=source,
        ) from None


def load_document(path: Path) -> AgreementDocument:
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(
            f"cannot read the agreement ({exc.strerror}).", path=path
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        raise InputFileError(
            f"is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax and "
            "load it again.",
            path=path,
            row=row,
        ) from None
    return parse_document(data, source=path)


def dump_document(doc: AgreementDocument) -> str:
    """YAML text of a document (stable key order, dates as ISO)."""
    data = doc.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=88)
