"""What the API answers, each question once: its route, its parameters, the stage
methods it calls and the type of its answer. The API serves them, the CLI asks
them of a local warehouse or of a server (``backbone --server``), so every door
gives the same answer from the same code; the stage decides who may, and audits.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from backbone.errors import Conflict, NotFoundError, UserError
from backbone.governance.access import ExportFormat
from backbone.governance.audit import DisclosureReport, Verification
from backbone.governance.extracts import new_seed
from backbone.governance.policy import IDENTITY_RESOLUTION, Grant, Refusal
from backbone.governance.principals import Principal
from backbone.governance.release import Release
from backbone.ingest.report import Report
from backbone.ingest.submit import RawDecision, Submission
from backbone.measures.college import CollegeReport
from backbone.measures.scorecard import Scorecard
from backbone.model.calendar import school_year_label
from backbone.partners.agreements.diff import Change
from backbone.partners.agreements.store import VersionRecord
from backbone.partners.requests import DataRequest

if TYPE_CHECKING:
    from backbone.governance.access import Access
    from backbone.warehouse import Warehouse

__all__ = [
    "QUESTIONS",
    "FileAnswer",
    "Question",
    "RowsPage",
    "SubmissionView",
    "pairs",
]

DATA_QUALITY = "data_quality"
MAX_PAGE = 100_000


@dataclass(frozen=True)
class Prepared:
    """A release too costly to make while a request waits (an evaluation, the
    scorecard): a server makes it away from the requests (202, then the answer)
    and keeps it for its audience; a local command makes it there and then."""

    what: str
    purpose: Callable[[Principal, Any], str]
    make: Callable[[Warehouse, Access, Any], Any]
    key: Callable[[Any], tuple[Any, ...]]


@dataclass(frozen=True)
class Question:
    """One thing a door may ask: ``answer(wh, me, params)`` calls the stage."""

    name: str
    method: str
    path: str
    """under /api/v1; ``{name}`` parts are the path's parameters"""
    params: type
    """a dataclass: its fields are the question's parameters"""
    result: Any
    answer: Callable[[Warehouse, Principal, Any], Any]
    summary: str
    tag: str
    status: int = 200
    prepared: Prepared | None = None


@dataclass(frozen=True)
class FileAnswer:
    """A file a question answers with (an export, a quarantine, a report)."""

    name: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class NoParams:
    pass


def pairs(items: Sequence[str] | None, option: str) -> dict[str, list[str]]:
    """``NAME=VALUE`` parameters (repeatable) as {name: [values]}."""
    found: dict[str, list[str]] = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise UserError(f"{option} {item!r}: write it as COLUMN=VALUE.")
        found.setdefault(column.strip(), []).append(value)
    return found


# --- submissions -----------------------------------------------------------------


def _submissions(wh: Warehouse, me: Principal, _p: NoParams) -> list[Submission]:
    return wh.ingest.list_for(wh.access(me, DATA_QUALITY))


@dataclass(frozen=True)
class SubmissionParams:
    submission_id: int
    purpose: str = DATA_QUALITY


@dataclass(frozen=True)
class SubmissionView:
    """A submission's validation report and the decisions on its raw file."""

    report: Report
    raw_decisions: tuple[RawDecision, ...]


def _submission(wh: Warehouse, me: Principal, p: SubmissionParams) -> SubmissionView:
    report = wh.ingest.report(p.submission_id, wh.access(me, p.purpose))
    return SubmissionView(report, wh.ingest.raw_decisions(p.submission_id))


@dataclass(frozen=True)
class QuarantineParams:
    submission_id: int
    to: str = ""
    """where the rows go, for the audit entry"""


def _quarantine(wh: Warehouse, me: Principal, p: QuarantineParams) -> FileAnswer:
    text = wh.ingest.quarantine_csv(
        p.submission_id, wh.access(me, DATA_QUALITY), to=p.to or "an API client"
    )
    return FileAnswer(
        f"quarantine-{p.submission_id}.csv", "text/csv; charset=utf-8", text.encode()
    )


# --- rows and counts -------------------------------------------------------------


@dataclass(frozen=True)
class RowsParams:
    entity: str
    purpose: str
    provider: list[str] | None = None
    field: list[str] | None = None
    limit: int = 100
    cursor: str | None = None
    """where the page starts: the ``next_cursor`` of the page before"""
    extract: str | None = None
    """where the rows go when they are an extract for a program (exporting must
    be permitted then; the audit entry names it)"""


@dataclass(frozen=True)
class RowsPage:
    """A page of the rows of an entity the agreements give the reader."""

    table: pa.Table
    total_rows: int
    next_cursor: str | None
    grants: tuple[Grant, ...]
    refusals: tuple[Refusal, ...]
    protection: str | None = None
    """what was done to pseudonymous rows before they left (k, coarsened dates)"""


CHANGED = (
    "the warehouse changed since the first page was read; start again without a cursor."
)


@dataclass(frozen=True)
class _Cursor:
    offset: int
    change: int
    seed: int
    """the release's random row order: every page of it the same"""


def _listing(me: Principal, p: RowsParams) -> str:
    """What a cursor belongs to: the reader and the listing it asked for (a
    cursor of another listing would skip or repeat rows)."""
    asked = [p.entity, p.purpose, p.provider or [], p.field or [], p.extract, p.limit]
    return f"{me.user_id}:{json.dumps(asked, sort_keys=True)}"


def _parse_cursor(
    wh: Warehouse, me: Principal, p: RowsParams, cursor: str | None, now: int
) -> _Cursor:
    """Where a page starts and in which order, from the cursor the page before
    gave (sealed by the warehouse for this reader: a made-up order or one of
    another reader's is refused); refused (409) when anything changed in the
    warehouse since the first page (``now`` is its newest change), so that no page
    skips or repeats a row."""
    if not cursor:
        return _Cursor(0, now, new_seed())
    try:
        kind, offset, change, seed, tag = (
            base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        )
        expected = wh.seal(f"{_listing(me, p)}:{offset}:{change}:{seed}")
        if kind != "page" or not hmac.compare_digest(tag.encode(), expected.encode()):
            raise ValueError(kind)
        found = _Cursor(max(0, int(offset)), int(change), int(seed))
    except (ValueError, UnicodeError, TypeError):
        raise UserError(
            f"cursor {cursor!r} is not one this API gave you for this listing; "
            "start without one and follow next_cursor."
        ) from None
    if now != found.change:
        raise Conflict(CHANGED)
    return found


def _cursor(wh: Warehouse, me: Principal, p: RowsParams, at: _Cursor) -> str:
    body = f"{at.offset}:{at.change}:{at.seed}"
    tag = wh.seal(f"{_listing(me, p)}:{body}")
    return base64.urlsafe_b64encode(f"page:{body}:{tag}".encode()).decode()


def _rows(wh: Warehouse, me: Principal, p: RowsParams) -> RowsPage:
    if not 1 <= p.limit <= MAX_PAGE:
        raise UserError(f"limit {p.limit}: ask for 1 to {MAX_PAGE:,} rows a page.")
    before = wh.audit.last_change()
    at = _parse_cursor(wh, me, p, p.cursor, before)
    m = wh.access(me, p.purpose).rows(
        p.entity,
        providers=p.provider,
        fields=p.field,
        export_to=p.extract,
        page=(at.offset, p.limit),
        order_seed=at.seed,
    )
    if wh.audit.last_change() != before:  # changed while this page was read
        raise Conflict(CHANGED)
    total = m.total_rows or 0
    end = at.offset + m.table.num_rows
    return RowsPage(
        m.table,
        total,
        _cursor(wh, me, p, replace(at, offset=end)) if end < total else None,
        m.grants,
        m.refusals,
        m.protection.note() if m.protection else None,
    )


@dataclass(frozen=True)
class CountParams:
    entity: str
    purpose: str
    by: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    """COLUMN=VALUE (repeatable)"""
    matching: list[str] = field(default_factory=list)
    """COLUMN=VALUE: also count those matching, and the rate"""
    epsilon: float | None = None


def _count(wh: Warehouse, me: Principal, p: CountParams) -> Release:
    access = wh.access(me, p.purpose)
    if p.matching:
        return access.rate(
            p.entity,
            p.by,
            pairs(p.matching, "--matching"),
            where=pairs(p.where, "--where"),
        )
    return access.count(
        p.entity, p.by, where=pairs(p.where, "--where"), epsilon=p.epsilon
    )


# --- agreements ------------------------------------------------------------------


def _agreements(wh: Warehouse, me: Principal, _p: NoParams) -> list[VersionRecord]:
    return wh.agreements_for(wh.access(me, DATA_QUALITY))


@dataclass(frozen=True)
class AgreementParams:
    agreement_id: str


@dataclass(frozen=True)
class VersionWithChanges:
    """A version of an agreement and its changes from the one before."""

    version: VersionRecord
    changes: list[Change]


def _agreement(
    wh: Warehouse, me: Principal, p: AgreementParams
) -> list[VersionWithChanges]:
    return [
        VersionWithChanges(v, changes)
        for v, changes in wh.agreement_history(
            wh.access(me, DATA_QUALITY), p.agreement_id
        )
    ]


@dataclass(frozen=True)
class DiffParams:
    agreement_id: str
    v1: int
    v2: int


def _diff(wh: Warehouse, me: Principal, p: DiffParams) -> list[Change]:
    # who may read the agreement may compare its versions
    wh.agreement_history(wh.access(me, DATA_QUALITY), p.agreement_id)
    return wh.agreements.diff(p.agreement_id, p.v1, p.v2)


@dataclass(frozen=True)
class ApproveParams:
    agreement_id: str
    version: int
    party: str | None = None
    """the party approving (default: your own partner)"""
    title: str | None = None


def _approve(wh: Warehouse, me: Principal, p: ApproveParams) -> VersionRecord:
    wh.agreement_history(wh.access(me, DATA_QUALITY), p.agreement_id)
    with wh.session(me) as s:
        return wh.agreements.approve(
            s,
            p.agreement_id,
            p.party or me.partner_id,
            on=wh.today(),
            version=p.version,
            title=p.title,
        )


@dataclass(frozen=True)
class OdcsParams:
    agreement_id: str
    on: date | None = None


@dataclass(frozen=True)
class ContractDocument:
    """An Open Data Contract Standard v3 document: one dataset an agreement shares."""

    name: str
    document: dict[str, Any]


def _odcs(wh: Warehouse, me: Principal, p: OdcsParams) -> list[ContractDocument]:
    from backbone.partners.agreements.odcs import odcs_documents

    history = wh.agreement_history(wh.access(me, DATA_QUALITY), p.agreement_id)
    on = p.on or wh.today()
    in_force = wh.agreements.in_force(p.agreement_id, on)
    if in_force is None:
        raise NotFoundError(
            f"agreement {p.agreement_id} has no version in force on {on}; "
            f"its versions are {', '.join(str(v.version) for v, _ in history)}."
        )
    return [ContractDocument(n, d) for n, d in odcs_documents(in_force)]


# --- requests, audit, disclosures ------------------------------------------------


def _requests(wh: Warehouse, me: Principal, _p: NoParams) -> list[DataRequest]:
    return wh.requests_for(wh.access(me, "data_quality"))


@dataclass(frozen=True)
class RequestParams:
    request_id: str


def _request(wh: Warehouse, me: Principal, p: RequestParams) -> DataRequest:
    return wh.request_for(wh.access(me, DATA_QUALITY), p.request_id)


@dataclass(frozen=True)
class ReviewParams:
    request_id: str
    decision: str
    """approve, approve_with_conditions, deny or revise"""
    fit: int
    protections: int
    minimum_necessary: int
    provider: str | None = None
    """the providing partner reviewing (default: your own)"""
    conditions: str | None = None
    comments: str | None = None


def _review(wh: Warehouse, me: Principal, p: ReviewParams) -> DataRequest:
    wh.request_for(wh.access(me, DATA_QUALITY), p.request_id)
    with wh.session(me) as s:
        wh.requests.review(
            s,
            p.request_id,
            provider=p.provider or me.partner_id,
            decision=p.decision,
            fit=p.fit,
            protections=p.protections,
            minimum_necessary=p.minimum_necessary,
            on=wh.today(),
            conditions=p.conditions,
            comments=p.comments,
        )
    return wh.request_for(wh.access(me, DATA_QUALITY), p.request_id)


def _verify(wh: Warehouse, me: Principal, _p: NoParams) -> Verification:
    return wh.audit.verify_for(wh.access(me, "stewardship"))


@dataclass(frozen=True)
class DisclosureParams:
    partner: str
    since: date | None = None


def _disclosures(wh: Warehouse, me: Principal, p: DisclosureParams) -> DisclosureReport:
    from datetime import datetime, time

    since = None if p.since is None else datetime.combine(p.since, time())
    with wh.session(me) as s:
        return wh.audit.report(s, p.partner, since=since)


@dataclass(frozen=True)
class CrosswalkParams:
    format: str = "csv"
    to: str = ""


def _crosswalk(wh: Warehouse, me: Principal, p: CrosswalkParams) -> FileAnswer:
    if p.format not in ("csv", "xlsx", "parquet"):
        raise UserError("ask for the crosswalk as csv, xlsx or parquet.")
    name = f"crosswalk-{me.partner_id}.{p.format}"
    export = wh.linkage.export_crosswalk(
        wh.access(me, IDENTITY_RESOLUTION),
        me.partner_id,
        ExportFormat(p.format),
        destination=p.to or f"an API client ({name})",
    )
    media = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "parquet": "application/vnd.apache.parquet",
    }[p.format]
    return FileAnswer(name, media, export.content)


# --- measures ---------------------------------------------------------------------


@dataclass(frozen=True)
class RosterParams:
    purpose: str = "early_warning"
    school_year: int | None = None
    as_of: date | None = None
    tier: list[str] | None = None
    """on track, watch, high risk (repeatable)"""
    school: str | None = None
    district: str | None = None
    grade: str | None = None
    not_served: bool = False
    limit: int | None = None
    """the first this many, worst first (all when left out)"""
    extract: str | None = None
    """where the roster goes when it is an extract (exporting must be permitted)"""


@dataclass(frozen=True)
class RosterPage:
    """The early-warning roster, worst first, as every door shows it (its first
    ``limit`` students)."""

    table: pa.Table
    total_rows: int
    school_year: int
    year_label: str
    """the school year as the partnership writes it (2025-26)"""
    as_of: date
    definition_version: int
    providers: tuple[str, ...]
    refused: dict[str, str]


def _roster(wh: Warehouse, me: Principal, p: RosterParams) -> RosterPage:
    from backbone.measures.indicators import roster_in_words

    if p.limit is not None and p.limit < 1:
        raise UserError(f"limit {p.limit}: ask for at least one student.")
    r = wh.indicators.roster(
        wh.access(me, p.purpose),
        school_year=p.school_year,
        as_of=p.as_of,
        tiers=p.tier,
        school=p.school,
        district=p.district,
        grade=p.grade,
        not_served=p.not_served,
        export_to=p.extract,
    )
    words = roster_in_words(wh.risk.ranked(r))
    return RosterPage(
        words if p.limit is None else words.slice(0, p.limit),
        words.num_rows,
        r.snapshot.school_year,
        school_year_label(
            r.snapshot.school_year, wh.settings["calendar.school_year_start_month"]
        ),
        r.snapshot.as_of,
        r.snapshot.definition_version,
        r.providers,
        dict(r.refused),
    )


@dataclass(frozen=True)
class IndicatorCountParams:
    purpose: str = "early_warning"
    by: list[str] = field(default_factory=list)
    school_year: int | None = None
    as_of: date | None = None
    where: list[str] = field(default_factory=list)
    share_of: list[str] = field(default_factory=list)
    """NAME=VALUE: also the share matching it, e.g. tier=high risk"""


def _indicator_count(wh: Warehouse, me: Principal, p: IndicatorCountParams) -> Release:
    return wh.indicators.count(
        wh.access(me, p.purpose),
        p.by,
        school_year=p.school_year,
        as_of=p.as_of,
        where=pairs(p.where, "--where"),
        numerator=pairs(p.share_of, "--share-of") or None,
    )


@dataclass(frozen=True)
class OutcomesParams:
    initiative_id: str
    purpose: str | None = None
    """initiative_outcomes (a funder) or program_evaluation (the steward)"""


def _outcomes_purpose(me: Principal, p: Any) -> str:
    given: str | None = p.purpose
    return given or ("program_evaluation" if me.is_steward else "initiative_outcomes")


def _evaluated(wh: Warehouse, access: Access, p: OutcomesParams) -> dict[str, Any]:
    return wh.outcomes.evaluate(access, p.initiative_id).report()


@dataclass(frozen=True)
class CollegeParams:
    by: str = "high_school,class_of"
    """dimensions, comma-separated"""
    measure: list[str] | None = None
    purpose: str = "college_outcomes"


def _college(wh: Warehouse, access: Access, p: CollegeParams) -> CollegeReport:
    from backbone.measures.college import college_report

    dims = tuple(d.strip() for d in p.by.split(",") if d.strip())
    return college_report(access, as_of=access.on, by=dims, measures=p.measure)


@dataclass(frozen=True)
class ScorecardParams:
    year: list[int] | None = None
    purpose: str = "shared_measurement"


def _scorecard(wh: Warehouse, access: Access, p: ScorecardParams) -> Scorecard:
    from backbone.measures.scorecard import scorecard

    return scorecard(wh, access, years=p.year)


def _local(prepared: Prepared) -> Callable[[Warehouse, Principal, Any], Any]:
    """A prepared question answered there and then (the CLI on a folder)."""

    def answer(wh: Warehouse, me: Principal, p: Any) -> Any:
        return prepared.make(wh, wh.access(me, prepared.purpose(me, p)), p)

    return answer


_OUTCOMES = Prepared(
    "an initiative's evaluation",
    _outcomes_purpose,
    _evaluated,
    lambda p: (p.initiative_id,),
)
_COLLEGE = Prepared(
    "the college outcomes",
    lambda _me, p: str(p.purpose),
    _college,
    lambda p: (p.by, tuple(p.measure or ())),
)
_SCORECARD = Prepared(
    "the shared-measurement scorecard",
    lambda _me, p: str(p.purpose),
    _scorecard,
    lambda p: (tuple(p.year or ()),),
)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "submissions",
        "GET",
        "/submissions",
        NoParams,
        list[Submission],
        _submissions,
        "The submissions you may see, newest first (a partner's users: their "
        "partner's; the steward: all), with their reconciled counts.",
        "submissions",
    ),
    Question(
        "submission",
        "GET",
        "/submissions/{submission_id}",
        SubmissionParams,
        SubmissionView,
        _submission,
        "A submission's validation report: counts, and errors by rule with examples.",
        "submissions",
    ),
    Question(
        "quarantine",
        "GET",
        "/submissions/{submission_id}/quarantine",
        QuarantineParams,
        FileAnswer,
        _quarantine,
        "A submission's quarantined rows as CSV, each with its reasons: fix them "
        "and send the file back.",
        "submissions",
    ),
    Question(
        "rows",
        "GET",
        "/rows/{entity}",
        RowsParams,
        RowsPage,
        _rows,
        "Row-level view of an entity: only the rows and fields the agreements give "
        "you for the purpose. Pages of `limit` rows; follow `next_cursor`.",
        "rows and counts",
    ),
    Question(
        "count",
        "GET",
        "/counts/{entity}",
        CountParams,
        Release,
        _count,
        "Persons per group through the release gate (small cells and the cells "
        "that would give them away suppressed); with `matching`, rates too.",
        "rows and counts",
    ),
    Question(
        "agreements",
        "GET",
        "/agreements",
        NoParams,
        list[VersionRecord],
        _agreements,
        "Every version of the agreements you are a party to (the steward: all).",
        "agreements",
    ),
    Question(
        "agreement",
        "GET",
        "/agreements/{agreement_id}",
        AgreementParams,
        list[VersionWithChanges],
        _agreement,
        "One agreement's versions, each with its changes from the one before and "
        "its approvals.",
        "agreements",
    ),
    Question(
        "agreement_diff",
        "GET",
        "/agreements/{agreement_id}/diff",
        DiffParams,
        list[Change],
        _diff,
        "What changed between two versions of an agreement, each change with its effect.",
        "agreements",
    ),
    Question(
        "approve",
        "POST",
        "/agreements/{agreement_id}/versions/{version}/approvals",
        ApproveParams,
        VersionRecord,
        _approve,
        "Approve a version of an agreement for a party (your own partner by default).",
        "agreements",
    ),
    Question(
        "agreement_odcs",
        "GET",
        "/agreements/{agreement_id}/odcs",
        OdcsParams,
        list[ContractDocument],
        _odcs,
        "The version in force as Open Data Contract Standard v3 documents, one per "
        "shared dataset.",
        "agreements",
    ),
    Question(
        "requests",
        "GET",
        "/requests",
        NoParams,
        list[DataRequest],
        _requests,
        "The data-use requests you may read.",
        "requests",
    ),
    Question(
        "request",
        "GET",
        "/requests/{request_id}",
        RequestParams,
        DataRequest,
        _request,
        "One data-use request with its reviews.",
        "requests",
    ),
    Question(
        "review",
        "POST",
        "/requests/{request_id}/reviews",
        ReviewParams,
        DataRequest,
        _review,
        "Review a data-use request for a providing partner.",
        "requests",
    ),
    Question(
        "disclosures",
        "GET",
        "/disclosures",
        DisclosureParams,
        DisclosureReport,
        _disclosures,
        "Every disclosure of a partner's data (FERPA recordation), with the chain "
        "head to keep as an anchor: for the partner's own users and the steward.",
        "audit",
    ),
    Question(
        "audit_verify",
        "GET",
        "/audit/verify",
        NoParams,
        Verification,
        _verify,
        "Check the audit chain end to end (the steward).",
        "audit",
    ),
    Question(
        "roster",
        "GET",
        "/indicators/roster",
        RosterParams,
        RosterPage,
        _roster,
        "The early-warning roster, worst first: the students the agreements let "
        "you see, with tiers and top factors (the first `limit`, or all).",
        "measures",
    ),
    Question(
        "indicator_count",
        "GET",
        "/indicators/counts",
        IndicatorCountParams,
        Release,
        _indicator_count,
        "Students per segment (district, school, grade, group, tier, indicator "
        "level) through the release gate; with `share_of`, shares too.",
        "measures",
    ),
    Question(
        "outcomes",
        "GET",
        "/initiatives/{initiative_id}/outcomes",
        OutcomesParams,
        dict[str, Any],
        _local(_OUTCOMES),
        "An initiative's programs against matched comparison groups (effects with "
        "intervals, balance, dose, subgroups), as released. Costly: answered 202 "
        "with a `Location` to poll while it is prepared.",
        "measures",
        prepared=_OUTCOMES,
    ),
    Question(
        "college",
        "GET",
        "/college",
        CollegeParams,
        CollegeReport,
        _local(_COLLEGE),
        "Graduates' college outcomes by high school and class (StudentTracker's "
        "measures), as released. May answer 202 while it is prepared.",
        "measures",
        prepared=_COLLEGE,
    ),
    Question(
        "scorecard",
        "GET",
        "/scorecard",
        ScorecardParams,
        Scorecard,
        _local(_SCORECARD),
        "The shared-measurement scorecard, each district beside the community, as "
        "released. May answer 202 while it is prepared.",
        "measures",
        prepared=_SCORECARD,
    ),
    Question(
        "crosswalk",
        "GET",
        "/crosswalk",
        CrosswalkParams,
        FileAnswer,
        _crosswalk,
        "Your partner's local ids with their person ids (csv, xlsx or parquet).",
        "identity",
    ),
)

BY_NAME = {q.name: q for q in QUESTIONS}
