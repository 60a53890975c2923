"""What a server process holds for its doors (the web site and the API alike):
the warehouse kept open between requests, costly releases prepared and kept for
their audience, and long jobs run as the CLI's own commands. Both doors share
one :class:`Serving`, so the audit chain has one head and a job started on one
door is followed on the other."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from backbone.governance.principals import Principal
from backbone.measures.shelf import Shelf
from backbone.serving.jobs import JOB_KINDS, Job, JobKind, Jobs
from backbone.serving.keeping import Keeper, Preparer, StillPreparing, Ticket
from backbone.session import process_alive

__all__ = [
    "JOB_KINDS",
    "Job",
    "JobKind",
    "Jobs",
    "Keeper",
    "Preparer",
    "Serving",
    "StillPreparing",
    "Ticket",
    "sweep_uploads",
    "upload_folder",
]


UPLOADS = "upload-"


def upload_folder(warehouse: Path) -> Path:
    """A new folder for one upload, under the warehouse's tmp/ (named for this
    process, so a later server sweeps what a killed one left)."""
    return warehouse / "tmp" / f"{UPLOADS}{os.getpid()}-{secrets.token_hex(8)}"


def sweep_uploads(warehouse: Path) -> None:
    """Remove the upload folders of server processes that are gone (killed
    mid-upload: a partner's file is kept nowhere but in raw/, once loaded)."""
    for folder in (warehouse / "tmp").glob(f"{UPLOADS}*"):
        pid = folder.name.removeprefix(UPLOADS).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class Serving:
    """One server's keeper, shelf, preparer and jobs."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        sweep_uploads(warehouse)
        self.keeper = Keeper(warehouse)
        self.shelf = Shelf()
        self.preparer = Preparer(self.keeper, self.shelf)
        self.jobs = Jobs(warehouse, self._job_ended)
        self.closing: list[Callable[[], None]] = []
        """what the doors need done when the server stops"""

    def _job_ended(self, job: Job) -> None:
        """The job's token revoked by its user, so it cannot be used again."""
        with self.keeper.opened() as wh:
            me = wh.users.current(job.user_id)
            with wh.session(me) as s:
                wh.users.revoke_token(s, job.token_id)

    def start_job(
        self,
        me: Principal,
        kind: str,
        arguments: Sequence[str] = (),
        *,
        after_second_factor: bool = False,
    ) -> Job:
        """Start a job of ``kind`` as ``me``, under a one-day token issued for it
        (audited) and revoked when it ends; refused before any token is issued
        when there is no room for it."""
        self.jobs.check_kind(kind)
        self.jobs.check_room()
        with self.keeper.opened() as wh, wh.session(me) as s:
            issued = wh.users.issue_token(
                s,
                me.user_id,
                label=f"job: {kind}",
                days=1,
                after_second_factor=after_second_factor,
            )
        try:
            return self.jobs.start(
                kind, me.user_id, issued.token, issued.token_id, arguments
            )
        except BaseException:  # never started: its token goes at once
            with self.keeper.opened() as wh, wh.session(me) as s:
                wh.users.revoke_token(s, issued.token_id)
            raise

    def close(self) -> None:
        for done in self.closing:
            done()
        self.jobs.stop_all()
        self.preparer.close()
        self.keeper.close()
