"""Long jobs from the site: start one (link, indicators compute, evaluate, the
scorecard) and follow its progress on its page, which updates itself while the
job runs; the job runs as its own process (see :mod:`backbone.web.jobs`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from backbone.errors import UserError
from backbone.governance.principals import Principal
from backbone.warehouse import Warehouse
from backbone.web.door import Column, Door, NavItem, SignInNeeded, Table
from backbone.web.jobs import JOB_KINDS, Job, Jobs

NAV = (
    NavItem(
        "/jobs",
        "Jobs",
        "start a long job (linking, indicators, an evaluation, the scorecard) "
        "and follow its progress",
        lambda me: me.may("aggregate"),
        order=80,
    ),
)


def _jobs_table(jobs: list[Job]) -> Table:
    return Table(
        "jobs",
        (
            Column("job_id", "#", link="/jobs/{job_id}"),
            Column("title", "Job"),
            Column("started", "Started (UTC)"),
            Column("state", "State"),
            Column("latest", "Latest step"),
        ),
        [
            {
                "job_id": j.job_id,
                "title": j.title,
                "started": j.started.replace(tzinfo=None),
                "state": j.state,
                "latest": j.latest,
            }
            for j in jobs
        ],
        empty="You have started no job since the server started.",
    )


def register(app: FastAPI, door: Door) -> None:
    door.menu(*NAV)

    def ended(job: Job) -> None:
        """The job's token revoked by its user, so it cannot be used again."""
        with door.opened() as wh:
            me = wh.users.current(job.user_id)
            with wh.session(me) as s:
                wh.users.revoke_token(s, job.token_id)

    jobs = Jobs(door.warehouse, ended)
    door.closing.append(jobs.stop_all)

    def listing(wh: Warehouse, me: Principal) -> dict[str, Any]:
        return {
            "jobs": _jobs_table(jobs.of(me.user_id)),
            "kinds": JOB_KINDS,
            "initiatives": wh.initiatives_for(me),
        }

    @app.get("/jobs")
    def job_list(request: Request) -> Response:
        return door.shown(request, "jobs.html", listing)

    @app.post("/jobs")
    async def job_start(request: Request) -> Response:
        session = door.session_of(request)
        if session is None or session.user_id is None:
            raise SignInNeeded
        form = await door.checked_form(request, session)
        kind = str(form.get("kind") or "")
        arguments: list[str] = []
        if kind in JOB_KINDS and JOB_KINDS[kind].needs_initiative:
            initiative = str(form.get("initiative") or "").strip()
            if not initiative:
                raise UserError("choose the initiative to evaluate.")
            arguments = ["--", initiative]  # never read as an option

        def start() -> Job:
            if kind not in JOB_KINDS:
                raise UserError(f"there is no job {kind!r} to start.")
            jobs.check_room()  # before a token is issued for it
            with door.opened() as wh:
                _session, me = door.signed_in(request, wh)
                with wh.session(me) as s:
                    issued = wh.users.issue_token(
                        s, me.user_id, label=f"web job: {kind}", days=1
                    )
            try:
                return jobs.start(
                    kind, me.user_id, issued.token, issued.token_id, arguments
                )
            except BaseException:  # never started: its token goes at once
                with door.opened() as wh, wh.session(me) as s:
                    wh.users.revoke_token(s, issued.token_id)
                raise

        job = await run_in_threadpool(start)
        return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)

    @app.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: int) -> Response:
        return door.shown(
            request, "job.html", lambda wh, me: {"job": jobs.get(job_id, me.user_id)}
        )

    @app.get("/jobs/{job_id}/status")
    def job_status(request: Request, job_id: int) -> Response:
        """The part of the job's page that changes, for the page to poll."""
        return door.shown(
            request,
            "_job_status.html",
            lambda wh, me: {"job": jobs.get(job_id, me.user_id)},
        )
