"""Long jobs started from the site or the API (link, indicators compute, evaluate, the
scorecard), run as the CLI's own commands in processes of their own, so that a
page never waits on one: the server keeps answering while a job computes, and the
job takes the warehouse file from the server the way any command does (it leaves a
waiting note; the server hands the file over between requests).

A job runs as the user who started it, under an API token issued for it (audited)
and revoked when it ends; the command's stage authorizes and audits as it does at
a terminal, so a user whose role may not link sees the stage's refusal as the
job's outcome. Progress comes from the command's progress lines on stderr.
Jobs live in the server process: a restart forgets finished ones (their results
are in the warehouse), and stops running ones (their unit of work rolls back).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backbone import waiting
from backbone.errors import Conflict, NotFoundError, UserError

__all__ = ["JOB_KINDS", "Job", "JobKind", "Jobs"]

_log = logging.getLogger("backbone.serving")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KEEP_LINES = 200
WAITING = "waiting for its turn at the warehouse"
RUNNING_AT_ONCE = 2


@dataclass(frozen=True)
class JobKind:
    title: str
    command: tuple[str, ...]
    needs_initiative: bool = False


JOB_KINDS: dict[str, JobKind] = {
    "link": JobKind("Link partner records to persons", ("link",)),
    "indicators": JobKind(
        "Compute the early-warning indicators", ("indicators", "compute")
    ),
    "evaluate": JobKind(
        "Evaluate an initiative's outcomes",
        ("outcomes", "evaluate"),
        needs_initiative=True,
    ),
    "scorecard": JobKind(
        "Release the shared-measurement scorecard", ("outcomes", "scorecard")
    ),
}


@dataclass
class Job:
    job_id: int
    kind: str
    title: str
    user_id: str
    token_id: str
    started: datetime
    state: str = "running"  # running, done, failed
    finished: datetime | None = None
    progress: deque[str] = field(default_factory=lambda: deque(maxlen=KEEP_LINES))
    output: deque[str] = field(default_factory=lambda: deque(maxlen=KEEP_LINES))
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=KEEP_LINES))
    """what else the command said on stderr: waits, and why it failed"""

    @property
    def done(self) -> bool:
        return self.state != "running"

    @property
    def latest(self) -> str:
        return self.progress[-1] if self.progress else "starting"


class Jobs:
    """The server's jobs. ``ended(job)`` is called in the job's thread once its
    process has exited (the server revokes the job's token there)."""

    def __init__(self, warehouse: Path, ended: Callable[[Job], None]) -> None:
        self.warehouse = warehouse
        self._ended = ended
        self._jobs: dict[int, Job] = {}
        self._processes: dict[int, subprocess.Popen[str]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._followers: list[threading.Thread] = []

    def start(
        self,
        kind: str,
        user_id: str,
        token: str,
        token_id: str,
        arguments: Sequence[str] = (),
    ) -> Job:
        spec = self.check_kind(kind)
        with self._lock:
            self.check_room()
            job = Job(
                next(self._ids),
                kind,
                spec.title,
                user_id,
                token_id,
                datetime.now(UTC),
            )
            env = {
                k: v
                for k, v in os.environ.items()
                # the job signs in with its own token, on this folder
                if k not in ("BACKBONE_USER", "BACKBONE_PASSWORD", "BACKBONE_SERVER")
            }
            env.update(
                {
                    "BACKBONE_TOKEN": token,  # in the environment, never in `ps`
                    waiting.PROGRESS_LINES: "1",
                    "COLUMNS": "120",
                    "NO_COLOR": "1",
                }
            )
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "backbone",
                    *spec.command,
                    "--warehouse",
                    str(self.warehouse),
                    *arguments,  # last: they may start with "--"
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
            )
            self._jobs[job.job_id] = job
            self._processes[job.job_id] = process
        follower = threading.Thread(
            target=self._follow, args=(job, process), daemon=True
        )
        self._followers.append(follower)
        follower.start()
        return job

    @staticmethod
    def check_kind(kind: str) -> JobKind:
        spec = JOB_KINDS.get(kind)
        if spec is None:
            raise UserError(
                f"there is no job {kind!r} to start; start one of "
                f"{', '.join(JOB_KINDS)}."
            )
        return spec

    def check_room(self) -> None:
        """Refuse a job while as many as may run at once are running."""
        if sum(not j.done for j in self._jobs.values()) >= RUNNING_AT_ONCE:
            raise Conflict(
                f"{RUNNING_AT_ONCE} jobs are running; start this one when one "
                "of them has finished."
            )

    def _follow(self, job: Job, process: subprocess.Popen[str]) -> None:
        def read_errors() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                text = _ANSI.sub("", line.rstrip())
                if text.startswith(waiting.PROGRESS_PREFIX):
                    job.progress.append(text[len(waiting.PROGRESS_PREFIX) :])
                elif text.startswith("Waiting for the warehouse"):
                    # the site hands the file over between pages: a step, not news
                    if job.latest != WAITING:
                        job.progress.append(WAITING)
                elif text.strip() and text.strip() != "...":
                    job.messages.append(text)

        reader = threading.Thread(target=read_errors, daemon=True)
        reader.start()
        assert process.stdout is not None
        for line in process.stdout:
            text = _ANSI.sub("", line.rstrip())
            if text.strip():
                job.output.append(text)
        code = process.wait()
        reader.join(timeout=5)
        job.finished = datetime.now(UTC)
        job.state = "done" if code == 0 else "failed"
        try:
            self._ended(job)
        except Exception:  # the token expires by itself within a day
            _log.exception("could not end job %s cleanly", job.job_id)

    def get(self, job_id: int, user_id: str) -> Job:
        """A job of ``user_id``'s (another's is not found: jobs are their own)."""
        job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            raise NotFoundError(f"there is no job {job_id} of yours.")
        return job

    def of(self, user_id: str) -> list[Job]:
        return sorted(
            (j for j in self._jobs.values() if j.user_id == user_id),
            key=lambda j: -j.job_id,
        )

    def stop_all(self) -> None:
        """At shutdown: running jobs are stopped (their unit of work rolls back)."""
        for job_id, process in list(self._processes.items()):
            if not self._jobs[job_id].done and process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for follower in self._followers:  # each revokes its job's token
            follower.join(timeout=20)
