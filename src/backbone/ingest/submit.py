"""Submissions: a partner's file in, canonical rows loaded or quarantined, nothing lost.

Order of work for one file (the order is the guarantee):

1. check partner, feed, mapping and the agreement in force (refuse early, store nothing);
2. checksum; the same file loaded before for the same feed is a no-op that says so;
3. store the raw file content-addressed under ``raw/`` and record the submission as
   *received* (committed: a crash later still leaves the file and the record);
4. read, type and check the file in a scratch database with the warehouse file handed
   back meanwhile, so other processes read and write it (undeclared columns and
   fields the agreement does not allow are never selected, so never stored);
5. the file taken back: the checks against what the warehouse holds (references,
   rows loaded before), then one transaction: replace the periods the file covers (feed mode ``replace-period``)
   or append, insert accepted rows with their submission id, quarantine the rest with
   every reason, record counts that reconcile, and the upload's audit entry. A crash
   or ``kill -9`` before COMMIT leaves no partial rows.

All of it runs in the caller's session (:class:`backbone.session.Session`), which
commits in these steps: see :meth:`Ingestor.submit`. The state of one call lives in a
:class:`_Call` passed along, never on the ``Ingestor``, so one ``Ingestor`` serves
concurrent sessions.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from backbone.engines import Connection, EngineError, attached, cut_short, scratch
from backbone.engines.duckdb import next_id, transaction
from backbone.engines.sql import ident, literal
from backbone.errors import (
    BackboneError,
    InputFileError,
    NotFoundError,
    UserError,
    WarehouseError,
)
from backbone.ids import path_part
from backbone.ingest.mapping import (
    IMPLICIT,
    FileSection,
    Mapping,
    load_mapping,
    parse_mapping_text,
    target_table,
)
from backbone.ingest.readers import (
    SourceInfo,
    StagedFile,
    sniff,
    stage,
)
from backbone.ingest.report import Report, build_report, quarantine_csv
from backbone.ingest.validate import (
    CheckPlan,
    code_lookup_rows,
    duplicate_in_file_sql,
    duplicate_of_loaded_sql,
    only_when_sql,
    parts_sql,
    plan_checks,
    reference_sqls,
    refusal_message_sql,
    refusal_prefix,
    refused_sql,
    skipped_sql,
    source_row_sql,
    source_sql,
    typed_sql,
)
from backbone.model.calendar import (
    school_year_label,
    school_year_label_sql,
    school_year_sql,
)
from backbone.model.schema import PERIOD_SQL
from backbone.partners.agreements import AgreementRegistry
from backbone.partners.feeds import MODES, Feed, FeedRegistry
from backbone.session import Session

__all__ = ["Ingestor", "RawDecision", "Submission", "SubmissionResult", "TargetResult"]

_SUBMISSION_COLUMNS = (
    "submission_id, partner_id, feed, file_name, received_at, status, rows_read, "
    "rows_loaded, rows_quarantined, note, sha256, raw_path"
)


# said of a submission until a steward admin decides on its raw file (decide_raw)
AWAITS_DECISION = "the raw file awaits a decision (keep or purge)"


@dataclass(frozen=True)
class Submission:
    """A submission as recorded: who sent which file, and what became of it."""

    submission_id: int
    partner_id: str
    feed: str
    file_name: str
    received_at: datetime
    status: str
    rows_read: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    note: str | None
    sha256: str
    raw_path: str
    """the raw file, relative to the warehouse folder"""


@dataclass(frozen=True)
class RawDecision:
    """The steward's decision on a raw file that holds refused columns."""

    decision: str
    """``keep`` or ``purge``"""
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True)
class TargetResult:
    entity: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_replaced: int
    periods: tuple[int, ...]
    rows_skipped: int = 0
    """source rows skip_when left out (times the section's parts)"""


@dataclass
class SubmissionResult:
    submission_id: int
    partner_id: str
    feed: str
    file_name: str
    sha256: str
    status: str
    """loaded | duplicate | refused"""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    """rows the mapping's skip_when left out: neither loaded nor quarantined"""
    targets: list[TargetResult] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)
    """Source columns no mapping section declares (never stored)."""
    dropped: list[str] = field(default_factory=list)
    """Mapped fields the agreement does not allow (never stored)."""
    message: str = ""
    report: Report | None = None
    """The loaded file's validation report, for the partner that sent it."""


class QuarantineReader(Protocol):
    """Who asks for rows a partner sent that never entered the warehouse (its
    quarantine, its validation reports): :class:`~backbone.governance.access.Access`
    decides (the partner's own users, or the steward) and audits the read."""

    def own_or_steward(
        self, partner: str, what: str, *, rows: int | None = None
    ) -> None: ...

    def submission_scope(self) -> str | None: ...


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# A replace-period file with fewer than this share of the rows it would replace
# (when they are at least SMALLER_FILE_FLOOR) waits for --replace-smaller: a school
# year's enrollments change by a few percent from one export to the next, and a
# file cut off halfway must not wipe the rest of the year.
SMALLER_FILE_SHARE = 0.5
SMALLER_FILE_FLOOR = 100


@dataclass(frozen=True)
class _Call:
    """What one ``submit`` call is about (the cursor is the session's, which changes
    when the file is handed back)."""

    partner_id: str
    feed_id: str
    on: date
    """The day the files are received (agreements in force, received dates)."""
    reprocess: bool = False
    """Process a file loaded before again (its mapping changed), replacing its rows."""
    replace_smaller: bool = False
    """Let a replace-period file replace far more rows than it holds (confirmed)."""


class _NotTakenBack(Exception):
    """The warehouse handed back while a file was checked could not be taken again."""

    def __init__(self, error: WarehouseError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Checked:
    """A file read, typed and checked in a scratch database (``database``): its
    staged sheets, and per mapping section the typed rows and the errors found so far
    (table names in that database)."""

    database: Path
    info: SourceInfo
    staged: dict[str | None, StagedFile]
    prepared: list[tuple[FileSection, CheckPlan, StagedFile, str, str]] = field(
        default_factory=list
    )
    undeclared: set[str] = field(default_factory=set)
    """source columns no section declares"""
    dropped: set[str] = field(default_factory=set)
    """mapped fields the agreement does not allow"""
    unread: list[str] = field(default_factory=list)
    """sheets of a workbook no section reads"""


def _loaded_before(
    con: Connection, partner_id: str, feed_id: str, sha: str
) -> tuple[int, datetime] | None:
    """The submission that loaded the same file for the same feed (and stands)."""
    rows = con.execute(
        "SELECT submission_id, received_at FROM ops.submission WHERE partner_id = ? AND feed = ? "
        "AND sha256 = ? AND status = 'loaded' AND submission_id NOT IN "
        "(SELECT replaced_submission_id FROM ops.replacement) ORDER BY submission_id LIMIT 1",
        [partner_id, feed_id, sha],
    ).fetchall()
    return (int(rows[0][0]), rows[0][1]) if rows else None


def _check_newest(
    con: Connection, partner_id: str, feed_id: str, sha: str, name: str
) -> None:
    """A file processed again must be the newest its feed loaded: a file received
    after it holds newer rows, which reprocessing the older one would replace."""
    rows = con.execute(
        "SELECT max(submission_id) FROM ops.submission WHERE partner_id = ? "
        "AND feed = ? AND sha256 = ? AND status = 'loaded'",
        [partner_id, feed_id, sha],
    ).fetchall()
    last = rows[0][0] if rows else None
    if last is None:
        return  # never loaded: an ordinary first submission
    newer = con.execute(
        "SELECT min(submission_id) FROM ops.submission WHERE partner_id = ? "
        "AND feed = ? AND status = 'loaded' AND submission_id > ? AND sha256 <> ?",
        [partner_id, feed_id, last, sha],
    ).fetchall()[0][0]
    if newer is not None:
        raise UserError(
            f"{name}: submission {newer} of feed {feed_id} was loaded after it and may "
            "hold newer rows of the same years; processing this older file again "
            "would replace them. Send the newest file again with --reprocess instead."
        )


def _take_back_earlier_loads(
    con: Connection, sid: int, partner_id: str, feed_id: str, sha: str
) -> dict[str, int]:
    """A reprocessed file: the rows its earlier loads left go, recorded as replaced
    by ``sid`` (identity records are merged again instead: links hang on them).
    Returns the rows taken back per entity."""
    taken: dict[str, int] = {}
    while (earlier := _loaded_before(con, partner_id, feed_id, sha)) is not None:
        before = earlier[0]
        entities = [
            str(r[0])
            for r in con.execute(
                "SELECT entity FROM ops.submission_target WHERE submission_id = ?",
                [before],
            ).fetchall()
        ]
        for entity in entities:
            table = target_table(entity)
            n = 0
            if table.name != "partner_record":
                n = len(
                    con.execute(
                        f"DELETE FROM {table.qualified_name} WHERE submission_id = ? "
                        "RETURNING 1",
                        [before],
                    ).fetchall()
                )
            con.execute(
                "INSERT INTO ops.replacement VALUES (?, ?, ?, ?)",
                [sid, entity, before, n],
            )
            taken[entity] = taken.get(entity, 0) + n
        if not entities:  # nothing recorded per entity: still not loaded before
            con.execute(
                "INSERT INTO ops.replacement VALUES (?, '(none)', ?, 0)", [sid, before]
            )
    return taken


def _drop_staging(con: Connection) -> None:
    for t in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'ingest\\_%' ESCAPE '\\'"
    ).fetchall():
        con.execute(f"DROP TABLE IF EXISTS temp.{ident(t[0])}")


def _settle(con: Connection, sid: int, status: str, note: str) -> None:
    """A received submission that loads nothing: why, kept with it."""
    con.execute(
        "UPDATE ops.submission SET status = ?, note = ? WHERE submission_id = ?",
        [status, note, sid],
    )


_LOCK = "in-use.lock"


@contextmanager
def _scratch_dir(root: Path) -> Iterator[Path]:
    """A private folder under ``root`` for one file's check, locked while in use
    (so another submit can tell it from one left by a killed process), removed after.
    Folders whose lock nobody holds are removed first: a killed submit's copy of a
    partner's file is kept only where retention sees it (raw/)."""
    root.mkdir(mode=0o700, exist_ok=True)
    for old in root.glob("ingest-*"):
        lock_file = old / _LOCK
        try:
            with lock_file.open("a") as held:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a check in progress
        except FileNotFoundError:
            # just made by another submit (its lock not yet taken), or a bare leftover
            if time.time() - old.stat().st_mtime < 3600:
                continue
        shutil.rmtree(old, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=root) as made:
        work = Path(made)
        with (work / _LOCK).open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield work


def display_name(path: Path) -> str:
    """The file's name for people: no folders, no control characters, bounded length."""
    name = "".join(ch if ch.isprintable() else "?" for ch in path.name)
    return name[:200] or "(unnamed)"


class Ingestor:
    """Submissions into one warehouse (``wh.ingest``)."""

    def __init__(
        self,
        con: Connection,
        root: Path,
        agreements: AgreementRegistry,
        feeds: FeedRegistry,
        school_year_start_month: int,
        memory_limit: str | None = None,
        earliest_birth_year: int = 1900,
    ) -> None:
        self._con = con
        self._earliest_birth_year = earliest_birth_year
        self._memory_limit = memory_limit
        self._root = root
        self._agreements = agreements
        self._feeds = feeds
        self._start_month = school_year_start_month
        self._mappings: dict[tuple[object, ...], Mapping] = {}

    # --- entry point -------------------------------------------------------------------

    def submit(
        self,
        s: Session,
        partner_id: str,
        feed_id: str,
        paths: list[Path],
        *,
        mode: str | None = None,
        on: date | None = None,
        progress: Callable[[str], None] | None = None,
        reprocess: bool = False,
        replace_smaller: bool = False,
    ) -> list[SubmissionResult]:
        """Submit a partner's files in order, uploaded by one of its users (or the
        steward's); ``on`` is the day they are received (default: today);
        ``progress`` hears which file is being checked, then loaded.

        Each file is its own atomic submission, and the session commits file by
        file: the file's *received* record first (so a crash later still leaves the
        record and the raw file), then its load together with its ``upload`` audit
        entry in one transaction; a refused file's load is rolled back and its
        refusal kept, with its own entry, before the error is raised. So a refusal in
        the third file leaves the first two loaded, and every stored submission, and
        every file found already loaded, has exactly one ``upload`` entry. A file
        loaded before is a no-op, unless ``reprocess``: then it is read again with
        the feed's mapping as it is now, and its new rows replace the ones its earlier
        load left (recorded in ``ops.replacement``). A replace-period file with less
        than :data:`SMALLER_FILE_SHARE` of the rows it would replace is refused
        unless ``replace_smaller`` (a cut-off export must not wipe a school year). While a
        file is read and checked the warehouse is handed back (see
        :meth:`Session.released`); if it cannot be taken back the submission stays
        *received* and sending the file again loads it. Make it the only write of its
        session: it commits whatever the session did before it.
        """
        s.require(
            "upload",
            f"upload to {partner_id}/{feed_id}",
            partner=partner_id,
            action="upload",
        )
        if not paths:
            raise UserError("Name at least one file to submit.")
        if mode is not None and mode not in MODES:
            raise UserError(f"Mode {mode!r} is not one of {', '.join(MODES)}.")
        call = _Call(partner_id, feed_id, on or s.today(), reprocess, replace_smaller)
        tell = progress or (lambda _message: None)
        results = [self._submit_one(s, call, Path(p), mode, tell) for p in paths]
        for r in results:
            # the uploader may read what it just sent (it was allowed to send it)
            if r.status == "loaded":
                r.report = build_report(s.con, r.submission_id)
        return results

    def _record_upload(self, s: Session, result: SubmissionResult) -> None:
        s.record(
            "upload",
            f"submission {result.submission_id} ({result.file_name}) to "
            f"{result.feed}: {result.status}",
            providers=(result.partner_id,),
            rows=result.rows_read,
            detail={
                "sha256": result.sha256,
                "loaded": result.rows_loaded,
                "quarantined": result.rows_quarantined,
            },
        )

    # --- one file ----------------------------------------------------------------------

    def _mapping(self, partner_id: str, feed_id: str) -> Mapping:
        """The feed's mapping, parsed once while its file is unchanged."""
        path = (
            self._root
            / "mappings"
            / path_part(partner_id, "partner")
            / f"{path_part(feed_id, 'feed')}.yaml"
        )
        stat = path.stat() if path.exists() else None
        key: tuple[object, ...] = (
            str(path),
            stat.st_mtime_ns if stat else 0,
            stat.st_size if stat else -1,
        )
        cached = self._mappings.get(key)
        if cached is None:
            cached = load_mapping(self._root / "mappings", partner_id, feed_id)
            self._mappings[key] = cached
        return cached

    def _prepare(
        self, call: _Call, path: Path, *, stored: bool = False
    ) -> tuple[Feed, Mapping, list[FileSection], dict[str, set[str]]]:
        """What the feed, its mapping and its agreement allow for the file
        (``stored``: its copy is kept already; only its name counts)."""
        partner_id, feed_id, on = call.partner_id, call.feed_id, call.on
        feed = self._feeds.get(partner_id, feed_id)
        mapping = self._mapping(partner_id, feed_id)
        if not stored and not path.is_file():
            raise InputFileError(
                "does not exist or is not a file.", path=display_name(path)
            )
        sections = mapping.sections_for(path.name)
        if not sections:
            patterns = ", ".join(s.match for s in mapping.files)
            raise InputFileError(
                f"matches no section of the {partner_id}/{feed_id} mapping (its files are: "
                f"{patterns}). Rename the file or add a section to the mapping.",
                path=display_name(path),
            )
        state = self._agreements.state(feed.agreement_id, on)
        version = state.version
        if version is None:
            raise UserError(
                f"Agreement {feed.agreement_id}, which covers feed {feed_id} of {partner_id}, "
                f"is not in force on {on}; nothing was stored."
            )
        doc = version.document
        if not state.applies:
            raise UserError(
                f"{version.ref} is {doc.status.value} and runs {doc.effective_from} to "
                f"{doc.effective_to or 'open'}; data cannot be accepted on {on}. Nothing was stored."
            )
        if all(s.only_when for s in sections):
            raise UserError(
                f"Every section of the {partner_id}/{feed_id} mapping that reads "
                f"{display_name(path)} has only_when; add one that reads every row, so each "
                "row is loaded or quarantined."
            )
        entities = [s.entity for s in sections]
        if len(entities) != len(set(entities)):
            raise UserError(
                f"Two sections of the {partner_id}/{feed_id} mapping feed the same entity from "
                f"{display_name(path)}; combine them into one section."
            )
        allowed: dict[str, set[str]] = {}
        for section in sections:
            if section.entity not in feed.entities:
                raise UserError(
                    f"Feed {feed_id} of {partner_id} carries {', '.join(feed.entities)}, not "
                    f"{section.entity}; fix the mapping or the feed."
                )
            dataset = doc.dataset(section.entity)
            if dataset is None:
                raise UserError(
                    f"{version.ref} does not share {section.entity}; the file's "
                    f"{section.entity} rows cannot be accepted. Nothing was stored."
                )
            table_required = {
                c.name for c in target_table(section.entity).columns if not c.nullable
            } - IMPLICIT
            allowed[section.entity] = dataset.field_names() | table_required
        return feed, mapping, sections, allowed

    def _submit_one(
        self,
        s: Session,
        call: _Call,
        path: Path,
        mode: str | None,
        progress: Callable[[str], None],
    ) -> SubmissionResult:
        partner_id, feed_id = call.partner_id, call.feed_id
        feed, _mapping, sections, allowed = self._prepare(call, path)
        mode = mode or feed.mode
        sha, size = _sha256(path)
        name = display_name(path)
        earlier = _loaded_before(s.con, partner_id, feed_id, sha)
        if call.reprocess:
            _check_newest(s.con, partner_id, feed_id, sha, name)
        if earlier is not None and not call.reprocess:
            sid, at = earlier
            result = SubmissionResult(
                sid,
                partner_id,
                feed_id,
                name,
                sha,
                "duplicate",
                message=f"{name} was already loaded as submission {sid} on {at:%Y-%m-%d}; nothing changed.",
            )
            self._record_upload(s, result)
            s.step()
            return result
        raw_path = self._store_raw(s, path, sha)
        sid = self._record_received(s.con, call, name, sha, size, raw_path)
        s.step()  # a crash from here on leaves the record 'received'
        codes = [self._code_rows(s.con, partner_id, x) for x in sections]
        try:
            with _scratch_dir(self._root / "tmp") as work:
                checked = self._checked_away(
                    s,
                    call,
                    work / "checked.duckdb",
                    raw_path,
                    name,
                    sections,
                    allowed,
                    codes,
                    progress,
                )
                # what was decided before the file was handed back must still hold
                again = self._prepare(call, path, stored=True)
                if again != (feed, _mapping, sections, allowed) or codes != [
                    self._code_rows(s.con, partner_id, x) for x in sections
                ]:
                    raise UserError(
                        f"{name}: the agreement, feed, mapping or code map of {partner_id}/"
                        f"{feed_id} changed while the file was checked; nothing was "
                        "loaded. Send the file again."
                    )
                correction = any(x.correction for x in checked.staged.values())
                if correction:
                    mode = "append"  # fixed rows join what loaded; nothing replaced
                progress(f"loading {name}")
                result = self._load(s, call, sid, name, sha, checked, mode)
                if correction and result.status == "loaded":
                    result.message += (
                        " A corrected quarantine: each row went only to what refused "
                        "it, added to what was loaded (nothing replaced)."
                    )
        except _NotTakenBack as exc:
            # the submission stays 'received'; sending the file again loads it
            raise WarehouseError(
                f"{name} was checked but not loaded (submission {sid}): {exc.error} "
                "Send the file again when the warehouse is free."
            ) from None
        except BackboneError as exc:
            self._refuse(s, call, sid, name, sha, str(exc))
            raise
        except EngineError as exc:
            if cut_short(exc):
                raise KeyboardInterrupt from None
            # a mapping the database cannot apply (a bad date format, a path into a
            # plain column, ...): refuse with the reason rather than crash
            reason = str(exc).split("\n")[0]
            message = (
                f"{name}: the {partner_id}/{feed_id} mapping could not be applied to this "
                f"file ({reason}). Check the mapping's formats and column paths; nothing was loaded."
            )
            self._refuse(s, call, sid, name, sha, message)
            raise UserError(message) from None
        _drop_staging(s.con)
        self._record_upload(s, result)
        s.step()  # the file's load and its audit entry, as one
        return result

    def _refuse(
        self, s: Session, call: _Call, sid: int, name: str, sha: str, note: str
    ) -> None:
        """Undo a file's load (its staging tables go with it) and keep its refusal."""
        s.step(commit=False)
        _drop_staging(s.con)
        _settle(s.con, sid, "refused", note)
        self._record_upload(
            s,
            SubmissionResult(sid, call.partner_id, call.feed_id, name, sha, "refused"),
        )
        s.step()

    def _store_raw(self, s: Session, path: Path, sha: str) -> str:
        """The received file's place in the raw store, there once its receipt commits."""
        relative = f"raw/{sha[:2]}/{sha}"
        target = self._root / relative
        if not target.exists():
            s.write_file(target, path)
        return relative

    def _record_received(
        self, con: Connection, call: _Call, name: str, sha: str, size: int, raw: str
    ) -> int:
        sid = next_id(con, "ops.submission_id_seq")
        con.execute(
            "INSERT INTO ops.submission VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', NULL, NULL, NULL, NULL, NULL)",
            [sid, call.partner_id, call.feed_id, name, sha, size, raw, _now()],
        )
        return sid

    # --- reading and checking, away from the warehouse -------------------------------------

    def _code_rows(
        self, con: Connection, partner_id: str, section: FileSection
    ) -> dict[str, list[tuple[str, str | None]]]:
        """Each coded field's (local, canonical) pairs: the mapping's codes, the
        descriptor's, and the partner's descriptor map in the warehouse."""
        table = target_table(section.entity)
        out = {}
        for name, spec in section.fields().items():
            column = table.column(name)
            if not (column.descriptor or spec.codes or spec.grade_level):
                continue
            partner_map = dict(
                con.execute(
                    "SELECT local_code_value, code_value FROM ref.descriptor_map WHERE partner_id = ? AND descriptor_name = ?",
                    [partner_id, column.descriptor or ""],
                ).fetchall()
            )
            out[name] = code_lookup_rows(spec, column.descriptor, partner_map)
        return out

    def _checked_away(
        self,
        s: Session,
        call: _Call,
        scratch_file: Path,
        raw_relative: str,
        name: str,
        sections: list[FileSection],
        allowed: dict[str, set[str]],
        codes: list[dict[str, list[tuple[str, str | None]]]],
        progress: Callable[[str], None],
    ) -> _Checked:
        """Read, type and check the file in a scratch database with the warehouse
        handed back meanwhile; only the checks against what the warehouse holds
        (references, rows loaded before) wait for the load."""
        failure: BackboneError | EngineError | None = None
        checked: _Checked | None = None
        try:
            with s.released():
                progress(f"reading and checking {name}")
                try:
                    checked = self._check(
                        call, scratch_file, raw_relative, name, sections, allowed, codes
                    )
                except (BackboneError, EngineError) as exc:
                    if cut_short(exc):
                        raise KeyboardInterrupt from None
                    failure = exc
        except Exception as exc:
            if not s.lost:
                raise
            # the pause could not take the file back: nothing may be written now
            error = (
                exc
                if isinstance(exc, WarehouseError)
                else WarehouseError(f"the warehouse could not be opened again ({exc}).")
            )
            raise _NotTakenBack(error) from None
        if failure is not None:
            raise failure
        assert checked is not None
        return checked

    def _check(
        self,
        call: _Call,
        scratch_file: Path,
        raw_relative: str,
        name: str,
        sections: list[FileSection],
        allowed: dict[str, set[str]],
        codes: list[dict[str, list[tuple[str, str | None]]]],
    ) -> _Checked:
        partner_id = call.partner_id
        # Read the stored copy: exactly the bytes that were checksummed, under a name
        # with no wildcard a reader could expand.
        raw_file = self._root / raw_relative
        con = scratch(scratch_file, memory_limit=self._memory_limit)
        try:
            try:
                info: SourceInfo = sniff(raw_file)
                staged: dict[str | None, StagedFile] = {}
                for section in sections:
                    sheet = section.sheet if info.format == "xlsx" else None
                    if sheet not in staged:
                        staged[sheet] = stage(
                            con,
                            raw_file,
                            f"staged_{len(staged)}",
                            sheet=sheet,
                            info=info,
                        )
            except InputFileError as exc:
                raise InputFileError(str(exc).replace(str(raw_file), name)) from None
            checked = _Checked(scratch_file, info, staged)
            if all(x.rows == 0 for x in staged.values()):
                return checked
            for sheet, x in staged.items():
                declared: set[str] = set()
                paths: set[str] = set()
                ignored: set[str] = set()
                for section in sections:
                    if (section.sheet if info.format == "xlsx" else None) != sheet:
                        continue
                    declared |= section.declared()
                    ignored |= set(section.ignore)
                    paths |= {
                        _plain_path(r)
                        for spec in section.all_specs()
                        for r in spec.source_refs()
                    }
                    for ref in (
                        section.only_when,
                        *(rule.column for rule in section.skip_when),
                    ):
                        if ref:
                            paths.add(_plain_path(ref))
                checked.undeclared |= set(x.columns) - declared
                checked.undeclared |= {
                    leaf
                    for column, type_ in x.columns.items()
                    if column in declared and column not in ignored
                    for leaf in _leaves(column, type_)
                    if not any(leaf == p or leaf.startswith(p + ".") for p in paths)
                }
            for i, section in enumerate(sections):
                x = staged[section.sheet if info.format == "xlsx" else None]
                # columns read only by fields the agreement refuses are optional (an
                # exported quarantine file leaves them out)
                needed = {
                    c
                    for part in section.parts()
                    for f, spec in part.items()
                    if f in allowed[section.entity]
                    for c in spec.source_columns()
                } | {
                    _plain_path(rule.column).split(".")[0] for rule in section.skip_when
                }
                missing = sorted(c for c in needed if c not in x.columns)
                if missing and x.correction and not _refused_any(con, x, section):
                    continue  # a fixed export with nothing for this section
                if missing:
                    hint = ""
                    if len(x.columns) == 1:
                        hint = f" The file has a single column {next(iter(x.columns))!r}: is the delimiter right?"
                    raise InputFileError(
                        f"lacks the column(s) {', '.join(repr(m) for m in missing)} that the mapping's "
                        f"{section.entity} section reads; the file has {', '.join(repr(c) for c in list(x.columns)[:12])}."
                        + hint,
                        path=name,
                    )
                checked.dropped |= {
                    f"{section.entity}.{f}"
                    for f in section.fields()
                    if f not in allowed[section.entity]
                }
                lookups = {}
                for field_name, rows in codes[i].items():
                    lookup = f"code_{i}_{field_name}"
                    values = ", ".join("(?, ?)" for _ in rows) or "(NULL, NULL)"
                    con.execute(
                        f"CREATE OR REPLACE TABLE {lookup} AS SELECT * FROM (VALUES {values}) t(local, canonical)",
                        [text for row in rows for text in row],
                    )
                    lookups[field_name] = lookup
                plans = [
                    plan_checks(section, lookups, allowed[section.entity], part)
                    for part in section.parts()
                ]
                plan = plans[0]  # the parts differ only in where values come from
                typed, errors = f"typed_{i}", f"errors_{i}"
                con.execute(
                    f"CREATE OR REPLACE TABLE {typed} AS "
                    + parts_sql(
                        [
                            typed_sql(
                                part_plan,
                                x.table,
                                x.columns,
                                partner_id,
                                self._start_month,
                                only_when=section.only_when,
                                skip_when=section.skip_when,
                                correction=refusal_prefix(section, k)
                                if x.correction
                                else None,
                                received=literal(call.on),
                                earliest_birth_year=self._earliest_birth_year,
                            )
                            for k, part_plan in enumerate(plans)
                        ]
                    )
                )
                con.execute(
                    f"CREATE OR REPLACE TABLE {errors} AS "
                    f"SELECT __row, e.rule AS rule, e.message AS message FROM "
                    f"(SELECT __row, unnest(__errors) AS e FROM {typed} WHERE len(__errors) > 0)"
                )
                in_file = duplicate_in_file_sql(plan, typed, section)
                if in_file:
                    con.execute(f"INSERT INTO {errors} {in_file}")
                checked.prepared.append((section, plan, x, typed, errors))
            if info.format == "xlsx":
                import fastexcel

                checked.unread = [
                    n
                    for n in fastexcel.read_excel(str(raw_file)).sheet_names
                    if n not in staged
                ]
                if None in staged:
                    # the first sheet was read for sections naming no sheet
                    checked.unread = checked.unread[1:]
            return checked
        finally:
            con.close()

    # --- the load ----------------------------------------------------------------------------

    def _load(
        self,
        s: Session,
        call: _Call,
        sid: int,
        name: str,
        sha: str,
        checked: _Checked,
        mode: str,
    ) -> SubmissionResult:
        """The checked file into the warehouse, in the session's transaction: the
        checks against what it holds, then rows loaded and quarantined."""
        con, partner_id, feed_id = s.con, call.partner_id, call.feed_id
        info = checked.info
        earlier = _loaded_before(con, partner_id, feed_id, sha)
        if earlier is not None and not call.reprocess:
            # sent twice at once: the other one was first
            note = f"the same file was loaded meanwhile as submission {earlier[0]}; nothing changed"
            _settle(con, sid, "duplicate", note)
            return SubmissionResult(
                sid,
                partner_id,
                feed_id,
                name,
                sha,
                "duplicate",
                message=f"{name}: {note}.",
            )
        if all(x.rows == 0 for x in checked.staged.values()):
            note = (
                "has a header but no rows; nothing was loaded or replaced"
                if info.format in ("csv", "xlsx")
                else "holds no records; nothing was loaded or replaced"
            )
            con.execute(
                "UPDATE ops.submission SET status = 'empty', rows_read = 0, rows_loaded = 0, "
                "rows_quarantined = 0, note = ? WHERE submission_id = ?",
                [note, sid],
            )
            return SubmissionResult(
                sid, partner_id, feed_id, name, sha, "empty", message=f"{name}: {note}."
            )
        undeclared, dropped, unread = (
            checked.undeclared,
            checked.dropped,
            checked.unread,
        )
        result = SubmissionResult(
            sid,
            partner_id,
            feed_id,
            name,
            sha,
            "loaded",
            undeclared=sorted(undeclared),
            dropped=sorted(dropped),
        )
        alias = f"ingest_{sid}"
        with attached(con, checked.database, alias):
            prepared: list[tuple[FileSection, CheckPlan, StagedFile, str, str]] = []
            for i, (section, plan, x, typed_name, errors_name) in enumerate(
                checked.prepared
            ):
                typed = f"{ident(alias)}.{typed_name}"
                errors = f"ingest_errors_{i}"
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {errors} AS "
                    f"SELECT * FROM {ident(alias)}.{errors_name}"
                )
                for q in reference_sqls(plan, typed, partner_id):
                    con.execute(f"INSERT INTO {errors} {q}")
                if mode == "replace-period":
                    self._one_period(con, plan, typed, errors, section.entity)
                staged = replace(x, table=f"{ident(alias)}.{x.table}")
                prepared.append((section, plan, staged, typed, errors))
            with transaction(con):
                taken_back = (
                    _take_back_earlier_loads(con, sid, partner_id, feed_id, sha)
                    if call.reprocess
                    else {}
                )
                rows_read = sum(x.rows for x in checked.staged.values())
                # per sheet: rows a section took (None: all of them), rows in error
                by_sheet: dict[str | None, list[tuple[str | None, str]]] = {}
                for section, plan, x, typed, errors in prepared:
                    target = self._load_section(
                        con,
                        sid,
                        name,
                        partner_id,
                        section,
                        plan,
                        x,
                        typed,
                        errors,
                        mode,
                        feed_id,
                        smaller_confirmed=call.replace_smaller,
                    )
                    result.targets.append(
                        replace(
                            target,
                            rows_replaced=target.rows_replaced
                            + taken_back.get(section.entity, 0),
                        )
                    )
                    sheet = section.sheet if info.format == "xlsx" else None
                    # the file's rows: taken by some section, or with an error in one
                    by_sheet.setdefault(sheet, []).append(
                        (
                            f"SELECT {source_row_sql(section, 't')} AS r FROM {typed} t"
                            if section.skip_when or x.correction
                            else None,
                            f"SELECT t.__source_row AS r FROM {errors} e "
                            f"JOIN {typed} t ON t.__row = e.__row"
                            if len(section.each) > 1
                            else f"SELECT __row AS r FROM {errors}",
                        )
                    )
                quarantined = taken = 0
                for sheet, queries in by_sheet.items():
                    bad = " UNION ".join(q for _, q in queries)
                    quarantined += int(
                        con.execute(
                            f"SELECT count(DISTINCT r) FROM ({bad})"
                        ).fetchall()[0][0]
                    )
                    if all(q is not None for q, _ in queries):
                        took = " UNION ".join(q for q, _ in queries if q)
                        taken += int(
                            con.execute(
                                f"SELECT count(DISTINCT r) FROM ({took})"
                            ).fetchall()[0][0]
                        )
                    else:  # a section takes every row (only_when never covers all)
                        taken += checked.staged[sheet].rows
                result.rows_read = rows_read
                result.rows_quarantined = quarantined
                # a row skipped by every section reading it (skip_when) is neither
                result.rows_loaded = taken - quarantined
                result.rows_skipped = rows_read - taken
                if taken_back and result.rows_loaded == 0:
                    raise UserError(
                        f"{name}: processed again with the current mapping, none of "
                        f"its {rows_read:,} rows loads (every one quarantined); the "
                        "rows of its earlier load were kept. Fix the mapping "
                        "(`backbone submissions quarantine` shows why) and send it again."
                    )
                if undeclared or dropped:
                    con.execute(
                        "INSERT INTO ops.raw_decision VALUES (?, ?, NULL, NULL, NULL, NULL)",
                        [sid, sorted(undeclared | dropped)],
                    )
                notes = []
                if undeclared or dropped:
                    notes.append(
                        "refused and never stored: "
                        + ", ".join(sorted(undeclared | dropped))
                        + f"; {AWAITS_DECISION}"
                    )
                if unread:
                    notes.append(
                        f"sheets not part of feed {feed_id}, not read: {', '.join(unread)}"
                    )
                refusal: str | None = "; ".join(notes) or None
                con.execute(
                    "UPDATE ops.submission SET status = 'loaded', rows_read = ?, rows_loaded = ?, "
                    "rows_quarantined = ?, rows_skipped = ?, note = ? WHERE submission_id = ?",
                    [
                        rows_read,
                        result.rows_loaded,
                        quarantined,
                        result.rows_skipped,
                        refusal,
                        sid,
                    ],
                )
                # an earlier copy whose load never finished (killed, or the warehouse
                # not given back) is this file too: say where it went
                settled = con.execute(
                    "UPDATE ops.submission SET status = 'duplicate', note = ? "
                    "WHERE partner_id = ? AND feed = ? AND sha256 = ? "
                    "AND status = 'received' AND submission_id < ? "
                    "RETURNING submission_id, file_name",
                    [
                        f"its load did not finish; the same file was loaded as "
                        f"submission {sid}",
                        partner_id,
                        feed_id,
                        sha,
                        sid,
                    ],
                ).fetchall()
                for earlier_sid, earlier_name in settled:
                    self._record_upload(
                        s,
                        SubmissionResult(
                            int(earlier_sid),
                            partner_id,
                            feed_id,
                            str(earlier_name),
                            sha,
                            "duplicate",
                        ),
                    )
        result.message = (
            f"{name}: {result.rows_read:,} rows read, {result.rows_loaded:,} loaded, "
            f"{result.rows_quarantined:,} quarantined"
            + (
                (
                    f", {result.rows_skipped:,} not taken (a corrected quarantine "
                    "takes back only rows it lists with a reason)"
                    if any(x.correction for x in checked.staged.values())
                    else f", {result.rows_skipped:,} skipped by the mapping's skip_when"
                )
                if result.rows_skipped
                else ""
            )
            + f" (submission {sid})."
            + (
                " Processed again with the feed's mapping as it is now; the rows of "
                "its earlier load were replaced."
                if call.reprocess and taken_back
                else ""
            )
            + (
                f" Sheets not part of this feed, not read: {', '.join(unread)}."
                if unread
                else ""
            )
        )
        return result

    def _one_period(
        self,
        con: Connection,
        plan: CheckPlan,
        typed: str,
        errors: str,
        entity: str,
    ) -> None:
        """A replace-period file is for one school year: the year most of its rows are in.
        Rows dated in another year are quarantined, so a mistyped date can never wipe
        a different year's data."""
        period = self._period_sql(entity, "t.")
        if period is None or not all(
            c in plan.field_names for c in re.findall(r'"([a-z_]+)"', period)
        ):
            return
        main = con.execute(
            f"SELECT {period} AS p FROM {typed} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {errors} e WHERE e.__row = t.__row) AND {period} IS NOT NULL "
            "GROUP BY p ORDER BY count(*) DESC, p DESC LIMIT 1"
        ).fetchall()
        if not main:
            return
        year = int(main[0][0])
        label = school_year_label(year, self._start_month)
        con.execute(
            f"INSERT INTO {errors} SELECT t.__row, 'outside_period', "
            f"'dated in school year ' || {school_year_label_sql(period, self._start_month)} "
            f"|| ', but this file is for {label}; send it with that year''s data' "
            f"FROM {typed} t WHERE {period} IS NOT NULL AND {period} <> {year} AND NOT EXISTS "
            f"(SELECT 1 FROM {errors} e WHERE e.__row = t.__row)"
        )

    def _period_sql(self, entity: str, alias: str = "") -> str | None:
        column = PERIOD_SQL.get(entity)
        if column is None:
            return None
        ref = f"{alias}{ident(column)}"
        if column == "school_year":
            return ref
        return school_year_sql(ref, self._start_month)

    def _load_section(
        self,
        con: Connection,
        sid: int,
        name: str,
        partner_id: str,
        section: FileSection,
        plan: CheckPlan,
        s: StagedFile,
        typed: str,
        errors: str,
        mode: str,
        feed_id: str,
        *,
        smaller_confirmed: bool = False,
    ) -> TargetResult:
        table = plan.table
        entity = section.entity
        fields = plan.field_names
        good = f"(SELECT * FROM {typed} t WHERE NOT EXISTS (SELECT 1 FROM {errors} e WHERE e.__row = t.__row))"
        replaced = 0
        periods: tuple[int, ...] = ()
        period = self._period_sql(entity)
        owner = (
            "partner_id" if table.name == "partner_record" else "provider_partner_id"
        )
        if table.name == "partner_record":
            # identity is merged, not replaced: several files may each tell part of it
            counts = []
        elif mode == "replace-period" and period is not None:
            new_period = self._period_sql(entity, "g.")
            periods = tuple(
                int(r[0])
                for r in con.execute(
                    f"SELECT DISTINCT {new_period} FROM {good} g WHERE {new_period} IS NOT NULL ORDER BY 1"
                ).fetchall()
            )
            # A feed is the unit of replacement: another feed of the same entity
            # (a second assessment file, a program's own attendance) keeps its
            # rows; this submission's own rows are never its own replacement.
            keep_sql = (
                f"{period} IN ({', '.join(str(p) for p in periods)})"
                if periods
                else "false"
            ) + (
                " AND submission_id <> ? AND submission_id IN (SELECT submission_id "
                "FROM ops.submission WHERE partner_id = ? AND feed = ?)"
            )
            same_feed = [partner_id, sid, partner_id, feed_id]
            counts = con.execute(
                f"SELECT submission_id, count(*) FROM {table.qualified_name} WHERE {owner} = ? AND {keep_sql} GROUP BY 1",
                same_feed,
            ).fetchall()
            replacing = sum(int(n) for _, n in counts)
            incoming_row = con.execute(f"SELECT count(*) FROM {good} g").fetchone()
            incoming = int(incoming_row[0]) if incoming_row else 0
            if (
                not smaller_confirmed
                and replacing >= SMALLER_FILE_FLOOR
                and incoming < replacing * SMALLER_FILE_SHARE
            ):
                raise UserError(
                    f"{name}: its {incoming:,} good rows of {entity} would replace "
                    f"{replacing:,} rows of the same period, loaded before: far fewer. "
                    "Nothing was loaded. If the export was cut short, send the whole "
                    "file; if the period really shrank, send it again with "
                    "--replace-smaller."
                )
            newer = [r for r, _ in counts if r > sid]
            if newer:  # loaded while this file was checked, received after it
                raise UserError(
                    f"{name}: submission {min(newer)}, received after this file, was "
                    "loaded while it was checked and holds rows of the same period; "
                    "loading this one now would replace newer data. Nothing was "
                    "loaded; send it again if it should replace that one."
                )
            con.execute(
                f"DELETE FROM {table.qualified_name} WHERE {owner} = ? AND {keep_sql}",
                same_feed,
            )
        else:
            counts = []
        for replaced_sid, n in counts:
            replaced += int(n)
            con.execute(
                "INSERT INTO ops.replacement VALUES (?, ?, ?, ?)",
                [sid, entity, replaced_sid, n],
            )
        dup_loaded = duplicate_of_loaded_sql(plan, typed, partner_id, None)
        if dup_loaded:
            con.execute(f"INSERT INTO {errors} {dup_loaded}")
        columns = ", ".join(ident(f) for f in fields)
        conflict = ""
        if table.name == "partner_record":
            updates = [
                f"{ident(f)} = coalesce(EXCLUDED.{ident(f)}, {ident(f)})"
                for f in fields
                if f != "local_id"
            ]
            updates.append("submission_id = EXCLUDED.submission_id")
            # a file received earlier but loaded later (it was checked longer) does
            # not overwrite what a newer file said
            conflict = (
                f" ON CONFLICT (partner_id, local_id) DO UPDATE SET {', '.join(updates)}"
                f" WHERE {table.qualified_name}.submission_id < EXCLUDED.submission_id"
            )
        if conflict:
            # a person listed on several rows (once per program) is one record:
            # each field as the last row that gives it says
            merged = [
                f"max_by({ident(f)}, __row) FILTER (WHERE {ident(f)} IS NOT NULL) "
                f"AS {ident(f)}"
                for f in fields
                if f != "local_id"
            ]
            good = (
                f"(SELECT {', '.join(['local_id', *merged, 'min(__row) AS __row'])} "
                f"FROM {good} GROUP BY local_id)"
            )
        con.execute(
            f"INSERT INTO {table.qualified_name} ({owner}, {columns}, submission_id) "
            f"SELECT {literal(partner_id)}, {columns}, {sid} FROM {good} "
            f"ORDER BY __row{conflict}"
        )
        # Only the paths the allowed fields read are kept: a struct column may hold
        # more (an SSN inside a JSON object) that must never be stored.
        # (and the columns that say whether a row is the section's: a fixed export
        # sent back must still say so)
        refs = sorted(
            {
                r
                for part in section.parts()
                for f, spec in part.items()
                if f in fields
                for r in spec.source_refs()
            }
            | {
                r
                for r in (section.only_when, *(k.column for k in section.skip_when))
                if r
            }
        )
        refs = [r for r in refs if r.split(".")[0].split("[")[0] in s.columns]
        record = (
            "json_object("
            + ", ".join(
                f"{literal(r)}, CAST({source_sql(r, 'st')} AS VARCHAR)" for r in refs
            )
            + ")"
            if refs
            else "'{}'::JSON"
        )
        # a wide section's rows are numbered apart from the file's: the typed row
        # names its file row (joined only then: it is the file's size)
        wide = len(section.each) > 1
        source = source_row_sql(section, "t" if wide else "e")
        wide_join = f"JOIN {typed} t ON t.__row = e.__row " if wide else ""
        con.execute(
            f"""
            INSERT INTO ops.quarantine
            SELECT {sid}, {literal(entity)}, {source},
                   list(e.rule ORDER BY e.__row, e.rule),
                   list({refusal_message_sql(section, "e")} ORDER BY e.__row, e.rule),
                   any_value({record})
            FROM {errors} e {wide_join}JOIN {s.table} st ON st.__row = {source}
            GROUP BY {source}
            """
        )
        quarantined = int(
            con.execute(f"SELECT count(DISTINCT __row) FROM {errors}").fetchall()[0][0]
        )
        # rows of this section: a section with only_when covers only some of the file
        rows_in = int(con.execute(f"SELECT count(*) FROM {typed}").fetchall()[0][0])
        loaded = rows_in - quarantined
        skipped = 0
        if section.skip_when:
            within = (
                f"{only_when_sql(section.only_when)} AND " if section.only_when else ""
            )
            skipped = len(section.parts()) * int(
                con.execute(
                    f"SELECT count(*) FROM {s.table} s "
                    f"WHERE {within}{skipped_sql(section.skip_when)}"
                ).fetchall()[0][0]
            )
        con.execute(
            "INSERT INTO ops.submission_target VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                sid,
                entity,
                rows_in,
                loaded,
                quarantined,
                replaced,
                list(periods) or None,
                skipped,
            ],
        )
        return TargetResult(
            entity, rows_in, loaded, quarantined, replaced, periods, skipped
        )

    # --- reading back ---------------------------------------------------------------------

    def list(self, partner_id: str | None = None) -> list[Submission]:
        """Every submission (of one partner), oldest first."""
        return [
            Submission(*r)
            for r in self._con.execute(
                f"SELECT {_SUBMISSION_COLUMNS} FROM ops.submission "
                "WHERE ? IS NULL OR partner_id = ? ORDER BY submission_id",
                [partner_id, partner_id],
            ).fetchall()
        ]

    def latest(self, count: int) -> builtins.list[Submission]:
        """The ``count`` newest submissions, newest first (however many there are)."""
        return [
            Submission(*r)
            for r in self._con.execute(
                f"SELECT {_SUBMISSION_COLUMNS} FROM ops.submission "
                "ORDER BY submission_id DESC LIMIT ?",
                [count],
            ).fetchall()
        ]

    def list_for(self, reader: QuarantineReader) -> builtins.list[Submission]:
        """The submissions ``reader`` may see, newest first: the steward's all,
        a partner's users their own partner's."""
        return self.list(reader.submission_scope())[::-1]

    def get(self, submission_id: int) -> Submission:
        return _submission(self._con, submission_id)

    def report(self, submission_id: int, reader: QuarantineReader) -> Report:
        """The validation report of a submission (counts, errors by rule), for
        the partner's own users and the steward (``reader`` decides, and audits)."""
        submission = self.get(submission_id)
        report = build_report(self._con, submission_id)
        reader.own_or_steward(
            submission.partner_id,
            f"validation report of submission {submission_id}",
            rows=sum(len(g.examples) for g in report.groups),
        )
        return report

    def quarantine_csv(
        self, submission_id: int, reader: QuarantineReader, *, to: str = ""
    ) -> str:
        """A submission's quarantined rows with their reasons, as CSV to fix, for
        the partner's own users and the steward (``reader`` decides, and audits;
        ``to`` names where the door puts it, for the audit entry)."""
        submission = self.get(submission_id)
        text = quarantine_csv(self._con, submission_id)
        reader.own_or_steward(
            submission.partner_id,
            f"quarantined rows of submission {submission_id}"
            + (f" to {to}" if to else ""),
            rows=text.count("\n") - 1,
        )
        return text

    def raw_decisions(self, submission_id: int) -> tuple[RawDecision, ...]:
        """The decisions on a raw file holding refused columns."""
        return tuple(
            RawDecision(*r)
            for r in self._con.execute(
                "SELECT decision, reason, decided_by, decided_at FROM ops.raw_decision "
                "WHERE submission_id = ? AND decision IS NOT NULL",
                [submission_id],
            ).fetchall()
        )

    def set_mapping(
        self, s: Session, partner_id: str, feed_id: str, source: Path
    ) -> Path:
        """Record ``source`` as the mapping of a partner's feed (checked first; the
        one it replaces is kept beside it with its time): the steward admin's,
        audited. Later submissions of the feed read it; files already loaded are
        processed again only when resubmitted with ``--reprocess``."""
        s.require(
            "administer", f"set the mapping of {partner_id}/{feed_id}", action="mapping"
        )
        feed = self._feeds.get(partner_id, feed_id)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(
                f"cannot read the mapping ({exc}).", path=source
            ) from None
        mapping = parse_mapping_text(text, source, partner_id, feed_id)
        outside = sorted({f.entity for f in mapping.files} - set(feed.entities))
        if outside:
            raise InputFileError(
                f"the mapping fills {', '.join(outside)}, which feed {feed_id} does not "
                f"carry ({', '.join(feed.entities)}); add the entity to the feed or "
                "remove that section.",
                path=source,
            )
        folder = self._root / "mappings" / path_part(partner_id, "partner")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{path_part(feed_id, 'feed')}.yaml"
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            return target
        # the file is replaced when the audit entry commits: never an unrecorded one
        s.record(
            "mapping",
            f"mapping of {partner_id}/{feed_id} set from {source.name} "
            f"({len(mapping.files)} sections, sha256 "
            f"{hashlib.sha256(text.encode()).hexdigest()[:12]})",
            providers=(partner_id,),
        )
        if target.is_file():
            stamp = s.clock().strftime("%Y%m%dT%H%M%S")
            shutil.copy2(target, folder / f"{feed_id}.{stamp}.yaml.old")
        s.write_file(target, text)  # in place when the unit commits
        self._mappings.clear()
        return target

    def decide_raw(
        self, s: Session, submission_id: int, *, keep: bool, reason: str
    ) -> str:
        """Record whether a raw file holding refused columns is kept or purged: the
        steward admin's decision, under their name, audited."""
        who = s.require(
            "administer",
            f"decide on the raw file of submission {submission_id}",
            action="raw_decision",
        )
        row = _submission(s.con, submission_id)
        pending = s.con.execute(
            "SELECT undeclared_columns, decision FROM ops.raw_decision WHERE submission_id = ?",
            [submission_id],
        ).fetchall()
        if not pending:
            raise UserError(
                f"Submission {submission_id}'s raw file holds nothing refused; there is nothing to decide."
            )
        if pending[0][1] is not None:
            raise UserError(
                f"The raw file of submission {submission_id} was already decided: {pending[0][1]}."
            )
        if not reason.strip():
            raise UserError(
                "Give the reason for the decision (--reason); it is kept on record."
            )
        decision = "keep" if keep else "purge"
        s.con.execute(
            "UPDATE ops.raw_decision SET decision = ?, reason = ?, decided_by = ?, decided_at = ? WHERE submission_id = ?",
            [decision, reason, who.user_id, _now(), submission_id],
        )
        done = "kept" if keep else "purged"
        s.con.execute(
            "UPDATE ops.submission SET note = replace(note, ?, ?) WHERE submission_id = ?",
            [
                AWAITS_DECISION,
                f"the raw file was {done} by {who.user_id} on {s.today()}",
                submission_id,
            ],
        )
        s.record(
            "raw_decision",
            f"raw file of submission {submission_id} ({row.file_name}): {decision}",
            providers=(row.partner_id,),
            reason=reason,
            detail={"refused_columns": list(pending[0][0] or [])},
        )
        raw_path = self._root / row.raw_path
        if not keep:
            shared = s.con.execute(
                "SELECT count(*) FROM ops.submission WHERE sha256 = ? AND submission_id <> ?",
                [row.sha256, submission_id],
            ).fetchall()[0][0]
            if not shared:
                s.remove_file(raw_path)  # once the decision commits
        return decision


def _submission(con: Connection, submission_id: int) -> Submission:
    rows = con.execute(
        f"SELECT {_SUBMISSION_COLUMNS} FROM ops.submission WHERE submission_id = ?",
        [submission_id],
    ).fetchall()
    if not rows:
        raise NotFoundError(
            f"No submission {submission_id}; `backbone submissions list` shows them."
        )
    return Submission(*rows[0])


def _refused_any(con: Connection, x: StagedFile, section: FileSection) -> bool:
    """Whether a fixed quarantine export holds a row this section refused."""
    refused = " OR ".join(
        refused_sql(refusal_prefix(section, k), "t")
        for k in range(max(len(section.each), 1))
    )
    found = con.execute(f"SELECT count(*) FROM {x.table} t WHERE {refused}").fetchall()
    return bool(found[0][0])


def _plain_path(ref: str) -> str:
    """``races[1].raceDescriptor`` -> ``races.raceDescriptor``."""
    return re.sub(r"\[(\d+|\*)\]", "", ref)


def _struct_fields(type_: str) -> list[tuple[str, str]]:
    """Top-level (name, type) pairs of a DuckDB ``STRUCT(...)`` type, lists unwrapped."""
    while type_.endswith("[]"):
        type_ = type_[:-2]
    if not type_.startswith("STRUCT(") or not type_.endswith(")"):
        return []
    body, fields, depth, start = type_[7:-1], [], 0, 0
    for i, ch in enumerate(body + ","):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            part = body[start:i].strip()
            name, _, inner = part.partition(" ")
            fields.append((name.strip('"'), inner.strip()))
            start = i + 1
    return fields


def _leaves(column: str, type_: str) -> list[str]:
    """Every leaf path under a nested column (none for a plain column)."""
    out = []
    for name, inner in _struct_fields(type_):
        sub = _leaves(f"{column}.{name}", inner)
        out += sub or [f"{column}.{name}"]
    return out
