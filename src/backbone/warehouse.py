"""The core object. A warehouse is a folder::

    backbone.toml     settings (see `backbone settings`)
    backbone.duckdb   the database: ops, ref, identity and analytic schemas
    raw/              content-addressed store of every submitted file
    agreements/       data-sharing agreements (YAML documents)
    mappings/         one mapping per partner feed (YAML)
    secrets/          the warehouse's own key (pseudonyms, ledger hashes); never shared

The CLI, web app, REST API and Python API only translate into and out of
:class:`Warehouse`; it owns the one database connection and hands out the stages.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from backbone import __version__
from backbone.engines import (
    Connection,
    EngineError,
    begin,
    connect,
    end,
    literal,
    others_waiting,
)
from backbone.engines.duckdb import Handle, clear_note
from backbone.engines.offload import EngineChoice
from backbone.errors import (
    AuthenticationFailed,
    Forbidden,
    NotAWarehouseError,
    NotFoundError,
    UserError,
    WarehouseError,
)
from backbone.governance.audit import AuditLog, Verification, system_clock
from backbone.governance.principals import Principal, Principals, Role
from backbone.governance.throttle import ThrottleRules
from backbone.interrupts import deferred
from backbone.model.migrations import CURRENT_VERSION, migrate, schema_version
from backbone.model.schema import ALL_TABLES
from backbone.partners import Partner, PartnerRegistry
from backbone.partners.registry import Contact, Program, School
from backbone.session import PENDING_FOLDER, AuditEntry, Session, sweep_pending
from backbone.settings import Settings, render_settings_toml

if TYPE_CHECKING:
    from backbone.governance.access import Access, Export, Keys
    from backbone.governance.audit import AuditHead, LoggedEntry
    from backbone.governance.checkpoints import Checkpoint
    from backbone.governance.release import ReleaseGate
    from backbone.governance.retention import Retention
    from backbone.ingest import Ingestor
    from backbone.ingest.submit import Submission
    from backbone.linkage import Linkage
    from backbone.measures.indicators import Indicators
    from backbone.measures.initiatives import Initiative, Initiatives
    from backbone.measures.outcomes import Outcomes
    from backbone.measures.risk import RiskModels
    from backbone.measures.shelf import Shelf
    from backbone.model.codes import DescriptorMaps
    from backbone.partners.agreements import (
        AccessRequest,
        AgreementRegistry,
        Decision,
        Finding,
    )
    from backbone.partners.agreements.diff import Change
    from backbone.partners.agreements.store import VersionRecord
    from backbone.partners.commitments import (
        Commitment,
        CommitmentBook,
        CommitmentUpdate,
    )
    from backbone.partners.feeds import Feed, FeedRegistry
    from backbone.partners.requests import DataRequest, RequestBook
    from backbone.partners.status import Digest, OwnFeed, PartnershipStatus

__all__ = [
    "Dashboard",
    "FeedState",
    "PartnerEntry",
    "SchemaMigration",
    "TableInfo",
    "Warehouse",
    "WarehouseInfo",
    "default_warehouse_path",
]

SETTINGS_FILE = "backbone.toml"
DATABASE_FILE = "backbone.duckdb"
FOLDERS = ("raw", "agreements", "mappings", "reports", "secrets")
KEY_FILE = "secrets/warehouse.key"


_T = TypeVar("_T")


class _stage(cached_property[_T]):
    """A stage built on first use, once even when threads ask at the same moment
    (the web doors share one warehouse); later reads find it in the instance."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> _stage[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> _T: ...
    def __get__(
        self, instance: object | None, owner: type[Any] | None = None
    ) -> _T | _stage[_T]:
        if instance is None:
            return self
        with cast("Warehouse", instance)._stages_lock:
            return super().__get__(instance, owner)


def default_warehouse_path() -> Path:
    """``$BACKBONE_WAREHOUSE`` if set, else ``./warehouse``."""
    return Path(os.environ.get("BACKBONE_WAREHOUSE") or "warehouse")


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int


@dataclass(frozen=True)
class SchemaMigration:
    """What ``backbone migrate`` did: the schema version before and after."""

    from_version: int
    to_version: int

    @property
    def changed(self) -> bool:
        return self.from_version != self.to_version


@dataclass(frozen=True)
class Dashboard:
    """What the steward's dashboard shows (:meth:`Warehouse.dashboard`)."""

    status: PartnershipStatus
    submissions: list[Submission]
    """the latest ten, newest first"""
    review_queue: int | None
    """pairs waiting for review (None: the steward may not link)"""
    audit_head: AuditHead
    alerts: list[LoggedEntry] = field(default_factory=list)
    """the newest alerts (a partner's records linked to persons it never served)"""


@dataclass(frozen=True)
class PartnerEntry:
    """A partner with its contacts, schools and sites, and programs
    (:meth:`Warehouse.partner_directory`)."""

    partner: Partner
    contacts: list[Contact]
    schools: list[School]
    programs: list[Program]


@dataclass(frozen=True)
class FeedState:
    """A feed, whether it is late, and its mapping (:meth:`Warehouse.feed_book`)."""

    feed: Feed
    late_since: date | None
    """the due date it missed (None: on time)"""
    last_received: datetime | None
    mapping: str | None
    """the mapping document's text (None: the feed has none yet)"""


@dataclass(frozen=True)
class WarehouseInfo:
    path: Path
    name: str
    schema_version: int
    created_at: str | None
    partners: list[Partner]
    tables: list[TableInfo]
    database_bytes: int
    raw_files: int
    raw_bytes: int


class Warehouse:
    """An open warehouse folder. Use :meth:`init` to create one, :meth:`open` to open."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        con: Connection,
        clock: Callable[[], datetime] = system_clock,
        *,
        read_only: bool = False,
        write_lock: threading.RLock | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self._con = con
        self.clock = clock
        self.read_only = read_only
        # one unit of work at a time in this process; other processes are kept out
        # by the database file's own lock (see engines.duckdb). Warehouses of one
        # file open at once in a process (the web server's) share it: the audit
        # chain has one head
        self._write_lock = write_lock or threading.RLock()
        self._sessions = 0
        self._swept = False
        self._stages_lock = threading.RLock()  # a stage may build the ones it uses
        self._handle: Handle | None = None
        self.audit = AuditLog(con, clock, self._write_lock)
        self.users = Principals(con, self.audit, clock, ThrottleRules.of(settings))
        self.partners = PartnerRegistry(con)
        self._keys: Keys | None = None

    @property
    def write_lock(self) -> threading.RLock:
        return self._write_lock

    # --- the stages ----------------------------------------------------------------
    # Each is built, and its module loaded, on first use: a command that only looks
    # (``backbone info``) does not pay for the agreements, linkage or measures.

    @_stage
    def gate(self) -> ReleaseGate:
        from backbone.governance.release import ReleaseGate

        return ReleaseGate(
            self._con,
            self.audit,
            self.clock,
            audit_capacity=int(self.settings["governance.audit_capacity"]),
            hand_back=self._hand_back,
        )

    @_stage
    def descriptor_maps(self) -> DescriptorMaps:
        from backbone.model.codes import DescriptorMaps

        return DescriptorMaps(self._con)

    @_stage
    def agreements(self) -> AgreementRegistry:
        from backbone.partners.agreements import AgreementRegistry

        return AgreementRegistry(self._con, self.path / "agreements")

    @_stage
    def commitments(self) -> CommitmentBook:
        from backbone.partners.commitments import CommitmentBook

        return CommitmentBook(self._con)

    @_stage
    def feeds(self) -> FeedRegistry:
        from backbone.partners.feeds import FeedRegistry

        return FeedRegistry(self._con)

    @_stage
    def requests(self) -> RequestBook:
        from backbone.partners.requests import RequestBook

        return RequestBook(self._con, self.path / "agreements")

    @_stage
    def ingest(self) -> Ingestor:
        from backbone.ingest import Ingestor

        return Ingestor(
            self._con,
            self.path,
            self.agreements,
            self.feeds,
            self.settings["calendar.school_year_start_month"],
            self.settings["engine.memory_limit"] or None,
            earliest_birth_year=int(self.settings["ingest.earliest_birth_year"]),
        )

    @_stage
    def linkage(self) -> Linkage:
        from backbone.linkage import Linkage

        return Linkage(self._con, self.path, self.settings, self.agreements)

    @_stage
    def retention(self) -> Retention:
        from backbone.governance.retention import Retention

        return Retention(
            self._con,
            self.path,
            self.agreements,
            self.audit,
            self.clock,
            self.engine_choice().spark_exchange,
        )

    @_stage
    def indicators(self) -> Indicators:
        from backbone.measures.indicators import Indicators

        return Indicators(
            self._con,
            self.clock,
            self.settings["calendar.school_year_start_month"],
            self.engine_choice,
        )

    @_stage
    def risk(self) -> RiskModels:
        from backbone.measures.risk import RiskModels

        return RiskModels(self._con, self.path, self.clock, self.indicators)

    @_stage
    def initiatives(self) -> Initiatives:
        from backbone.measures.initiatives import Initiatives

        return Initiatives(self._con)

    @_stage
    def outcomes(self) -> Outcomes:
        from backbone.measures.outcomes import Outcomes

        return Outcomes(
            self.initiatives,
            self._con,
            self.settings["calendar.school_year_start_month"],
            self.engine_choice,
        )

    def engine_choice(self, kind: str | None = None) -> EngineChoice:
        """Where a heavy stage runs: ``engine.*`` settings, ``kind`` (``--engine``)
        overriding ``engine.kind`` for one run."""
        return EngineChoice.of(self.settings, self.path, kind)

    # --- the unit of work ---------------------------------------------------------

    @contextmanager
    def session(
        self, principal: Principal | None = None, *, purpose: str | None = None
    ) -> Iterator[Session]:
        """One unit of work: its own cursor, the clock, the principal (looked up again,
        so a disabled user gets nothing) and one transaction, committed when the block
        ends and rolled back if anything escapes it (an interrupt included). Refusals
        the stages met are audited after the rollback."""
        if self.read_only:
            raise WarehouseError(
                f"{self.path} was opened read-only; this needs it opened for writing."
            )
        with self._write_lock:
            current = self.users.current(principal.user_id) if principal else None
            cursor = self._con.cursor()
            session = Session(
                cursor,
                self.clock,
                current,
                self.audit.append,
                purpose=purpose,
                setup=current is None and self.users.count() == 0,
                pause=self._paused,
                pending=self.path / PENDING_FOLDER,
            )
            if not self._swept:  # files a killed process left waiting
                self._swept = True
                sweep_pending(self.path / PENDING_FOLDER)
            begin(cursor)
            self._sessions += 1
            self.audit.active = session
            try:
                yield session
            except BaseException:
                # undone and its refusals and reads recorded, Ctrl-C held meanwhile
                with deferred():
                    self._sessions -= 1
                    self.audit.active = None
                    # the cursor may be gone already (a pause that could not take
                    # the file back): then there is nothing left to roll back
                    with suppress(EngineError):
                        end(session.con, commit=False)
                    session.abandon_files()
                    with suppress(EngineError):
                        session.con.close()
                    for entry in [*session.denials, *session.kept]:
                        self.audit.append(entry)
                raise
            self._sessions -= 1
            self.audit.active = None
            try:
                for entry in session.denials:  # refusals a stage caught and got past
                    self.audit.append(entry, session.con)
                session.commit()
            finally:
                session.abandon_files()  # left only if the commit failed
                session.con.close()

    @contextmanager
    def _paused(self, session: Session) -> Iterator[None]:
        """A session's pause (see :meth:`Session.released`): its reads end (rolled
        back: by the pause's contract it has written nothing, and so nothing stray
        is committed), the file is handed back, then a new cursor and transaction
        carry the session on. Reads it recorded before the pause stay recorded."""
        end(session.con, commit=False)
        session.con.close()
        self.audit.active = None
        for entry in session.kept:
            self.audit.append(entry)
        session.kept.clear()
        self._sessions -= 1
        try:
            with self.released():
                yield
        finally:
            self._sessions += 1
            # else the file could not be taken back: its error goes up
            session.lost = not (self._handle is None or self._handle.is_open)
            if not session.lost:
                try:
                    session.con = self._con.cursor()
                    begin(session.con)
                except Exception as exc:
                    session.lost = True
                    raise WarehouseError(
                        f"could not go on in {self.path} after handing it back ({exc})"
                    ) from exc
                self.audit.active = session

    @contextmanager
    def _hand_back(self) -> Iterator[bool]:
        """For the release gate's audit: the file handed back while it computes
        (True), or kept (False) when a unit of work is open or there is no file."""
        if self._handle is None:
            yield False
            return
        with self._write_lock:
            busy = self._sessions > 0
        if busy:
            yield False
            return
        # the lock is not held while the gate computes: it is the audit's too, and
        # another warehouse of this process (the web server's) appends meanwhile;
        # a thread of this one that needs the file waits for it (Handle)
        with self._handle.released():
            yield True

    @contextmanager
    def released(self) -> Iterator[None]:
        """Hand the database file back to other processes for the block (a long job's
        computing, between reading its inputs and writing its results), then take it
        again, waiting for whoever holds it by then."""
        if self._handle is None:
            yield
            return
        with self._write_lock:
            if self._sessions:
                raise WarehouseError(
                    "a unit of work is open; finish it before handing the warehouse back"
                )
            with self._handle.released():
                yield

    # --- who is asking -------------------------------------------------------------

    def today(self) -> date:
        return self.clock().date()

    def sign_in(
        self, user_id: str, password: str, *, source: str = "local"
    ) -> Principal:
        return self.users.sign_in(user_id, password, source=source)

    def sign_in_token(self, token: str, *, source: str = "local") -> Principal:
        return self.users.sign_in_token(token, source=source)

    def _released_before(self) -> bool:
        row = self._con.execute(
            "SELECT (SELECT count(*) FROM gov.release) + "
            "(SELECT count(*) FROM gov.audit_log "
            "WHERE json_extract_string(entry, '$.action') IN ('read', 'export'))"
        ).fetchone()
        return bool(row and row[0])

    def checkpoint(self, partner: str) -> Checkpoint:
        """The chain's head signed by this warehouse, for ``partner`` to keep (with
        its digest, with a disclosure report)."""
        from backbone.governance.checkpoints import CheckpointSigner

        signer = CheckpointSigner(self._warehouse_keys().secret)
        return signer.sign(
            self.audit.head(),
            warehouse=str(self.settings["warehouse.name"]),
            partner=partner,
            at=self.clock(),
        )

    def verify_audit(
        self, *, anchor: AuditHead | None = None, checkpoints: Sequence[Checkpoint] = ()
    ) -> Verification:
        """The chain walked, holding every anchor and signed checkpoint a partner
        kept; a checkpoint not signed by this warehouse is refused first."""
        from backbone.governance.checkpoints import CheckpointSigner

        if checkpoints:
            signer = CheckpointSigner(self._warehouse_keys().secret)
            for c in checkpoints:
                why = signer.problem(c)
                if why:
                    return Verification(
                        False, 0, "", c.seq, f"the checkpoint at entry {c.seq}: {why}"
                    )
        return self.audit.verify(anchor=anchor, anchors=[c.head for c in checkpoints])

    def seal(self, text: str) -> str:
        """A tag only this warehouse makes for ``text`` (keyed by its own key): a
        cursor handed to a client comes back unchanged, or is refused."""
        import hashlib
        import hmac

        key = self._warehouse_keys().derive("seal").encode()
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _warehouse_keys(self) -> Keys:
        if self._keys is None:
            path = self.path / KEY_FILE
            if not path.exists() and self._released_before():
                raise WarehouseError(
                    f"{path} is missing; restore it from a backup. The release "
                    "ledger and every recipient's pseudonyms depend on it, so a new "
                    "key would let new tables be differenced against old ones."
                )
            if not path.exists():
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(secrets.token_bytes(32))
                path.chmod(0o600)
            from backbone.governance.access import Keys

            self._keys = Keys(path.read_bytes())
        return self._keys

    def second_factor_required(self, principal: Principal) -> bool:
        """Whether an agreement in force today that the principal's partner is a
        party to requires a second factor to sign in (``security.mfa_required``)."""
        today = self.today()
        for agreement_id in self.agreements.ids():
            version = self.agreements.in_force(agreement_id, today)
            if (
                version is not None
                and principal.partner_id in version.document.parties.all()
                and version.document.security.mfa_required
            ):
                return True
        return False

    def agreements_for(self, access: Access) -> list[VersionRecord]:
        """Every version of the agreements ``access``'s principal may read: the
        steward's all, a partner's those it is a party to (newest first)."""
        me = access.principal
        lapsed = me.lapsed(self.today())
        if lapsed:
            raise AuthenticationFailed(lapsed + ".")
        return [
            v
            for v in reversed(self.agreements.all_versions())
            if me.is_steward or me.partner_id in v.document.parties.all()
        ]

    def initiatives_for(self, principal: Principal) -> list[Initiative]:
        """The initiatives ``principal`` may ask about: the steward's all, a
        funder's its own (others: none)."""
        return [
            i
            for i in self.initiatives.list()
            if principal.is_steward or i.funder == principal.partner_id
        ]

    def commitments_for(
        self,
        access: Access,
        *,
        on: date,
        owner: str | None = None,
        overdue: bool = False,
        open_only: bool = False,
    ) -> list[Commitment]:
        """The commitments ``access``'s principal may read: its partner's, owed
        by it or to it (the steward: all)."""
        scope = access.submission_scope()
        return [
            c
            for c in self.commitments.list(
                on=on, owner=owner, overdue=overdue, open_only=open_only
            )
            if scope in (None, c.owner_partner_id, c.counterpart_partner_id)
        ]

    def commitment_for(
        self, access: Access, commitment_id: int
    ) -> tuple[Commitment, list[CommitmentUpdate]]:
        """One commitment of the principal's partner (owed by it or to it; the
        steward: any) and its dated history; to anyone else it does not exist."""
        c = self.commitments.get(commitment_id)
        scope = access.submission_scope()
        if scope not in (None, c.owner_partner_id, c.counterpart_partner_id):
            raise NotFoundError(f"no commitment #{commitment_id} of yours.")
        return c, self.commitments.history(commitment_id)

    def lint_agreements(
        self, access: Access, agreement_id: str | None = None
    ) -> dict[str, list[Finding]]:
        """Findings on the latest version of each agreement ``access``'s
        principal is a party to (the steward: every one), or of one of them: to
        anyone else it does not exist."""
        me = access.principal
        mine = {
            v.agreement_id
            for v in self.agreements_for(access)
            if me.is_steward
            or me.partner_id
            in self.agreements.versions(v.agreement_id)[-1].document.parties.all()
        }
        if agreement_id is not None and agreement_id not in mine:
            raise NotFoundError(
                f"no agreement {agreement_id!r} of yours; `backbone agreement list` "
                "shows them."
            )
        if agreement_id is not None:
            return self.agreements.lint(agreement_id)
        return {
            ref: findings
            for aid in sorted(mine)
            for ref, findings in self.agreements.lint(aid).items()
        }

    def check_use(self, access: Access, use: AccessRequest) -> Decision:
        """What the agreements say of ``use``, to a principal it concerns: the
        steward, or a partner that would provide or receive the data (or be
        linked with it, for a link). A partner's answer comes from the
        agreements that name it (a party, a recipient, a partner to link with)
        only: others would tell it another partnership's terms."""
        from backbone.partners.agreements import decide

        me = access.principal
        lapsed = me.lapsed(self.today())
        if lapsed:
            raise AuthenticationFailed(lapsed + ".")
        concerned = {use.provider, use.recipient}
        if use.operation == "link" and use.link_with is not None:
            concerned.add(use.link_with)
        if not me.is_steward and me.partner_id not in concerned:
            raise Forbidden(
                "you may ask only about uses where your partner provides or receives "
                "the data (or, for a link, is linked with it)."
            )
        versions = self.agreements.all_versions()
        # whole agreements (every version: a later one may have dropped the asker)
        # that name the asker: a party, a recipient, or a partner to link with
        concerning = {
            v.agreement_id
            for v in versions
            if me.is_steward
            or me.partner_id in v.document.parties.all()
            or me.partner_id in {r.partner for r in v.document.recipients}
            or me.partner_id in v.document.linkage.linkable_with
        }
        return decide(use, [v.view() for v in versions if v.agreement_id in concerning])

    def agreement_history(
        self, access: Access, agreement_id: str
    ) -> list[tuple[VersionRecord, list[Change]]]:
        """One agreement's versions, each with its changes from the one before,
        for a principal who may read it (:meth:`agreements_for`); to anyone else
        it does not exist."""
        versions = [
            v for v in self.agreements_for(access) if v.agreement_id == agreement_id
        ]
        if not versions:
            raise NotFoundError(f"no agreement {agreement_id!r} you may read.")
        ordered = sorted(versions, key=lambda v: v.version)
        out = []
        for before, after in zip([None, *ordered], ordered, strict=False):
            changes = (
                self.agreements.diff(agreement_id, before.version, after.version)
                if before is not None
                else []
            )
            out.append((after, changes))
        return out[::-1]

    def requests_for(self, access: Access) -> list[DataRequest]:
        """The data-use requests ``access``'s principal may read: the steward's
        all; a researcher's those its partner filed; anyone else's those its
        partner filed or provides data for (and so reviews)."""
        me = access.principal
        lapsed = me.lapsed(self.today())
        if lapsed:
            raise AuthenticationFailed(lapsed + ".")
        return [r for r in self.requests.list() if _reads_request(me, r)]

    def request_for(self, access: Access, request_id: str) -> DataRequest:
        """One data-use request, for a principal who may read it
        (:meth:`requests_for`); to anyone else it does not exist."""
        me = access.principal
        lapsed = me.lapsed(self.today())
        if lapsed:
            raise AuthenticationFailed(lapsed + ".")
        try:
            found = self.requests.get(request_id)
        except NotFoundError:
            found = None
        if found is None or not _reads_request(me, found):
            raise NotFoundError(f"no data-use request {request_id!r} you may read.")
        return found

    def request_extract(
        self, principal: Principal, request_id: str, item: int
    ) -> Export:
        """The rows of an approved request's data item ``item`` (counted from 1) as
        a pseudonymous CSV extract, for its requester's users: read for the
        request's purpose through :meth:`access` (the agreements in force decide,
        the export is audited), only the item's fields and the reader's pseudonym,
        never a name, birth date or local id."""
        from backbone.governance.access import ExportFormat
        from backbone.governance.policy import IDENTIFYING, Grant
        from backbone.partners.agreements.document import AccessLevel

        request = self.request_for(
            self.access(principal, "data_use_request"), request_id
        )
        data = request.document.data
        if not 1 <= item <= len(data):
            raise NotFoundError(f"{request_id} has no data item {item}.")
        wanted = data[item - 1]
        what = (
            f"extract of {request_id} item {item} ({wanted.provider} {wanted.entity})"
        )

        def refused(reason: str) -> Forbidden:
            self.audit.append(
                AuditEntry(
                    "export",
                    principal.user_id,
                    decision="deny",
                    reason=reason,
                    actor_partner=principal.partner_id,
                    what=what,
                    providers=(wanted.provider,),
                )
            )
            return Forbidden(f"{what}: {reason}.")

        if principal.partner_id != request.requester:
            raise refused(f"its extracts are for {request.requester}'s users only")
        if request.status != "approved":
            raise UserError(
                f"{request_id} is {request.status}; extracts wait for its approval."
            )
        if wanted.level.value != "pseudonymous":
            raise UserError(
                f"data item {item} of {request_id} is licensed at the "
                f"{wanted.level.value} level; only pseudonymous items are extracts."
            )
        access = self.access(principal, request.document.purpose.id)
        grants = access.grants(wanted.entity, "export_microdata", [wanted.provider])
        if any(
            isinstance(g, Grant) and g.access is AccessLevel.identified for g in grants
        ):
            raise refused(
                f"{principal.user_id} would see it identified; a request's extract "
                "is pseudonymous only"
            )
        export = access.export(
            wanted.entity,
            ExportFormat.csv,
            destination=f"a download from the web site (request {request_id}, item {item})",
            providers=[wanted.provider],
            fields=list(wanted.fields),
        )
        named = set(export.table.column_names) & (IDENTIFYING | {"person_id"})
        if named:  # the policy never grants these pseudonymously: never let one out
            raise WarehouseError(
                f"the extract would carry {sorted(named)[0]}; refused."
            )
        return export

    def dashboard(self, access: Access) -> Dashboard:
        """The partnership at a glance for the steward: what to chase
        (:func:`~backbone.partners.status.partnership_status`), the latest
        submissions with their quarantine counts, the review queue's size and the
        audit chain's head. Anyone else is refused (and the refusal audited)."""
        from backbone.partners.status import partnership_status

        access.require_steward("aggregate", "the partnership dashboard")
        status = partnership_status(self, self.today())
        submissions = self.ingest.latest(10)
        queue = (
            len(self.linkage.review_queue(access))
            if access.principal.may("link")
            else None
        )
        return Dashboard(
            status, submissions, queue, self.audit.head(), self.audit.latest("alert")
        )

    def partner_directory(self, access: Access) -> list[PartnerEntry]:
        """Every partner with its contacts, schools and sites, and programs, for
        the steward (``backbone partner list/show``); anyone else is refused, and
        the refusal audited."""
        access.require_steward("aggregate", "the partner directory")
        return [
            PartnerEntry(
                p,
                self.partners.contacts(p.partner_id),
                self.partners.schools(p.partner_id),
                self.partners.programs(p.partner_id),
            )
            for p in self.partners.list()
        ]

    def feed_book(self, access: Access) -> list[FeedState]:
        """Every partner's feeds, the late ones marked as ``backbone status`` marks
        them, each with its mapping document's text, for the steward; anyone else
        is refused, and the refusal audited."""
        from backbone.partners.status import late_feeds

        access.require_steward("aggregate", "the feeds and their mappings")
        late = {
            (f.feed.partner_id, f.feed.feed_id): f.due
            for f in late_feeds(self, self.today())
        }
        out = []
        for f in self.feeds.list():
            # mappings/<partner>/<feed>.yaml (see backbone.ingest.mapping)
            path = self.path / "mappings" / f.partner_id / f"{f.feed_id}.yaml"
            out.append(
                FeedState(
                    f,
                    late.get((f.partner_id, f.feed_id)),
                    self.feeds.last_submission(f.partner_id, f.feed_id),
                    path.read_text(encoding="utf-8") if path.is_file() else None,
                )
            )
        return out

    # --- a partner's own pages (the web door's /feeds/mine, /digest, results) ------

    def feeds_for(self, access: Access) -> list[OwnFeed]:
        """The feeds of ``access``'s principal's partner (the steward's: every
        partner's), each with its cadence, last file received, last due date and
        whether it is late (:func:`~backbone.partners.status.feed_states`, the
        rule ``backbone status`` follows). Only a partner's uploaders and analysts
        and the steward may; anyone else is refused and the refusal audited."""
        from backbone.partners.status import feed_states

        scope = access.submission_scope()
        return feed_states(self, self.today(), scope)

    def digest_for(self, access: Access, partner_id: str | None = None) -> Digest:
        """A partner's weekly digest (``backbone digest``) for one of its own users
        (``partner_id`` left out or their own), or for the steward (any partner,
        while an agreement of that partner's names the steward); anyone else,
        another partner's users included, is refused and the refusal audited."""
        from backbone.partners.status import build_digest

        partner = partner_id or access.principal.partner_id
        self.partners.get(partner)  # a partner, or NotFoundError
        if not (access.principal.is_steward and partner == access.principal.partner_id):
            access.own_or_steward(partner, f"the weekly digest of {partner}")
        return build_digest(self, partner, self.today())

    def shown_again(
        self, shelf: Shelf, access: Access, what: str, *key: Hashable
    ) -> Any | None:
        """What a long-running door kept on ``shelf`` for ``access``'s audience
        (released earlier today to the same partner, role and purpose, nothing
        changed since), shown again (audited as such); None if nothing is kept:
        then :meth:`keep` makes it (the web door does so away from its pages)."""
        return shelf.find(access, self.audit.last_change, what, key)

    def keep(
        self,
        shelf: Shelf,
        access: Access,
        what: str,
        make: Callable[[], _T],
        *key: Hashable,
        detail: Callable[[_T], dict[str, Any]] | None = None,
    ) -> _T:
        """``make()`` (a release through the gate as ``access``), kept on
        ``shelf`` for the same audience (:class:`~backbone.measures.shelf.Shelf`)."""
        return shelf.keep(access, self.audit.last_change, what, make, key, detail)

    def access(
        self, principal: Principal, purpose: str, *, on: date | None = None
    ) -> Access:
        """Everything ``principal`` may read, for ``purpose``, as the agreements in
        force today allow; every read through it is audited.

        The principal is looked up again by its user id, so a disabled user or a
        made-up principal object gets nothing; any other day than today is
        refused, since the consent and agreements of another day are not what
        holds for today's data."""
        current = self.users.current(principal.user_id)
        today = self.today()
        if on is not None and on != today:
            # today's data under another day's agreements or consent is no one's
            raise UserError(
                f"reads are decided as of today ({today}), not {on}; "
                "`backbone agreement check --on` answers what-if questions."
            )
        from backbone.governance.access import Access

        return Access(
            con=self._con,
            views=lambda: [v.view() for v in self.agreements.all_versions()],
            audit=self.audit,
            gate=self.gate,
            keys=self._warehouse_keys(),
            principal=current,
            purpose=purpose,
            on=on or today,
            school_year_start_month=self.settings["calendar.school_year_start_month"],
            min_cell_size=self.settings["governance.min_cell_size"],
        )

    # --- lifecycle ---------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: Path | str,
        *,
        name: str | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> Warehouse:
        """Create a new warehouse folder (it may exist, but must be empty)."""
        path = Path(path)
        if (path / SETTINGS_FILE).exists():
            raise WarehouseError(
                f"{path} is already a Backbone warehouse; open it with "
                f"`--warehouse {path}` instead of creating it again."
            )
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise WarehouseError(
                f"{path} exists and is not empty; choose a new or empty folder so "
                "nothing there is overwritten."
            )
        # the folder is its owner's alone, whatever the umask of the process
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
        for folder in FOLDERS:
            (path / folder).mkdir(exist_ok=True, mode=0o700)
        overrides = {"warehouse.name": name} if name else None
        (path / SETTINGS_FILE).write_text(
            render_settings_toml(overrides), encoding="utf-8"
        )
        (path / SETTINGS_FILE).chmod(0o600)
        warehouse = cls.open(path, clock=clock)
        (path / DATABASE_FILE).chmod(0o600)
        warehouse._warehouse_keys()
        warehouse._con.execute(
            "INSERT INTO ops.meta VALUES ('created_at', ?), ('created_by', ?)",
            [
                datetime.now(UTC).isoformat(timespec="seconds"),
                f"backbone {__version__}",
            ],
        )
        return warehouse

    @classmethod
    def _connect(
        cls,
        path: Path | str | None,
        read_only: bool,
        on_wait: Callable[[str], None] | None,
    ) -> tuple[Path, Settings, Connection]:
        path = Path(path) if path is not None else default_warehouse_path()
        if not path.exists():
            raise NotAWarehouseError(
                f"No warehouse at {path}. Create one with `backbone init {path}`, "
                "or point to one with --warehouse or BACKBONE_WAREHOUSE."
            )
        if not path.is_dir() or not (path / SETTINGS_FILE).is_file():
            raise NotAWarehouseError(
                f"{path} is not a Backbone warehouse (it has no {SETTINGS_FILE}). "
                "Check the path, or create one with `backbone init DIR`."
            )
        database = path / DATABASE_FILE
        if not database.exists() and read_only:
            raise NotAWarehouseError(
                f"{path} has settings but no database; open it once without "
                "read-only to create the database."
            )
        settings = Settings.load(path / SETTINGS_FILE)
        con = connect(database, settings, read_only=read_only, on_wait=on_wait)
        return path, settings, con

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        *,
        read_only: bool = False,
        clock: Callable[[], datetime] = system_clock,
        on_wait: Callable[[str], None] | None = None,
        write_lock: threading.RLock | None = None,
    ) -> Warehouse:
        """Open an existing warehouse. Opening changes nothing: a warehouse of an
        older schema must be migrated first (:meth:`migrate`, ``backbone migrate``),
        and retention runs on its schedule (``backbone retention run``). Read-only,
        it shares the file with other readers; for writing, it holds the file until
        closed, and ``on_wait`` hears what it waits for meanwhile. The same file
        opened again in the same process must be given the first one's
        ``write_lock`` (:attr:`write_lock`)."""
        path, settings, con = cls._connect(path, read_only, on_wait)
        database = path / DATABASE_FILE
        handle = Handle(
            lambda: connect(database, settings, read_only=read_only, on_wait=on_wait),
            con,
            database=database,
        )
        try:
            version = schema_version(con)
            if version == 0 and not read_only:
                migrate(con, where=str(path))  # a new database: create the schema
            elif version != CURRENT_VERSION:
                migrate(con, target=version, where=str(path))  # refuses newer
                raise WarehouseError(
                    f"{path} has schema version {version}; run `backbone migrate "
                    f"--warehouse {path}` to bring it to version {CURRENT_VERSION} "
                    "(take a copy of the folder first)."
                )
            # stages hold the handle, so a long job can give the file back meanwhile
            warehouse = cls(
                path,
                settings,
                cast(Connection, handle),
                clock,
                read_only=read_only,
                write_lock=write_lock,
            )
            warehouse._handle = handle
        except BaseException:
            con.close()
            raise
        return warehouse

    @staticmethod
    def wanted_elsewhere(path: Path | str) -> bool:
        """Whether another process waits for the warehouse at ``path``: one that
        keeps it open between pieces of work (the web server) closes it then."""
        return others_waiting(Path(path) / DATABASE_FILE)

    @classmethod
    def migrate(
        cls,
        path: Path | str | None = None,
        *,
        on_wait: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> SchemaMigration:
        """Bring an older warehouse's schema forward, in one transaction with its
        audit entry (``migration``: who ran it, from which version to which); returns
        the versions before and after. A newer warehouse is refused untouched, and a
        current one is left as it is (no entry: nothing changed).

        Nobody can sign in to a warehouse of an older schema, so whoever holds the
        folder runs this step (like ``init``); the entry names them by the operating
        system's account that ran it, ``system:NAME``."""
        path, _, con = cls._connect(path, False, on_wait)
        try:
            before = schema_version(con)
            begin(con)
            try:
                applied = migrate(con, where=str(path))
                if applied:
                    after = applied[-1].version
                    AuditLog(con, clock).append(
                        AuditEntry(
                            "migration",
                            f"system:{_system_account()}",
                            what=f"schema version {before} -> {after}",
                            detail={
                                "from_version": before,
                                "to_version": after,
                                "steps": [m.version for m in applied],
                                "backbone_version": __version__,
                                "host": socket.gethostname(),
                            },
                        ),
                        con,
                    )
            except BaseException:
                end(con, commit=False)
                raise
            end(con, commit=True)
            return SchemaMigration(before, schema_version(con))
        finally:
            con.close()
            clear_note(path / DATABASE_FILE)

    def close(self) -> None:
        self._con.close()
        if not self.read_only:
            clear_note(self.path / DATABASE_FILE)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what it holds -----------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return schema_version(self._con)

    def table_counts(self) -> list[TableInfo]:
        """Row count of every canonical table, in declaration order."""
        union = " UNION ALL ".join(
            f"SELECT {literal(t.qualified_name)} AS name, count(*) AS n "
            f"FROM {t.qualified_name}"
            for t in ALL_TABLES
        )
        counts = dict(self._con.execute(union).fetchall())
        return [
            TableInfo(t.qualified_name, counts[t.qualified_name]) for t in ALL_TABLES
        ]

    def info(self, me: Principal | None = None) -> WarehouseInfo:
        """What the warehouse holds. Row counts per table (every partner's rows
        together) go to its steward only, or to anyone while it has no user yet;
        a partner's own files and their rows are in its submissions
        (:meth:`~backbone.ingest.Ingestor.list_for`)."""
        meta = dict(self._con.execute("SELECT key, value FROM ops.meta").fetchall())
        raw_files = [p for p in (self.path / "raw").rglob("*") if p.is_file()]
        counted = (me is not None and me.is_steward) or self.users.count() == 0
        return WarehouseInfo(
            path=self.path,
            name=self.settings["warehouse.name"],
            schema_version=int(meta["schema_version"]),
            created_at=meta.get("created_at"),
            partners=self.partners.list(),
            tables=self.table_counts() if counted else [],
            database_bytes=(self.path / DATABASE_FILE).stat().st_size,
            raw_files=len(raw_files),
            raw_bytes=sum(p.stat().st_size for p in raw_files),
        )


def _reads_request(me: Principal, request: DataRequest) -> bool:
    """Whether ``me`` may read a data-use request (:meth:`Warehouse.requests_for`)."""
    if me.is_steward:
        return True
    if me.partner_id == request.requester:
        return True
    return (
        me.role is not Role.researcher and me.partner_id in request.document.providers()
    )


def _system_account() -> str:
    """The operating system's name for whoever runs this process."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no password-file entry
        return f"uid-{os.getuid()}"
