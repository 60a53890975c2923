"""The unit of work every door goes through.

A :class:`Session` is what ``wh.session(principal)`` hands out: its own DuckDB cursor,
the clock, the signed-in principal (or none), the purpose, and one transaction. Every
stage method that writes takes the session and, inside the stage, asks it
:meth:`Session.require` (who may do this) and :meth:`Session.record` (the audit entry,
written in the same transaction as the change). So a door cannot forget either: it
parses, opens a session, calls one method, renders.

A refusal is audited even though the session's transaction rolls back: the warehouse
writes the denials a session collected after the rollback.

This module sits at the bottom of the layers (beside errors and settings) so that
every stage may take a session; it knows principals only by the :class:`Actor`
protocol.
"""

from __future__ import annotations

import errno
import itertools
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from backbone.engines import Connection
from backbone.engines.duckdb import begin, end
from backbone.errors import AuthenticationFailed, Forbidden, WarehouseError
from backbone.interrupts import deferred, note_commit
from backbone.waiting import process_alive

__all__ = ["Actor", "AuditEntry", "Session", "SetupActor", "process_alive"]


class Actor(Protocol):
    """Who is acting: :class:`backbone.governance.Principal` is one."""

    @property
    def user_id(self) -> str: ...

    @property
    def partner_id(self) -> str: ...

    @property
    def is_steward(self) -> bool: ...

    def may(self, operation: str) -> bool: ...

    def lapsed(self, on: date) -> str | None: ...


@dataclass(frozen=True)
class AuditEntry:
    """One event of the audit log. ``providers`` are the partners whose data it touched."""

    action: str
    """read / export / release / upload / login / link / purge / user / token /
    retention / review / partner / agreement / feed / commitment / request /
    raw_decision / definitions / initiative / ..."""
    actor: str
    decision: str = "allow"
    reason: str = ""
    actor_partner: str | None = None
    on_behalf_of: str | None = None
    purpose: str | None = None
    agreements: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    what: str = ""
    rows: int | None = None
    cells: int | None = None
    suppressed: int | None = None
    epsilon: float | None = None
    destination: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, at: datetime, seq: int) -> dict[str, Any]:
        return {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "action": self.action,
            "actor": self.actor,
            "actor_partner": self.actor_partner,
            "on_behalf_of": self.on_behalf_of,
            "purpose": self.purpose,
            "agreements": sorted(set(self.agreements)),
            "providers": sorted(set(self.providers)),
            "what": self.what,
            "rows": self.rows,
            "cells": self.cells,
            "suppressed": self.suppressed,
            "epsilon": self.epsilon,
            "destination": self.destination,
            "decision": self.decision,
            "reason": self.reason,
            "detail": self.detail,
        }


Append = Callable[[AuditEntry, Connection], int]

# A unit's files wait here (in the warehouse folder, so putting one in place is a
# rename) until it commits; a process killed meanwhile leaves them behind, and the
# next unit of work sweeps them (see :func:`sweep_pending`). A file is named
# ``HOST~PID~N~name``: only this machine can tell whether its processes are gone.
PENDING_FOLDER = ".pending"


def _host_id() -> str:
    """This machine, as its processes' ids are seen: the host name and the pid
    namespace (two containers of one name keep apart)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{re.sub(r'[^A-Za-z0-9-]', '-', platform.node() or 'host')}-{namespace}"


_HOST = _host_id()
_aside_numbers = itertools.count(1)
# a file another machine left waiting this long is its killed process's too
_OTHER_HOSTS_AFTER_SECONDS = 7 * 24 * 3600


def sweep_pending(folder: Path) -> int:
    """Remove the files that units of work of processes now gone left waiting
    (killed before their unit ended); how many."""
    swept = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        host, _, rest = entry.name.partition("~")
        pid = rest.partition("~")[0]
        gone = False
        if host == _HOST:
            gone = pid.isdigit() and not process_alive(int(pid))
        else:
            with suppress(OSError):
                age = now - entry.stat().st_mtime
                gone = age > _OTHER_HOSTS_AFTER_SECONDS
        if not gone:
            continue
        with suppress(OSError):
            entry.unlink()
            swept += 1
    return swept


def _put_in_place(aside: Path, path: Path) -> None:
    """Move a waiting file to its place whole: a rename, or where the place is on
    another disk a copy beside it first, renamed over it once complete."""
    try:
        os.replace(aside, path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        beside = path.with_name(f".{path.name}.{_HOST}~{os.getpid()}.copying")
        try:
            shutil.copyfile(aside, beside)
            with beside.open("rb") as copied:
                os.fsync(copied.fileno())
            os.replace(beside, path)
        except BaseException:
            beside.unlink(missing_ok=True)  # never half a file beside the place
            raise
        aside.unlink()


@dataclass(frozen=True)
class SetupActor:
    """Whoever holds a new warehouse's folder, before its first user exists: they set
    up the steward's organization and its first admin (``backbone init``, ``partner
    add``, ``user add``); every step is audited under this name."""

    user_id: str = "(setup)"
    partner_id: str = ""
    is_steward: bool = True

    def may(self, operation: str) -> bool:
        return True

    def lapsed(self, on: date) -> str | None:
        return None


class Session:
    """One unit of work: a cursor in one transaction, the clock and who is acting.

    Made by :meth:`backbone.warehouse.Warehouse.session`; stages receive it as their
    first argument. ``con`` is the session's own cursor: everything a write reads or
    writes goes through it, so it sees its own changes and commits or rolls back as one.
    """

    def __init__(
        self,
        con: Connection,
        clock: Callable[[], datetime],
        principal: Actor | None,
        append: Append,
        *,
        purpose: str | None = None,
        setup: bool = False,
        pause: Callable[[Session], AbstractContextManager[None]] | None = None,
        pending: Path | None = None,
    ) -> None:
        self.con = con
        self._pending = pending  # where files wait for the commit (None: beside)
        self.setup = setup
        self._pause = pause
        self.clock = clock
        self.principal = principal
        self.purpose = purpose
        self._append = append
        self.denials: list[AuditEntry] = []
        """Refusals met in this unit: written after a rollback, or before the commit."""
        self.kept: list[AuditEntry] = []
        """Entries of disclosures written in this unit, written again after a
        rollback (see :meth:`backbone.governance.audit.AuditLog.append`)."""
        self.recorded = 0
        self.lost = False
        """True once a pause could not take the file back: :attr:`con` is closed."""
        self._files: list[tuple[Path | None, Path]] = []  # (written aside, its place)

    def today(self) -> date:
        return self.clock().date()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Hand the warehouse file back to other processes for the block: a long job
        computing between reading its inputs and writing its results. Only before the
        unit has written anything (its reads end with the pause); afterwards
        :attr:`con` is a new cursor in a new transaction, so re-read it, and check
        that what was read has not changed meanwhile."""
        if self.recorded or self._files:
            raise WarehouseError(
                "a unit of work that has written may not hand the warehouse back"
            )
        if self._pause is None:
            yield
            return
        with self._pause(self):
            yield

    def write_file(self, path: Path, content: str | bytes | Path) -> None:
        """A file that belongs with what the unit writes (a run's model, a mapping, a
        copy of a received file): written aside now, so a full disk fails before the
        commit, and put in its place only when the unit commits; a rollback removes
        it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # one aside file per write: the last write to a path wins
        waiting = f"{_HOST}~{os.getpid()}~{next(_aside_numbers)}~{path.name}"
        if self._pending is None:
            aside = path.with_name(f".{waiting}.pending")
        else:
            self._pending.mkdir(exist_ok=True)
            aside = self._pending / waiting
        if isinstance(content, Path):
            shutil.copyfile(content, aside)
        elif isinstance(content, str):
            aside.write_text(content, encoding="utf-8")
        else:
            aside.write_bytes(content)
        self._files.append((aside, path))

    def remove_file(self, path: Path) -> None:
        """A file the unit's change does away with (a purged raw file): removed only
        when the unit commits."""
        self._files.append((None, path))

    def commit(self) -> None:
        """Commit and put the unit's files in place, Ctrl-C held until both are done."""
        with deferred():
            end(self.con, commit=True)
            note_commit()  # a change the command made (a sign-in's entry is not one)
            while self._files:  # each placed file leaves the list; a failure leaves
                aside, path = self._files[0]  # the rest for abandon_files
                if aside is None:
                    path.unlink(missing_ok=True)
                else:
                    _put_in_place(aside, path)
                self._files.pop(0)

    def abandon_files(self) -> None:
        """Remove the files of a unit that did not commit."""
        files, self._files = self._files, []
        for aside, _path in files:
            if aside is not None:
                with suppress(OSError):
                    aside.unlink()

    def step(self, *, commit: bool = True) -> None:
        """Keep (or undo) what the unit did so far and go on in a new transaction:
        a job whose parts must each stand on their own (a submission's receipt, then
        its load). Afterwards the unit may hand the file back again."""
        if commit:
            self.commit()
        else:
            end(self.con, commit=False)
            self.abandon_files()
        begin(self.con)
        self.recorded = 0
        if commit:
            self.kept.clear()
        else:
            # disclosures made in the undone step happened all the same
            entries, self.kept = self.kept, []
            for entry in entries:  # appending keeps each again while the unit runs
                self._append(entry, self.con)

    def actor(self) -> Actor:
        """The signed-in principal; a session without one may not change anything,
        except while a new warehouse has no user yet (see :class:`SetupActor`)."""
        if self.principal is None and self.setup:
            return SetupActor()
        if self.principal is None:
            raise AuthenticationFailed(
                "sign in first: with your API token, or your user id and password."
            )
        return self.principal

    def require(
        self,
        operation: str,
        what: str,
        *,
        partner: str | None = None,
        action: str,
        providers: tuple[str, ...] = (),
    ) -> Actor:
        """The principal, if it may do ``operation`` (a role operation such as
        ``administer`` or ``upload``); ``partner`` limits a non-steward to its own
        partner. A refusal is audited, as ``action`` (the kind of write refused, the
        action its allowed entry would have), and raised as :class:`Forbidden`."""
        who = self.actor()
        why = who.lapsed(self.today())
        if why is None and not who.may(operation):
            role = getattr(who, "role", "")
            why = f"{who.user_id} ({role}) may not {operation.replace('_', ' ')}"
        if (
            why is None
            and partner is not None
            and who.partner_id != partner
            and not who.is_steward
        ):
            why = f"{who.user_id} acts only for {who.partner_id}"
        if why:
            self.denials.append(
                AuditEntry(
                    action,
                    who.user_id,
                    decision="deny",
                    reason=why,
                    actor_partner=who.partner_id,
                    purpose=self.purpose,
                    providers=providers or ((partner,) if partner else ()),
                    what=what,
                )
            )
            raise Forbidden(f"{what}: {why}.")
        return who

    def record(self, action: str, what: str, **fields: Any) -> int:
        """Write the audit entry of a change, in the session's transaction; returns
        its sequence number."""
        who = self.actor()
        fields.setdefault("actor_partner", who.partner_id)
        if self.purpose is not None:
            fields.setdefault("purpose", self.purpose)
        seq = self._append(
            AuditEntry(action, who.user_id, what=what, **fields), self.con
        )
        self.recorded += 1
        return seq

    def append(self, entry: AuditEntry) -> int:
        """Write a prepared audit entry in the session's transaction."""
        seq = self._append(entry, self.con)
        self.recorded += 1
        return seq
