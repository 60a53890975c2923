"""Data-use requests: how a partnership grows.

A partner or an outside party files a request (purpose, data wanted and at what
level, duration, audience, what will be published). Every provider whose data is
involved reviews it against a rubric (fit with the partnership's goals, protections,
minimum data necessary: 1-4 each) and approves, approves with conditions, or
declines. When all have approved, the request yields a draft data-use license per
provider, ready for signature and linked to the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.errors import InputFileError, NotFoundError, UserError
from backbone.partners.agreements.document import (
    AccessLevel,
    AgreementDocument,
    Dataset,
    dump_document,
)
from backbone.session import Session
from backbone.yamltext import read_yaml

__all__ = ["DECISIONS", "DataRequest", "RequestBook", "RequestDocument", "Review"]

DECISIONS = ("approve", "approve_with_conditions", "decline")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestPurpose(_Model):
    id: str
    description: str


class DataWanted(_Model):
    provider: str
    entity: str
    fields: tuple[str, ...]
    level: AccessLevel

    @model_validator(mode="after")
    def _known(self) -> DataWanted:
        Dataset.model_validate(
            {"entity": self.entity, "fields": [{"name": f} for f in self.fields]}
        )
        return self


class RequestDocument(_Model):
    request_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    requester: str
    title: str
    purpose: RequestPurpose
    data: tuple[DataWanted, ...] = Field(min_length=1)
    begin: date
    end: date
    audience: tuple[str, ...] = Field(min_length=1)
    publication: str

    @model_validator(mode="after")
    def _dates(self) -> RequestDocument:
        if self.end < self.begin:
            raise ValueError(f"end ({self.end}) is before begin ({self.begin})")
        return self

    def providers(self) -> list[str]:
        return sorted({d.provider for d in self.data})


@dataclass(frozen=True)
class Review:
    provider: str
    reviewer: str
    decision: str
    fit: int
    protections: int
    minimum_necessary: int
    conditions: str | None
    comments: str | None
    reviewed_on: date


@dataclass(frozen=True)
class DataRequest:
    request_id: str
    requester: str
    title: str
    filed_on: date
    status: str
    document: RequestDocument
    reviews: tuple[Review, ...]
    drafts: tuple[str, ...]

    @property
    def awaiting(self) -> list[str]:
        done = {r.provider for r in self.reviews}
        return [p for p in self.document.providers() if p not in done]


def _load(path: Path) -> RequestDocument:
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputFileError(f"cannot read the request ({exc}).", path=path) from None
    return _parse(data, path)


def _parse(data: Any, source: Path | None) -> RequestDocument:
    try:
        return RequestDocument.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise InputFileError(
            f"the request is not valid: {problems}. Nothing was filed.", path=source
        ) from None


class RequestBook:
    def __init__(self, con: Connection, agreements_folder: Path) -> None:
        self._con = con
        self._drafts = agreements_folder / "drafts"

    def file(self, s: Session, path: Path, *, on: date) -> DataRequest:
        """File a data-use request from its YAML document: an analyst or a
        researcher of the requesting partner, or a steward admin filing it on the
        requester's behalf."""
        s.actor()  # who are you, before the file is read
        return self._file(s, _load(path), on=on, source=path)

    def file_document(
        self, s: Session, data: Mapping[str, Any], *, on: date
    ) -> DataRequest:
        """File a data-use request from its document already read (the fields of a
        web form, in the YAML document's shape), as :meth:`file` does."""
        s.actor()
        return self._file(s, _parse(data, None), on=on, source=None)

    def _file(
        self, s: Session, doc: RequestDocument, *, on: date, source: Path | None
    ) -> DataRequest:
        who = s.require(
            "file_request",
            f"file the data-use request {doc.request_id} for {doc.requester}",
            partner=doc.requester,
            action="request",
        )
        con = s.con
        partners = _partners(con)
        unknown = [p for p in [doc.requester, *doc.providers()] if p not in partners]
        if unknown:
            raise InputFileError(
                f"unknown partner {unknown[0]!r}; register it with `backbone partner add` first.",
                path=source,
            )
        if con.execute(
            "SELECT 1 FROM gov.data_request WHERE request_id = ?", [doc.request_id]
        ).fetchone():
            raise UserError(
                f"A request {doc.request_id} was already filed; give the new one another id."
            )
        con.execute(
            "INSERT INTO gov.data_request VALUES (?, ?, ?, ?, 'in_review', ?, NULL)",
            [
                doc.request_id,
                doc.requester,
                doc.title,
                on,
                yaml.safe_dump(
                    doc.model_dump(mode="json"), sort_keys=False, allow_unicode=True
                ),
            ],
        )
        s.record(
            "request",
            f"filed {doc.request_id} from {doc.requester}: {doc.title}",
            providers=tuple(doc.providers()),
            on_behalf_of=doc.requester if doc.requester != who.partner_id else None,
        )
        return _get(con, doc.request_id)

    def review(
        self,
        s: Session,
        request_id: str,
        *,
        provider: str,
        decision: str,
        fit: int,
        protections: int,
        minimum_necessary: int,
        on: date,
        conditions: str | None = None,
        comments: str | None = None,
    ) -> DataRequest:
        """Record ``provider``'s review of a request. The reviewer is the signed-in
        user: an analyst of the provider, or a steward admin recording the provider's
        review on its behalf. When every provider has approved, the draft licenses
        are written to ``agreements/drafts``."""
        who = s.require(
            "act_for_partner",
            f"review {request_id} for {provider}",
            partner=provider,
            action="request",
        )
        con = s.con
        request = _get(con, request_id)
        if decision not in DECISIONS:
            raise UserError(
                f"Decision {decision!r} is not one of {', '.join(DECISIONS)}."
            )
        for name, score in (
            ("fit", fit),
            ("protections", protections),
            ("minimum", minimum_necessary),
        ):
            if not 1 <= score <= 4:
                raise UserError(
                    f"Rubric score --{name} must be from 1 (poor) to 4 (strong), not {score}."
                )
        if decision == "approve_with_conditions" and not conditions:
            raise UserError(
                "Approving with conditions needs the conditions (--conditions)."
            )
        if provider not in request.document.providers():
            raise UserError(
                f"{provider} provides none of the data in {request_id}; its providers are "
                f"{', '.join(request.document.providers())}."
            )
        if request.status != "in_review":
            raise UserError(f"{request_id} is {request.status}; reviews are closed.")
        if provider not in request.awaiting:
            raise UserError(f"{provider} has already reviewed {request_id}.")
        with transaction(con):
            con.execute(
                "INSERT INTO gov.request_review VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    request_id,
                    provider,
                    who.user_id,
                    decision,
                    fit,
                    protections,
                    minimum_necessary,
                    conditions,
                    comments,
                    on,
                ],
            )
            updated = _get(con, request_id)
            if decision == "decline":
                con.execute(
                    "UPDATE gov.data_request SET status = 'declined' WHERE request_id = ?",
                    [request_id],
                )
            drafts: dict[str, str] = {}
            if decision != "decline" and not updated.awaiting:
                drafts = _draft_agreements(_partners(con), updated)
                con.execute(
                    "UPDATE gov.data_request SET status = 'approved', draft_agreement_id = ? "
                    "WHERE request_id = ?",
                    [",".join(drafts), request_id],
                )
        s.record(
            "request",
            f"{provider}'s review of {request_id}: {decision} (fit {fit}, protections "
            f"{protections}, minimum {minimum_necessary})"
            + (f"; drafts {', '.join(drafts)}" if drafts else ""),
            providers=(provider,),
            on_behalf_of=provider if provider != who.partner_id else None,
        )
        # the drafts appear when the unit commits: a refusal leaves none
        for agreement_id, text in drafts.items():
            s.write_file(self._drafts / f"{agreement_id}.yaml", text)
        return _get(con, request_id)

    def get(self, request_id: str) -> DataRequest:
        return _get(self._con, request_id)

    def list(self, status: str | None = None) -> list[DataRequest]:
        """Every request (in one ``status``), oldest first."""
        ids = [
            r[0]
            for r in self._con.execute(
                "SELECT request_id FROM gov.data_request "
                "WHERE ? IS NULL OR status = ? ORDER BY filed_on, request_id",
                [status, status],
            ).fetchall()
        ]
        return [self.get(i) for i in ids]


def _partners(con: Connection) -> dict[str, str]:
    return dict(con.execute("SELECT partner_id, kind FROM ref.partner").fetchall())


def _get(con: Connection, request_id: str) -> DataRequest:
    row = con.execute(
        "SELECT request_id, requester_partner_id, title, filed_on, status, document, draft_agreement_id "
        "FROM gov.data_request WHERE request_id = ?",
        [request_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"No request {request_id!r}; `backbone request list` shows them."
        )
    reviews = tuple(
        Review(*r)
        for r in con.execute(
            "SELECT provider_partner_id, reviewer, decision, fit, protections, minimum_necessary, "
            "conditions, comments, reviewed_on FROM gov.request_review WHERE request_id = ? "
            "ORDER BY reviewed_on, provider_partner_id",
            [request_id],
        ).fetchall()
    )
    doc = RequestDocument.model_validate(read_yaml(row[5]))
    drafts = tuple(row[6].split(",")) if row[6] else ()
    return DataRequest(row[0], row[1], row[2], row[3], row[4], doc, reviews, drafts)


def _draft_agreements(partners: dict[str, str], request: DataRequest) -> dict[str, str]:
    """One draft data-use license per provider, ready for signature; ``partners``
    are the registered partners' kinds by id."""
    steward = next(
        (p for p, kind in sorted(partners.items()) if kind == "backbone"), None
    )
    if steward is None:
        raise UserError(
            "Register the backbone organization (kind backbone) before approving requests."
        )
    doc = request.document
    ids: dict[str, str] = {}
    for provider in doc.providers():
        wanted = [d for d in doc.data if d.provider == provider]
        level = max(
            (d.level for d in wanted), key=lambda lv: list(AccessLevel).index(lv)
        )
        district = partners[provider] == "school_district"
        agreement_id = f"DUL-{doc.request_id}-{provider}"
        conditions = [
            r.conditions
            for r in request.reviews
            if r.provider == provider and r.conditions
        ]
        draft = AgreementDocument.model_validate(
            {
                "agreement_id": agreement_id,
                "title": f"{doc.title} ({provider})",
                "tier": "dul",
                "status": "active",
                "effective_from": doc.begin,
                "effective_to": doc.end,
                "parties": {
                    "provider": provider,
                    "recipient": steward,
                    "licensees": [doc.requester],
                },
                "legal_basis": {
                    "basis": "ferpa_audit_eval" if district else "contract",
                    "citation": "34 CFR 99.31(a)(3), 99.35" if district else None,
                },
                "purposes": [
                    {
                        "id": doc.purpose.id,
                        "description": doc.purpose.description,
                        "activity_description": f"Data-use request {doc.request_id}: {doc.title}",
                    }
                ],
                "datasets": [
                    {"entity": d.entity, "fields": [{"name": f} for f in d.fields]}
                    for d in wanted
                ],
                "recipients": [
                    {
                        "partner": doc.requester,
                        "access": level.value,
                        "operations": ["aggregate"]
                        if level is AccessLevel.aggregate
                        else ["row_level_view", "aggregate"],
                    }
                ],
                "redisclosure": "aggregate_public_with_rules"
                if level is AccessLevel.aggregate
                else "none",
                "publication": {
                    "min_cell_size": 10,
                    "complementary_suppression": True,
                },
                "retention": {
                    "destroy_after_days": 90,
                    "certificate_required": True,
                },
                "breach": {
                    "notify_within_hours": 72,
                    "notify_parties": [provider, steward],
                },
                "termination": {"notice_days": 30, "destroy_within_days": 30},
            }
        )
        header = f"# Draft from data-use request {doc.request_id}; sign, then `backbone agreement add`.\n"
        header += "".join(f"# Condition set by {provider}: {c}\n" for c in conditions)
        ids[agreement_id] = header + dump_document(draft)
    return ids
