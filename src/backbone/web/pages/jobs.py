"""Long jobs from the site: start one (link, indicators compute, evaluate, the
scorecard) and follow its progress on its page, which updates itself while the
job runs; the job runs as its own process (see :mod:`backbone.serving.jobs`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from backbone.errors import UserError
from backbone.governance.principals import Principal
from backbone.serving import JOB_KINDS, Job
from backbone.warehouse import Warehouse
from backbone.web.door import Column, Door, NavItem, SignInNeeded, Table

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

    jobs = door.serving.jobs

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
            with door.opened() as wh:
                _session, me = door.signed_in(request, wh)
            # the site asked its second factor wherever an agreement does
            return door.serving.start_job(me, kind, arguments, after_second_factor=True)

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
