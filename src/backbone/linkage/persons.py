"""The warehouse's identity stage: link, review, explain, give ids back, evaluate.

:class:`Linkage` is what the warehouse hands out as ``wh.linkage``; the CLI only
translates into and out of it.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from backbone.engines import (
    Connection,
    EngineError,
    arrow,
    create_table_as,
    registered,
)
from backbone.engines.offload import EngineChoice
from backbone.engines.splink import scratch_api
from backbone.errors import (
    Conflict,
    InputFileError,
    NotFoundError,
    PolicyDenied,
    UserError,
    WarehouseError,
)
from backbone.governance.policy import Grant
from backbone.linkage import model, prepare
from backbone.linkage.holdings import (
    UNSERVED_ALERT,
    Holdings,
    confirm_held,
    unbacked_counts,
    unbacked_records,
    withdraw_held,
)
from backbone.linkage.link import InputsChanged, LinkSummary, records_sql, run_linkage
from backbone.linkage.model import ComparisonWeight
from backbone.linkage.pprl import BITS
from backbone.partners.agreements import AgreementDocument, AgreementRegistry
from backbone.partners.agreements.document import AccessLevel
from backbone.session import AuditEntry, Session
from backbone.settings import Settings

if TYPE_CHECKING:
    from backbone.governance.access import Access, Export, ExportFormat

__all__ = [
    "ComparisonWeight",
    "Evaluation",
    "EventPair",
    "IdentityRecord",
    "KindAccuracy",
    "LinkEvidence",
    "LinkRun",
    "Linkage",
    "PairExplanation",
    "PersonEvent",
    "PersonView",
    "RecordKey",
    "ReviewDecision",
    "ReviewPair",
    "ReviewStep",
]

IDENTITY_FIELDS = (
    "first_name",
    "middle_name",
    "last_surname",
    "birth_date",
    "birth_sex",
    "address",
    "postal_code",
    "state_student_id",
    "school",
)


@dataclass(frozen=True, order=True)
class RecordKey:
    partner_id: str
    local_id: str

    @classmethod
    def parse(cls, text: str) -> RecordKey:
        partner, sep, local = text.partition(":")
        if not sep or not partner or not local:
            raise UserError(
                f"'{text}' is not a record; write it as PARTNER:LOCAL_ID, "
                "e.g. d01-northfield:425045."
            )
        return cls(partner, local)

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.local_id}"


@dataclass(frozen=True)
class IdentityRecord:
    """A partner record's identifying fields, as far as the reader may see them: a
    field the agreements keep from them is None, like a field the partner left out."""

    partner_id: str
    local_id: str
    first_name: str | None = None
    middle_name: str | None = None
    last_surname: str | None = None
    birth_date: date | None = None
    birth_sex: str | None = None
    address: str | None = None
    postal_code: str | None = None
    state_student_id: str | None = None
    school: str | None = None
    person_id: int | None = None
    """the person it is linked to (None before the first link run)"""
    method: str | None = None
    """how it joined its person: deterministic, model, encoded, review or single"""
    encoded: bool = False
    """known only by its privacy-preserving encoding (no identifying fields)"""

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.partner_id, self.local_id)

    def showing(self, fields: Collection[str]) -> IdentityRecord:
        """The record with its identifying fields outside ``fields`` blanked, as if
        the partner had not sent them."""
        hidden: dict[str, Any] = {f: None for f in IDENTITY_FIELDS if f not in fields}
        return replace(self, **hidden)

    @property
    def name(self) -> str:
        """First, middle and last name as far as known ("" if none is)."""
        return " ".join(
            n for n in (self.first_name, self.middle_name, self.last_surname) if n
        )


@dataclass(frozen=True)
class PairExplanation:
    """One pair under the saved model: both records (the fields both providers'
    agreements declare), the weights comparison by comparison, the last run's word."""

    left: IdentityRecord
    right: IdentityRecord
    match_weight: float
    match_probability: float
    parts: tuple[ComparisonWeight, ...]
    decision: str | None
    """the last run's decision on the pair (link, review, refused, implied), if scored"""
    method: str | None


@dataclass(frozen=True)
class ReviewPair:
    left: RecordKey
    right: RecordKey
    match_probability: float
    method: str


@dataclass(frozen=True)
class ReviewStep:
    """Where a reviewer is in the queue (:meth:`Linkage.review_next`): the pair at
    ``position`` shown side by side, or none once the queue is empty or skipped
    through."""

    waiting: int
    """pairs in the queue"""
    position: int
    """0-based; pairs before it were skipped in this sitting"""
    pair: ReviewPair | None
    explanation: PairExplanation | None


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's decision on a pair of records."""

    left: RecordKey
    right: RecordKey
    decision: str
    """``same`` or ``different``"""
    by: str
    at: datetime


@dataclass(frozen=True)
class LinkRun:
    """One run of ``backbone link`` as recorded (its trained model left out)."""

    run_id: int
    started_at: datetime
    finished_at: datetime
    records: int
    pairs_scored: int
    auto_links: int
    deterministic_links: int
    encoded_links: int
    review_pairs: int
    refused_by_constraints: int
    persons: int
    new_persons: int
    merges: int
    splits: int
    auto_link_probability: float
    review_probability: float


@dataclass(frozen=True)
class LinkEvidence:
    """A scored pair of records as the last run decided it."""

    left: RecordKey
    right: RecordKey
    method: str
    match_weight: float | None
    """the model's weight (None for identifiers, encodings and reviews)"""
    match_probability: float
    decision: str
    reason: str | None
    """why a pair was refused (a constraint), if it was"""


@dataclass(frozen=True)
class EventPair:
    """One pair behind a merge or a split, as logged when it happened."""

    left: str
    right: str
    method: str | None
    probability: float | None
    decision: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PersonEvent:
    """A merge, split or retirement of a person in a link run, with its pairs."""

    run_id: int
    event: str
    """merge, split or retire"""
    person_id: int
    other_person_id: int | None
    records: int
    evidence: tuple[EventPair, ...]
    happened_at: datetime


@dataclass(frozen=True)
class PersonView:
    person_id: int
    created_at: datetime
    retired_at: datetime | None
    merged_into: int | None
    records: list[IdentityRecord]
    evidence: list[LinkEvidence]
    events: list[PersonEvent]


@dataclass(frozen=True)
class KindAccuracy:
    """Pairwise accuracy among the records of one pair of partner kinds."""

    kinds: str
    """such as community org–district"""
    true_pairs: int
    predicted_pairs: int
    true_positives: int

    @property
    def precision(self) -> float:
        return (
            self.true_positives / self.predicted_pairs if self.predicted_pairs else 1.0
        )

    @property
    def recall(self) -> float:
        return self.true_positives / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)


@dataclass(frozen=True)
class Evaluation:
    records: int
    true_pairs: int
    predicted_pairs: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    true_persons: int
    predicted_persons: int
    cluster_precision: float
    cluster_recall: float
    cluster_f1: float
    by_partner_kind: list[KindAccuracy]
    not_held: int = 0
    """records of the truth the warehouse does not hold (refused, or never sent)"""


_KIND_LABELS = {
    "school_district": "district",
    "community_organization": "community org",
    "higher_education_agency": "college agency",
}


def _short_kinds(kinds: str) -> str:
    return "–".join(_KIND_LABELS.get(k, k) for k in kinds.split("–"))


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


class Linkage:
    """Identity resolution over one warehouse's connection."""

    def __init__(
        self,
        con: Connection,
        path: Path,
        settings: Settings,
        agreements: AgreementRegistry,
    ) -> None:
        self._con = con
        self._path = path
        self._settings = settings
        self._agreements = agreements

    # --- running -----------------------------------------------------------------

    def _documents_in_force(self, on: date) -> list[AgreementDocument]:
        """The version of each agreement in force on ``on`` that has not ended."""
        docs = []
        for agreement_id in self._agreements.ids():
            state = self._agreements.state(agreement_id, on)
            if state.version is not None and not state.ended:
                docs.append(state.version.document)
        return docs

    def linkable_pairs(self, on: date) -> set[tuple[str, str]]:
        """Partner pairs whose agreements in force on ``on`` both allow linking."""
        allowed: dict[str, set[str]] = {}
        for doc in self._documents_in_force(on):
            if doc.status != "active" or not doc.linkage.allowed:
                continue
            allowed.setdefault(doc.parties.provider, set()).update(
                doc.linkage.linkable_with
            )
        return {
            (a, b)
            for a, others in allowed.items()
            for b in others
            if a in allowed.get(b, set())
        }

    # --- which records open others' facts (:mod:`backbone.linkage.holdings`) ------

    def unbacked(self, s: Session, partner: str | None = None) -> Holdings:
        """Records linked to persons others hold that nothing of their partner's
        backs, and the confirmations in force (of one partner, or all): the
        steward admin's, audited."""
        return unbacked_records(s, partner)

    def confirm_held(
        self, s: Session, partner: str, local_id: str, reason: str
    ) -> None:
        """Confirm that ``partner`` serves the person of its record ``local_id``."""
        confirm_held(s, partner, local_id, reason, s.clock())

    def withdraw_held(
        self, s: Session, partner: str, local_id: str, reason: str
    ) -> bool:
        """Withdraw such a confirmation; whether there was one."""
        return withdraw_held(s, partner, local_id, reason)

    def run(
        self,
        s: Session,
        *,
        progress: Callable[[str], None] | None = None,
        on: date | None = None,
        retrain: bool = False,
        engine: str | None = None,
    ) -> LinkSummary:
        """Link every partner record; persons keep their ids across runs.

        The model is trained on the first run and reused after, unless ``retrain``.
        Only the steward links (a role that may ``link``), and only partner pairs
        whose agreements in force on ``on`` (default: today) allow it. The run's
        results, the encodings it purges and its ``link`` audit entry are written in
        the session's one transaction.
        """
        s.require("link", "link partner records", action="link")
        choice = EngineChoice.of(self._settings, self._path, engine)
        today = on or s.today()
        for attempt in range(3):
            # the agreements are read again each try: one may have changed meanwhile
            linkable = self.linkable_pairs(today)
            try:
                summary = run_linkage(
                    s,
                    self._path,
                    self._settings,
                    linkable=linkable,
                    retrain=retrain,
                    progress=progress,
                    engine=choice,
                )
                break
            except InputsChanged:
                # another process submitted or reviewed while the model worked
                if attempt == 2:
                    raise WarehouseError(
                        "partner records kept changing while linking (three tries); "
                        "run `backbone link` again when submissions are done."
                    ) from None
                if progress:
                    progress("records changed meanwhile; linking again")
        self._purge_encodings(s.con, today, s.clock().replace(tzinfo=None))
        unserved = unbacked_counts(s.con)
        summary = replace(summary, unserved=unserved)
        s.record(
            "link",
            f"link run {summary.run_id}",
            providers=tuple(sorted({p for pair in linkable for p in pair})),
            rows=summary.records,
            detail={
                "persons": summary.persons,
                **({"engine": choice.where()} if choice.on_spark else {}),
                **({"unserved": dict(unserved)} if unserved else {}),
            },
        )
        many = [(p, n) for p, n in unserved if n >= UNSERVED_ALERT]
        if many:
            s.record(
                "alert",
                "records linked to persons their partner never served: "
                + ", ".join(f"{p} {n:,}" for p, n in many),
                providers=tuple(p for p, _ in many),
                detail={"run": summary.run_id, "unserved": dict(many)},
            )
        return summary

    def _purge_encodings(self, con: Connection, today: date, now: datetime) -> int:
        """Delete encodings the provider's agreement says not to keep after linking
        (as of ``now``, the session's clock, or the end of ``today`` if earlier)."""
        keep_days: dict[str, int | None] = {}
        for doc in self._documents_in_force(today):
            days = doc.linkage.keys_retention_days
            if days is None:
                continue
            # the strictest agreement of a provider decides
            earlier = keep_days.get(doc.parties.provider)
            keep_days[doc.parties.provider] = (
                days if earlier is None else min(earlier, days)
            )
        deleted = 0
        partners = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT partner_id FROM identity.encoding"
            ).fetchall()
        ]
        for partner in partners:
            days = keep_days.get(partner, 0)
            if days is None:
                continue
            cutoff = now
            if today < cutoff.date():  # linking as of an earlier day
                cutoff = datetime.combine(today, datetime.max.time())
            rows = con.execute(
                "DELETE FROM identity.encoding WHERE partner_id = ? "
                "AND received_at + to_days(?) <= ? RETURNING 1",
                [partner, days, cutoff],
            ).fetchall()
            deleted += len(rows)
        return deleted

    def last_run(self) -> LinkRun | None:
        """The latest run of ``backbone link``; None before the first."""
        columns = ", ".join(f.name for f in fields(LinkRun))
        rows = self._con.execute(
            f"SELECT {columns} FROM identity.link_run ORDER BY run_id DESC LIMIT 1"
        ).fetchall()
        return LinkRun(*rows[0]) if rows else None

    # --- records, persons, evidence ------------------------------------------------

    def _record(self, key: RecordKey, con: Connection | None = None) -> IdentityRecord:
        con = con or self._con
        cur = con.execute(
            """
            SELECT pr.partner_id, pr.local_id, pr.first_name, pr.middle_name,
                   pr.last_surname, pr.birth_date, pr.birth_sex, pr.address,
                   pr.postal_code, pr.state_student_id,
                   coalesce(s.name, pr.school_name) AS school,
                   rp.person_id, rp.method
            FROM identity.partner_record pr
            LEFT JOIN ref.school s ON s.school_id = pr.school_id
            LEFT JOIN identity.record_person rp
                   ON rp.partner_id = pr.partner_id AND rp.local_id = pr.local_id
            WHERE pr.partner_id = ? AND pr.local_id = ?
            """,
            [key.partner_id, key.local_id],
        )
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if not rows:
            encoded = con.execute(
                "SELECT 1 FROM identity.encoding WHERE partner_id = ? AND local_id = ?",
                [key.partner_id, key.local_id],
            ).fetchall()
            if encoded:
                return IdentityRecord(key.partner_id, key.local_id, encoded=True)
            raise NotFoundError(
                f"No record {key}. `backbone person show ID` lists a person's records."
            )
        return IdentityRecord(**dict(zip(names, rows[0], strict=True)))

    def person(self, access: Access, person_id: int) -> PersonView:
        """A person's records and evidence, as far as ``access`` may see them: only
        records of providers that grant a row-level view, only permitted fields."""
        rows = self._con.execute(
            "SELECT created_at, retired_at, merged_into FROM identity.person WHERE person_id = ?",
            [person_id],
        ).fetchall()
        absent = NotFoundError(
            f"No person {person_id}. `backbone export crosswalk` lists person ids."
        )
        if not rows:
            raise absent
        created, retired, merged = rows[0]
        seen = access.rows("record_person", person_ids=[person_id]).table
        links = {(r["partner_id"], r["local_id"]) for r in seen.to_pylist()}
        if not links and not (access.principal.is_steward and retired is not None):
            # the same answer as for no such person: nothing to see is nothing
            # (the steward alone sees a retired person's history)
            raise absent
        # evidence names records of other persons too (splits): shown only where
        # the principal may see both providers' identifying records
        open_to = {
            g.provider
            for g in access.grants("partner_record", "row_level_view")
            if isinstance(g, Grant) and g.access is AccessLevel.identified
        }

        def shown(record: object) -> bool:
            return str(record).split(":", 1)[0] in open_to

        permitted = access.rows("partner_record", person_ids=[person_id]).table
        details = {(r["partner_id"], r["local_id"]): r for r in permitted.to_pylist()}
        schools = dict(
            self._con.execute("SELECT school_id, name FROM ref.school").fetchall()
        )
        methods = dict(
            ((r[0], r[1]), r[2])
            for r in self._con.execute(
                "SELECT partner_id, local_id, method FROM identity.record_person "
                "WHERE person_id = ?",
                [person_id],
            ).fetchall()
        )
        records = []
        for key in sorted(links):
            d = details.get(key, {})
            records.append(
                IdentityRecord(
                    key[0],
                    key[1],
                    **{f: d.get(f) for f in IDENTITY_FIELDS if f != "school"},
                    school=schools.get(d.get("school_id")) or d.get("school_name"),
                    person_id=person_id,
                    method=methods.get(key, ""),
                )
            )
        rows = self._con.execute(
            """
            SELECT e.partner_id_l, e.local_id_l, e.partner_id_r, e.local_id_r,
                   e.method, e.match_weight, e.match_probability, e.decision, e.reason
            FROM identity.link_edge e
            JOIN identity.record_person a ON a.partner_id = e.partner_id_l AND a.local_id = e.local_id_l
            JOIN identity.record_person b ON b.partner_id = e.partner_id_r AND b.local_id = e.local_id_r
            WHERE a.person_id = ? OR b.person_id = ?
            ORDER BY e.decision, e.match_probability DESC
            """,
            [person_id, person_id],
        ).fetchall()
        evidence = [
            e
            for e in (
                LinkEvidence(RecordKey(r[0], r[1]), RecordKey(r[2], r[3]), *r[4:])
                for r in rows
            )
            if shown(e.left) and shown(e.right)
        ]
        rows = self._con.execute(
            """
            SELECT run_id, event, person_id, other_person_id, records, evidence, happened_at
            FROM identity.person_event WHERE person_id = ? OR other_person_id = ?
            ORDER BY run_id, event
            """,
            [person_id, person_id],
        ).fetchall()
        events = [
            PersonEvent(
                run_id,
                event,
                person,
                other,
                records_moved,
                # only the pairs whose two records this principal may see
                tuple(
                    EventPair(
                        p.get("left"),
                        p.get("right"),
                        p.get("method"),
                        p.get("probability"),
                        p.get("decision"),
                        p.get("reason"),
                    )
                    for p in json.loads(pairs)
                    if shown(p.get("left")) and shown(p.get("right"))
                ),
                happened_at,
            )
            for run_id, event, person, other, records_moved, pairs, happened_at in rows
        ]
        return PersonView(
            person_id, created, retired, merged, records, evidence, events
        )

    def linked_person(self, access: Access, person_id: int) -> PersonView:
        """:meth:`person` as the steward's identity-resolution work sees it (every
        link's evidence): for whoever links (the steward); anyone else is refused,
        and the refusal audited, whatever records of its own the person has."""
        access.require_steward("link", f"the records and links of person {person_id}")
        return self.person(access, person_id)

    def explain(
        self, access: Access, left: RecordKey, right: RecordKey
    ) -> PairExplanation:
        """The saved model's match weights for one pair, comparison by comparison:
        for whoever may link both providers' records (the steward)."""
        left, right = sorted((left, right))
        grants = access.require(
            "partner_record",
            "link",
            [left.partner_id, right.partner_id],
            what=f"explain a pair of {left.partner_id} and {right.partner_id} records",
        )
        # a field is shown only where both providers' agreements declare it
        allowed = (
            set.intersection(*(set(g.fields) for g in grants)) if grants else set()
        )
        a, b = self._record(left), self._record(right)
        run = self._con.execute(
            "SELECT model_json FROM identity.link_run ORDER BY run_id DESC LIMIT 1"
        ).fetchall()
        if not run or run[0][0] == "{}":
            raise UserError("No linkage model yet: run `backbone link` first.")
        edge = self._con.execute(
            "SELECT decision, method FROM identity.link_edge WHERE partner_id_l = ? "
            "AND local_id_l = ? AND partner_id_r = ? AND local_id_r = ?",
            [left.partner_id, left.local_id, right.partner_id, right.local_id],
        ).fetchall()
        if a.encoded or b.encoded:
            raise UserError(
                f"{left} or {right} is known only by its privacy-preserving encoding; "
                "its evidence is the Dice similarity shown by `backbone person show`."
            )
        with tempfile.TemporaryDirectory(prefix="backbone-explain-") as scratch:
            api = scratch_api(Path(scratch), memory_limit="1GB")
            s = api.duckdb_con
            try:
                pair_source = arrow(
                    self._con,
                    records_sql(
                        "(pr.partner_id, pr.local_id) IN ((?, ?), (?, ?))",
                        self._settings["calendar.school_year_start_month"],
                    ),
                    [left.partner_id, left.local_id, right.partner_id, right.local_id],
                )
                prepare.load_nicknames(s)
                with registered(s, pair_source=pair_source):
                    create_table_as(
                        s,
                        "pair_input",
                        prepare.linkage_input_sql("pair_source")
                        + " ORDER BY partner_id, local_id",
                    )
                names = s.execute(
                    "SELECT first_name, last_name FROM pair_input"
                ).fetchall()
                for side, rank, (first, last) in (
                    ("pair_l", 1, names[0]),
                    ("pair_r", 2, names[1]),
                ):
                    tf = self._name_frequencies(first, last)
                    create_table_as(
                        s,
                        side,
                        "SELECT *, ?::DOUBLE AS tf_first_name, ?::DOUBLE AS tf_last_name "
                        "FROM pair_input QUALIFY row_number() OVER "
                        f"(ORDER BY partner_id, local_id) = {rank}",
                        [tf["tf_first_name"], tf["tf_last_name"]],
                    )
                score = model.explain_pair(api, run[0][0], "pair_l", "pair_r")
            finally:
                s.close()
        # local ids stay out of the log: it is shown to every provider named in it
        access.log(
            "read",
            f"a pair of {left.partner_id} and {right.partner_id} records side by side",
            providers=sorted({left.partner_id, right.partner_id}),
            rows=2,
        )
        shown = set(allowed)
        if {"school_id", "school_name"} & shown:
            shown.add("school")
        return PairExplanation(
            a.showing(shown),
            b.showing(shown),
            score.match_weight,
            score.match_probability,
            score.parts,
            edge[0][0] if edge else None,
            edge[0][1] if edge else None,
        )

    def _name_frequencies(
        self, first: str | None, last: str | None
    ) -> dict[str, float]:
        """How common the names are among all records (Splink's term frequencies)."""
        row = self._con.execute(
            f"""
            SELECT count(*) FILTER (WHERE {prepare.name_sql("first_name")} = ?)
                       / greatest(count(first_name), 1),
                   count(*) FILTER (WHERE {prepare.name_sql("last_surname")} = ?)
                       / greatest(count(last_surname), 1)
            FROM identity.partner_record
            """,
            [first, last],
        ).fetchall()[0]
        return {
            "tf_first_name": float(row[0] or 0.0),
            "tf_last_name": float(row[1] or 0.0),
        }

    # --- clerical review --------------------------------------------------------------

    def review_queue(
        self, access: Access, limit: int | None = None
    ) -> list[ReviewPair]:
        """Pairs between the bounds, most likely first, not yet decided: those
        whose two providers both let ``access`` link their records."""
        access.require_steward("link", "the review queue")
        queue = self._queue(None)
        verdict: dict[tuple[str, str], bool] = {}
        for p in queue:
            key = (p.left.partner_id, p.right.partner_id)
            if key not in verdict:
                verdict[key] = not access.link_refusals(*key)
        pairs = [p for p in queue if verdict[(p.left.partner_id, p.right.partner_id)]][
            : limit if limit is not None else None
        ]
        access.log(
            "read",
            "review queue",
            providers=sorted({k.partner_id for p in pairs for k in (p.left, p.right)}),
            rows=len(pairs),
        )
        return pairs

    def review_next(self, access: Access, position: int = 0) -> ReviewStep:
        """The queue's pair at ``position`` (the ones before it skipped), its two
        records side by side with the model's weights (:meth:`explain`): for
        whoever may link both providers' records (the steward). The queue's read
        and the pair's are each audited."""
        queue = self.review_queue(access)
        position = max(0, int(position))
        if position >= len(queue):
            return ReviewStep(len(queue), position, None, None)
        pair = queue[position]
        return ReviewStep(
            len(queue), position, pair, self.explain(access, pair.left, pair.right)
        )

    def _queue(self, limit: int | None = None) -> list[ReviewPair]:
        sql = (
            "SELECT e.partner_id_l, e.local_id_l, e.partner_id_r, e.local_id_r, "
            "e.match_probability, e.method FROM identity.link_edge e "
            "ANTI JOIN identity.review_decision d USING (partner_id_l, local_id_l, partner_id_r, local_id_r) "
            "WHERE e.decision = 'review' ORDER BY e.match_probability DESC, 1, 2, 3, 4"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            ReviewPair(RecordKey(r[0], r[1]), RecordKey(r[2], r[3]), r[4], r[5])
            for r in self._con.execute(sql).fetchall()
        ]

    def decide(
        self,
        s: Session,
        left: RecordKey,
        right: RecordKey,
        decision: str,
        *,
        note: str | None = None,
        unless_decided: bool = False,
    ) -> None:
        """Record a reviewer's decision; it overrides the model on every later run.
        The reviewer is the session's principal, who must link (the steward), and
        both providers' agreements must allow linking their records with each other.
        ``unless_decided``: refuse (:class:`Conflict`) a pair someone decided since
        it was shown (two reviewers at one queue), instead of replacing that."""
        left, right = sorted((left, right))
        pair = f"a pair of {left.partner_id} and {right.partner_id} records"
        providers = tuple(sorted({left.partner_id, right.partner_id}))
        who = s.require(
            "link", f"decide on {pair}", action="review", providers=providers
        )
        if decision not in ("same", "different"):
            raise UserError(
                f"A review decision is 'same' or 'different', not '{decision}'."
            )
        if left == right:
            raise UserError("A record is always the same as itself; name two records.")
        self._require_linkable(s, left.partner_id, right.partner_id, pair)
        self._record(left, s.con)
        self._record(right, s.con)
        if unless_decided:
            earlier = s.con.execute(
                "SELECT decision, decided_by, decided_at FROM identity.review_decision "
                "WHERE partner_id_l = ? AND local_id_l = ? AND partner_id_r = ? "
                "AND local_id_r = ?",
                [left.partner_id, left.local_id, right.partner_id, right.local_id],
            ).fetchall()
            if earlier:
                said, by, at = earlier[0]
                raise Conflict(
                    f"{left} and {right} were decided meanwhile: {said}, by {by} at "
                    f"{at:%Y-%m-%d %H:%M}; yours was not recorded."
                )
        when = s.clock().replace(tzinfo=None)
        s.con.execute(
            "DELETE FROM identity.review_decision WHERE partner_id_l = ? AND "
            "local_id_l = ? AND partner_id_r = ? AND local_id_r = ?",
            [left.partner_id, left.local_id, right.partner_id, right.local_id],
        )
        s.con.execute(
            "INSERT INTO identity.review_decision VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                left.partner_id,
                left.local_id,
                right.partner_id,
                right.local_id,
                decision,
                who.user_id,
                when,
                note,
            ],
        )
        # local ids stay out of the log: it is shown to every provider named in it
        s.record("review", f"{pair}: {decision}", providers=providers)

    def _require_linkable(self, s: Session, left: str, right: str, pair: str) -> None:
        """Refuse (audited) a pair of providers the linkage run would not link."""
        if left == right or (left, right) in self.linkable_pairs(s.today()):
            return
        who = s.actor()
        reason = (
            f"the agreements in force of {left} and {right} do not both allow "
            "linking their records with each other"
        )
        s.denials.append(
            AuditEntry(
                "review",
                who.user_id,
                decision="deny",
                reason=reason,
                actor_partner=who.partner_id,
                purpose=s.purpose,
                providers=tuple(sorted({left, right})),
                what=f"decide on {pair}",
            )
        )
        raise PolicyDenied(f"decide on {pair}: {reason}.")

    def decisions(self) -> list[ReviewDecision]:
        """Every review decision, oldest first."""
        return [
            ReviewDecision(
                RecordKey(r[0], r[1]), RecordKey(r[2], r[3]), r[4], r[5], r[6]
            )
            for r in self._con.execute(
                "SELECT partner_id_l, local_id_l, partner_id_r, local_id_r, decision, "
                "decided_by, decided_at FROM identity.review_decision ORDER BY decided_at"
            ).fetchall()
        ]

    # --- giving ids back --------------------------------------------------------------

    def _known_partner(self, partner_id: str, con: Connection | None = None) -> None:
        known = (
            (con or self._con)
            .execute("SELECT 1 FROM ref.partner WHERE partner_id = ?", [partner_id])
            .fetchall()
        )
        if not known:
            raise NotFoundError(
                f"No partner '{partner_id}'. `backbone partner list` shows them."
            )

    def export_crosswalk(
        self,
        access: Access,
        partner_id: str,
        format: ExportFormat,
        *,
        destination: str,
    ) -> Export:
        """A partner's local ids with their person ids, as a CSV or Parquet file's
        bytes for the door to put at ``destination``, as far as the policy lets
        ``access`` export them."""
        self._known_partner(partner_id)
        return access.export(
            "record_person",
            format,
            destination=destination,
            providers=[partner_id],
            fields=["local_id"],
        )

    # --- privacy-preserving encodings -------------------------------------------------

    def add_encodings(
        self,
        s: Session,
        partner_id: str,
        path: Path,
        *,
        project: str,
    ) -> int:
        """Store a partner's encodings (replacing that partner's earlier ones),
        uploaded by one of its users (or the steward's); one ``upload`` entry."""
        s.require(
            "upload", f"encodings of {partner_id}", partner=partner_id, action="upload"
        )
        self._known_partner(partner_id, s.con)
        if not path.is_file():
            raise InputFileError("no such file.", path=path)
        when = s.clock().replace(tzinfo=None)
        table = _read_encodings(path)
        rows = int(table.num_rows)
        table = table.append_column(
            "partner_id", pa.array([partner_id] * rows, pa.string())
        ).append_column("linkage_project", pa.array([project] * rows, pa.string()))
        con = s.con
        with registered(con, incoming_encodings=table):
            con.execute(
                "DELETE FROM identity.encoding WHERE partner_id = ?", [partner_id]
            )
            con.execute(
                "INSERT INTO identity.encoding SELECT partner_id, local_id, clk, "
                "linkage_project, ? FROM incoming_encodings",
                [when],
            )
        s.record(
            "upload",
            f"{rows} encodings ({project})",
            providers=(partner_id,),
            rows=rows,
        )
        return rows

    def withdraw_identifying(self, s: Session, partner_id: str) -> int:
        """Remove the identifying records (names, birth dates) a partner sent, for
        a partner that links by its encodings only from now on; its encodings and
        links stay. A steward admin's step, with one ``purge`` entry."""
        s.require(
            "administer",
            f"withdraw {partner_id}'s identifying records",
            action="purge",
            providers=(partner_id,),
        )
        self._known_partner(partner_id, s.con)
        row = s.con.execute(
            "SELECT count(*) FROM identity.partner_record WHERE partner_id = ?",
            [partner_id],
        ).fetchone()
        removed = int(row[0]) if row else 0
        s.con.execute(
            "DELETE FROM identity.partner_record WHERE partner_id = ?", [partner_id]
        )
        s.record(
            "purge",
            f"{removed} identifying records of {partner_id} (it links by encodings)",
            providers=(partner_id,),
            rows=removed,
        )
        return removed

    # --- accuracy against a planted truth ---------------------------------------------

    def evaluate(self, access: Access, truth: Path) -> Evaluation:
        """Pairwise and cluster precision, recall and F1 against a truth: a CSV or
        Parquet file (or a folder holding ``records.parquet``) with one row per
        record, ``partner_id, local_id, person_key`` (the steward's check; only
        aggregates come out). Scored against the whole truth: a record it names
        that the warehouse does not hold (refused at upload, or never sent) is a
        person of its own, so every pair it had is missed, and they are counted."""
        access.require_steward("link", "evaluate linkage")
        source = truth / "records.parquet" if truth.is_dir() else truth
        if not source.exists():
            raise UserError(
                f"No truth at {source}: give a CSV or Parquet file with the columns "
                "partner_id, local_id, person_key (or a demo community's truth/ "
                "folder)."
            )
        reader = {".csv": "read_csv", ".parquet": "read_parquet"}.get(
            source.suffix.lower()
        )
        if reader is None:
            raise InputFileError(
                "a truth is a .csv or .parquet file with the columns partner_id, "
                "local_id, person_key.",
                path=source,
            )
        c = self._con
        options = ", all_varchar = true, header = true" if reader == "read_csv" else ""
        try:
            create_table_as(
                c,
                "eval_t",
                "SELECT CAST(partner_id AS VARCHAR) AS partner_id, "
                "CAST(local_id AS VARCHAR) AS local_id, "
                "CAST(person_key AS VARCHAR) AS person_key "
                f"FROM {reader}(?{options})",
                [str(source)],
                replace=True,
                temporary=True,
            )
        except EngineError as exc:
            raise InputFileError(
                "cannot be read as a truth: it needs the columns partner_id, "
                f"local_id and person_key ({str(exc).splitlines()[0]}).",
                path=source,
            ) from None
        create_table_as(
            c,
            "eval_j",
            # a record the warehouse does not hold is a person of its own
            "SELECT t.partner_id, t.person_key, "
            "coalesce(rp.person_id, -row_number() OVER ()) AS person_id, "
            "coalesce(p.kind, 'unknown') AS kind, rp.person_id IS NULL AS unplaced "
            "FROM eval_t t "
            "LEFT JOIN identity.record_person rp USING (partner_id, local_id) "
            "LEFT JOIN ref.partner p USING (partner_id)",
            replace=True,
            temporary=True,
        )
        c.execute("DROP TABLE eval_t")
        held, unplaced = c.execute(
            "SELECT count(*) FILTER (WHERE NOT unplaced), "
            "count(*) FILTER (WHERE unplaced) FROM eval_j"
        ).fetchall()[0]
        if not held:
            c.execute("DROP TABLE eval_j")
            raise InputFileError(
                f"none of its {unplaced:,} records is a record the warehouse holds: "
                "check that partner_id and local_id are spelled as submitted, and "
                "that `backbone link` has run.",
                path=source,
            )
        tot = c.execute(
            """
            SELECT count(*),
                   (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM eval_j GROUP BY person_key)),
                   (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM eval_j GROUP BY person_id)),
                   (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM eval_j GROUP BY person_id, person_key)),
                   count(DISTINCT person_key), count(DISTINCT person_id)
            FROM eval_j
            """
        ).fetchall()[0]
        records, true_pairs, pred_pairs, tp = (
            tot[0],
            int(tot[1] or 0),
            int(tot[2] or 0),
            int(tot[3] or 0),
        )
        exact = c.execute(
            """
            WITH t AS (SELECT person_key, list(partner_id || ':' || person_id ORDER BY ALL) AS m FROM eval_j GROUP BY person_key),
                 p AS (SELECT person_id, count(*) n, count(DISTINCT person_key) k FROM eval_j GROUP BY person_id),
                 q AS (SELECT person_key, count(DISTINCT person_id) k FROM eval_j GROUP BY person_key),
                 pure AS (SELECT j.person_key FROM eval_j j JOIN p USING (person_id) JOIN q USING (person_key)
                          GROUP BY j.person_key HAVING max(p.k) = 1 AND max(q.k) = 1)
            SELECT (SELECT count(*) FROM pure)
            """
        ).fetchall()[0][0]
        by_kind = c.execute(
            """
            WITH pairs AS (
                SELECT a.kind || '–' || b.kind AS kinds,
                       (a.person_key = b.person_key) AS same_true,
                       (a.person_id = b.person_id) AS same_pred
                FROM eval_j a JOIN eval_j b
                  ON a.person_key = b.person_key AND a.partner_id < b.partner_id
                UNION ALL  -- pairs linked but not truly one person (two equi-joins, no OR)
                SELECT a.kind || '–' || b.kind, FALSE, TRUE
                FROM eval_j a JOIN eval_j b
                  ON a.person_id = b.person_id AND a.partner_id < b.partner_id
                 AND a.person_key <> b.person_key
            )
            SELECT kinds, count(*) FILTER (WHERE same_true), count(*) FILTER (WHERE same_pred),
                   count(*) FILTER (WHERE same_true AND same_pred)
            FROM pairs GROUP BY kinds ORDER BY kinds
            """
        ).fetchall()
        c.execute("DROP TABLE eval_j")
        precision = tp / pred_pairs if pred_pairs else 1.0
        recall = tp / true_pairs if true_pairs else 1.0
        cp = exact / tot[5] if tot[5] else 1.0
        cr = exact / tot[4] if tot[4] else 1.0
        kinds = [KindAccuracy(_short_kinds(k), t, p, both) for k, t, p, both in by_kind]
        return Evaluation(
            records,
            true_pairs,
            pred_pairs,
            precision,
            recall,
            _f1(precision, recall),
            tot[4],
            tot[5],
            cp,
            cr,
            _f1(cp, cr),
            kinds,
            int(unplaced),
        )


# base64 of a 1024-bit encoding, as `base64.b64decode(validate=True)` accepts it
_CLK_BYTES = BITS // 8
_CLK_PADDING = -_CLK_BYTES % 3
_CLK_PATTERN = (
    f"^[A-Za-z0-9+/]{{{(_CLK_BYTES + 2) // 3 * 4 - _CLK_PADDING}}}{'=' * _CLK_PADDING}$"
)


def _read_encodings(path: Path) -> pa.Table:
    """``local_id, clk`` of an encodings file, read as the csv module reads it
    (blank lines skipped, short rows padded, extra cells ignored, a repeated
    column's last one) and checked as columns: every clk a 1024-bit encoding in
    base64, every local id once. Rows are numbered as records, header first."""
    import numpy as np
    import pyarrow.compute as pc

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"is not UTF-8 text (byte {exc.start}); send the file `backbone encode` "
            "wrote, unchanged.",
            path=path,
        ) from None
    try:
        records = list(filter(None, csv.reader(io.StringIO(text, newline=""))))
    except csv.Error as exc:
        raise InputFileError(f"cannot be read as CSV ({exc}).", path=path) from None
    header = records[0] if records else []
    if not {"local_id", "clk"} <= set(header):
        raise InputFileError(
            "needs the columns local_id and clk, as `backbone encode` writes them.",
            path=path,
            row=1,
        )
    rows = records[1:]
    width = len(header)
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    for i in np.flatnonzero(lengths != width):  # only odd rows: padded or cut
        rows[i] = (rows[i] + [""] * width)[:width]
    cells = list(zip(*rows, strict=True)) if rows else [()] * width

    def column(name: str) -> pa.Array:  # a repeated name: the last, as DictReader
        return pa.array(cells[width - 1 - header[::-1].index(name)], pa.string())

    table = pa.table({"local_id": column("local_id"), "clk": column("clk")})
    bad = pc.invert(pc.match_substring_regex(table["clk"], _CLK_PATTERN))
    if table.num_rows and pc.any(bad).as_py():
        raise InputFileError(
            f"clk is not a {BITS}-bit encoding in base64; "
            "re-run `backbone encode` on the partner's machine.",
            path=path,
            row=int(pc.index(bad, True).as_py()) + 2,
            column="clk",
        )
    if pc.count_distinct(table["local_id"]).as_py() != table.num_rows:
        raise InputFileError(
            "a local_id appears twice; send one encoding per record.",
            path=path,
            column="local_id",
        )
    return table
