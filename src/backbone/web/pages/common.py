"""The pages every role starts from: home, the steward's dashboard, agreements
with their versions and approvals, submissions with their reports, quarantine and
resubmission, and uploading a file for a feed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from backbone.errors import UserError
from backbone.governance.principals import Principal
from backbone.ingest.submit import Submission
from backbone.serving import upload_folder
from backbone.warehouse import Warehouse
from backbone.web.door import Column, Door, NavItem, SignInNeeded, Table

NAV = (
    NavItem("/home", "Home", "where you start", lambda me: True, order=0),
    NavItem(
        "/dashboard",
        "Dashboard",
        "the partnership at a glance: agreements, feeds, submissions, the review "
        "queue, the audit chain",
        lambda me: me.is_steward,
        order=1,
    ),
    NavItem(
        "/agreements",
        "Agreements",
        "every version your organization is a party to, what each changed, and "
        "the versions waiting for approval",
        lambda me: True,
        order=10,
    ),
    NavItem(
        "/submissions",
        "Submissions",
        "files sent, their validation reports and quarantine",
        lambda me: me.is_steward or me.may("upload"),
        order=20,
    ),
    NavItem(
        "/upload",
        "Upload",
        "send a file for one of your feeds",
        lambda me: me.may("upload") and not me.is_steward,
        order=21,
    ),
)


def submissions_table(rows: list[Submission]) -> Table:
    return Table(
        "submissions",
        (
            Column("submission_id", "#", link="/submissions/{submission_id}"),
            Column("partner_id", "Partner"),
            Column("feed", "Feed"),
            Column("file_name", "File"),
            Column("received_at", "Received"),
            Column("status", "Status"),
            Column("rows_read", "Read", numeric=True),
            Column("rows_loaded", "Loaded", numeric=True),
            Column("rows_quarantined", "Quarantined", numeric=True),
        ),
        [
            {
                "submission_id": r.submission_id,
                "partner_id": r.partner_id,
                "feed": r.feed,
                "file_name": r.file_name,
                "received_at": r.received_at,
                "status": r.status,
                "rows_read": r.rows_read,
                "rows_loaded": r.rows_loaded,
                "rows_quarantined": r.rows_quarantined,
            }
            for r in rows
        ],
        empty="No submissions yet.",
    )


def register(app: FastAPI, door: Door) -> None:
    door.menu(*NAV)

    @app.get("/preparing/{ticket_id}")
    def preparing(request: Request, ticket_id: int) -> Response:
        """Whether what a page waits for is ready ("done") or not ("running")."""
        with door.opened() as wh:
            _session, me = door.signed_in(request, wh)
        ticket = door.preparer.ticket(ticket_id, me)
        return PlainTextResponse("done" if ticket.done else "running")

    @app.get("/home")
    def home(request: Request) -> Response:
        return door.shown(
            request,
            "home.html",
            lambda wh, me: {"partner": wh.partners.get(me.partner_id)},
        )

    @app.get("/dashboard")
    def dashboard(request: Request) -> Response:
        return door.shown(
            request,
            "dashboard.html",
            lambda wh, me: _dashboard(wh.dashboard(wh.access(me, "data_quality"))),
        )

    @app.get("/agreements")
    def agreements(request: Request) -> Response:
        return door.shown(
            request,
            "agreements.html",
            lambda wh, me: {
                "versions": wh.agreements_for(wh.access(me, "data_quality"))
            },
        )

    @app.get("/agreements/{agreement_id}")
    def agreement(request: Request, agreement_id: str) -> Response:
        return door.shown(
            request,
            "agreement.html",
            lambda wh, me: {
                "agreement_id": agreement_id,
                "history": wh.agreement_history(
                    wh.access(me, "data_quality"), agreement_id
                ),
            },
        )

    @app.post("/agreements/{agreement_id}/{version}/approve")
    async def approve(request: Request, agreement_id: str, version: int) -> Response:
        session = door.session_of(request)
        if session is None or session.user_id is None:
            raise SignInNeeded
        form = await door.checked_form(request, session)
        title = str(form.get("title") or "") or None

        def approved() -> None:
            with door.opened() as wh:
                _session, me = door.signed_in(request, wh)
                party = str(form.get("party") or me.partner_id)
                # the stage decides who may approve for whom, and audits
                wh.agreement_history(wh.access(me, "data_quality"), agreement_id)
                with wh.session(me) as s:
                    wh.agreements.approve(
                        s,
                        agreement_id,
                        party,
                        on=wh.today(),
                        version=version,
                        title=title,
                    )

        await run_in_threadpool(approved)
        return RedirectResponse(f"/agreements/{agreement_id}", status_code=303)

    @app.get("/submissions")
    def submissions(request: Request) -> Response:
        return door.shown(
            request,
            "submissions.html",
            lambda wh, me: {
                "submissions": submissions_table(
                    wh.ingest.list_for(wh.access(me, "data_quality"))
                )
            },
        )

    @app.get("/submissions/{submission_id}")
    def submission(request: Request, submission_id: int) -> Response:
        return door.shown(
            request,
            "submission.html",
            lambda wh, me: {
                "report": wh.ingest.report(submission_id, wh.access(me, "data_quality"))
            },
        )

    @app.get("/submissions/{submission_id}/quarantine.csv")
    def quarantine(request: Request, submission_id: int) -> Response:
        with door.opened() as wh:
            _session, me = door.signed_in(request, wh)
            text = wh.ingest.quarantine_csv(
                submission_id,
                wh.access(me, "data_quality"),
                to="a download from the web site",
            )
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": "attachment; "
                f'filename="submission-{submission_id}-quarantine.csv"'
            },
        )

    @app.post("/submissions/{submission_id}/resubmit")
    async def resubmit(request: Request, submission_id: int) -> Response:
        """The fixed rows of a submission's quarantine, sent back under the
        original file's name and feed, added to what is loaded."""

        def target(wh: Warehouse, me: Principal) -> tuple[str, str, str]:
            report = wh.ingest.report(submission_id, wh.access(me, "data_quality"))
            return report.partner_id, report.feed, report.file_name

        return await submitted(request, target, mode="append")

    @app.get("/upload")
    def upload_form(request: Request) -> Response:
        return door.shown(
            request,
            "upload.html",
            lambda wh, me: {"feeds": wh.feeds.list(me.partner_id), "results": None},
        )

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        """A file for one of the signed-in partner's feeds."""
        return await submitted(request, None, mode=None)

    async def submitted(
        request: Request,
        target: Callable[[Warehouse, Principal], tuple[str, str, str]] | None,
        mode: str | None,
    ) -> Response:
        """Submit the form's file, written to disk as it arrives (never held
        whole in memory), under ``target``'s (partner, feed, file name), or else
        the signed-in user's partner, the form's feed and the file's own name;
        render the upload page with what became of it."""
        session = door.session_of(request)
        if session is None or session.user_id is None:
            raise SignInNeeded
        form = await door.checked_form(request, session)
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            raise UserError("choose a file to send.")
        upload: UploadFile = sent
        # the uploader confirmed a file far smaller than the period it replaces
        smaller = str(form.get("replace_smaller") or "") == "yes"

        def send() -> Response:  # away from the event loop: other pages go on
            folder = upload_folder(door.warehouse)  # swept if the server is killed
            folder.mkdir(parents=True, mode=0o700)
            try:
                with door.opened() as wh:
                    _session, me = door.signed_in(request, wh)
                    partner, feed, name = (
                        target(wh, me)
                        if target is not None
                        else (
                            me.partner_id,
                            str(form.get("feed") or ""),
                            str(upload.filename),
                        )
                    )
                path = Path(folder) / Path(name).name
                if path.name in ("", ".", ".."):
                    raise UserError("the file needs a name such as roster.csv.")
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                with door.opened() as wh:
                    session, me = door.signed_in(request, wh)
                    with wh.session(me) as s:
                        results = wh.ingest.submit(
                            s,
                            partner,
                            feed,
                            [path],
                            mode=mode,
                            replace_smaller=smaller,
                        )
                    feeds = wh.feeds.list(me.partner_id)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return door.page(
                request,
                "upload.html",
                session=session,
                principal=me,
                feeds=feeds,
                results=results,
            )

        return await run_in_threadpool(send)


def _dashboard(board: Any) -> dict[str, Any]:
    return {"board": board, "submissions": submissions_table(board.submissions)}
