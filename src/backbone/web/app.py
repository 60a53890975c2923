"""The web door: pages rendered on the server, on the same stage methods as the CLI.

A page parses the request, opens the warehouse for that request only (so the CLI
and other processes get in between requests), calls one stage method and renders
its result. Roles are never checked here: the stage refuses (403) what the
agreements do not allow and writes the audit entry. Every form carries the
session's CSRF token; every response carries a strict Content-Security-Policy (no
inline script, nothing from elsewhere) and is never cached.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from backbone.errors import (
    AuthenticationFailed,
    BackboneError,
    Conflict,
    Forbidden,
    NotFoundError,
    UserError,
    WarehouseError,
)
from backbone.governance.principals import Principal, Principals
from backbone.warehouse import Warehouse
from backbone.web.sessions import SessionStore, SignInThrottle, WebSession

__all__ = ["create_app"]

COOKIE = "backbone_session"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_log = logging.getLogger("backbone.web")


class _SignInNeeded(Exception):
    """The request needs a signed-in user (answered by a redirect to sign in)."""


def _package_folder(name: str) -> Path:
    return Path(str(resources.files("backbone.web") / name))


def create_app(warehouse: Path) -> FastAPI:
    """The site for the warehouse at ``warehouse``."""
    with Warehouse.open(warehouse, read_only=True) as wh:  # a warehouse, or say so
        settings = wh.settings
        name = wh.info().name
    app = FastAPI(
        title=f"Backbone: {name}", docs_url=None, redoc_url=None, openapi_url=None
    )
    templates = Jinja2Templates(directory=str(_package_folder("templates")))
    sessions = SessionStore(int(settings["web.session_idle_minutes"]))
    throttle = SignInThrottle(
        int(settings["web.sign_in_failures_before_lockout"]),
        int(settings["web.lockout_minutes"]),
    )
    # one request at a time holds the warehouse file in this process; other
    # processes (the CLI) get it between requests
    holding = threading.Lock()
    app.mount("/static", StaticFiles(directory=_package_folder("static")), "static")

    @contextmanager
    def opened() -> Iterator[Warehouse]:
        with holding, Warehouse.open(warehouse) as wh:
            yield wh

    def session_of(request: Request) -> WebSession | None:
        return sessions.get(request.cookies.get(COOKIE))

    def signed_in(request: Request, wh: Warehouse) -> tuple[WebSession, Principal]:
        """The request's session and its user, looked up again: a disabled or
        lapsed user's session ends here."""
        session = session_of(request)
        if session is None or session.user_id is None:
            raise _SignInNeeded
        try:
            principal = wh.users.current(session.user_id)
        except AuthenticationFailed:
            principal = None
        if principal is None or principal.lapsed(wh.today()):
            sessions.end(session.token)
            raise _SignInNeeded
        return session, principal

    def page(
        request: Request,
        template: str,
        status: int = 200,
        session: WebSession | None = None,
        principal: Principal | None = None,
        **context: Any,
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            template,
            {
                "site": name,
                "csrf": session.csrf if session else "",
                "me": principal,
                **context,
            },
            status_code=status,
        )

    async def checked_form(request: Request, session: WebSession) -> FormData:
        form = await request.form()
        sent = form.get("csrf")
        if not session.csrf_matches(sent if isinstance(sent, str) else None):
            raise Forbidden(
                "the form is out of date or did not come from this site; "
                "reload the page and try again."
            )
        return form

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(_SignInNeeded)
    async def sign_in_needed(request: Request, _exc: _SignInNeeded) -> Response:
        return RedirectResponse("/sign-in", status_code=303)

    @app.exception_handler(BackboneError)
    async def refused(request: Request, exc: BackboneError) -> Response:
        status = 400
        if isinstance(exc, AuthenticationFailed):
            status = 401
        elif isinstance(exc, Forbidden):
            status = 403
        elif isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, WarehouseError):
            status = 503
        return page(
            request,
            "error.html",
            status,
            session_of(request),
            message=str(exc),
            status_code=status,
        )

    @app.exception_handler(Exception)
    async def broken(request: Request, exc: Exception) -> Response:
        _log.exception("unexpected error on %s", request.url.path)
        response = page(
            request,
            "error.html",
            500,
            message="Something went wrong on the server; nothing was changed by "
            "this page. The steward can find the details in the server's log.",
            status_code=500,
        )
        # outside the middleware: the headers are put on here
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-store"
        return response

    def error_page(request: Request, status: int, message: str) -> Response:
        return page(request, "error.html", status, message=message, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, _exc: Exception) -> Response:
        return error_page(request, 404, "No such page.")

    @app.exception_handler(405)
    async def wrong_method(request: Request, _exc: Exception) -> Response:
        return error_page(request, 405, "That page cannot be used that way.")

    @app.exception_handler(404)
    async def missing(request: Request, _exc: Exception) -> Response:
        return error_page(request, 404, "No such page.")

    # --- signing in and out -----------------------------------------------------

    @app.get("/")
    def home_redirect(request: Request) -> Response:
        session = session_of(request)
        target = "/home" if session and session.user_id else "/sign-in"
        return RedirectResponse(target, status_code=303)

    @app.get("/sign-in")
    def sign_in_form(request: Request) -> Response:
        session = session_of(request) or sessions.new()
        response = page(request, "sign_in.html", session=session, failed=None)
        _set_cookie(request, response, session)
        return response

    def throttled(
        counter: str, user_id: str, check: Callable[[Warehouse], Principal]
    ) -> Principal:
        """``check`` a sign-in step unless the throttle says wait (refused, and
        audited, without looking at what was entered); count its failures under
        ``counter`` (the password's and the code's apart, so that a right password
        does not wipe out wrong codes)."""
        key = f"{counter}:{user_id}"
        wait = throttle.wait_seconds(key)
        with opened() as wh:
            if wait > 0:
                raise wh.users.refuse_sign_in(
                    user_id,
                    f"too many failed sign-ins; try again in {int(wait) + 1} s.",
                )
            try:
                principal = check(wh)
            except (AuthenticationFailed, UserError):
                throttle.failed(key)
                raise
        throttle.succeeded(key)
        return principal

    def password_step(user_id: str, password: str) -> tuple[Principal, bool, bool]:
        principal = throttled(
            "password", user_id, lambda wh: wh.users.sign_in(user_id, password)
        )
        with opened() as wh:
            return (
                principal,
                wh.second_factor_required(principal),
                wh.users.has_second_factor(principal.user_id),
            )

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        session = session_of(request)
        if session is None:  # no form of ours was shown: show it
            return RedirectResponse("/sign-in", status_code=303)
        form = await checked_form(request, session)
        # whatever this session was in the middle of ends here, with its token
        sessions.end(session.token)
        session = sessions.new()
        user_id = str(form.get("user") or "").strip()
        password = str(form.get("password") or "")
        try:
            principal, needs_code, has_code = await run_in_threadpool(
                password_step, user_id, password
            )
        except AuthenticationFailed as exc:
            refused = page(
                request, "sign_in.html", 401, session=session, failed=str(exc)
            )
            _set_cookie(request, refused, session)
            return refused
        if not needs_code:
            return finish(request, session, principal.user_id)
        session.pending_user = principal.user_id
        if has_code:
            response = RedirectResponse("/sign-in/code", status_code=303)
        else:
            session.pending_secret = Principals.new_second_factor_secret()
            response = RedirectResponse("/sign-in/setup", status_code=303)
        _set_cookie(request, response, session)
        return response

    def finish(request: Request, session: WebSession, user_id: str) -> Response:
        sessions.end(session.token)  # a new token once signed in (no fixation)
        fresh = sessions.new(user_id)
        response = RedirectResponse("/home", status_code=303)
        _set_cookie(request, response, fresh)
        return response

    def pending(request: Request) -> WebSession:
        session = session_of(request)
        if session is None or session.pending_user is None:
            raise _SignInNeeded
        return session

    @app.get("/sign-in/code")
    def code_form(request: Request) -> Response:
        return page(request, "sign_in_code.html", session=pending(request), failed=None)

    @app.post("/sign-in/code")
    async def code(request: Request) -> Response:
        session = pending(request)
        form = await checked_form(request, session)
        user_id = str(session.pending_user)
        entered = str(form.get("code") or "")
        try:
            await run_in_threadpool(
                throttled,
                "code",
                user_id,
                lambda wh: wh.users.check_second_factor(user_id, entered),
            )
        except AuthenticationFailed as exc:
            return page(
                request, "sign_in_code.html", 401, session=session, failed=str(exc)
            )
        return finish(request, session, user_id)

    @app.get("/sign-in/setup")
    def setup_form(request: Request) -> Response:
        session = pending(request)
        if session.pending_secret is None:
            raise _SignInNeeded
        return page(
            request,
            "sign_in_setup.html",
            session=session,
            failed=None,
            secret=session.pending_secret,
            qr=_qr_data_uri(session.pending_secret, str(session.pending_user), name),
        )

    @app.post("/sign-in/setup")
    async def setup(request: Request) -> Response:
        session = pending(request)
        form = await checked_form(request, session)
        user_id, secret = str(session.pending_user), session.pending_secret
        if secret is None:
            raise _SignInNeeded
        entered = str(form.get("code") or "")

        def set_up(wh: Warehouse) -> Principal:
            me = wh.users.current(user_id)
            with wh.session(me) as s:  # refused if the user has one already
                wh.users.set_second_factor(s, user_id, secret, entered)
            return wh.users.check_second_factor(user_id, entered)

        try:
            await run_in_threadpool(throttled, "code", user_id, set_up)
        except (UserError, AuthenticationFailed) as exc:
            return page(
                request,
                "sign_in_setup.html",
                401,
                session=session,
                failed=str(exc),
                secret=secret,
                qr=_qr_data_uri(secret, user_id, name),
            )
        return finish(request, session, user_id)

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        session = session_of(request)
        if session is not None:
            await checked_form(request, session)
            sessions.end(session.token)
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # --- pages ------------------------------------------------------------------

    def shown(
        request: Request,
        template: str,
        read: Callable[[Warehouse, Principal], dict[str, Any]],
    ) -> Response:
        """A page: the warehouse opened for the request, its user found again,
        ``read`` (one stage method) for what the template shows."""
        with opened() as wh:
            session, me = signed_in(request, wh)
            context = read(wh, me)
        return page(request, template, session=session, principal=me, **context)

    @app.get("/home")
    def home(request: Request) -> Response:
        return shown(
            request,
            "home.html",
            lambda wh, me: {"partner": wh.partners.get(me.partner_id)},
        )

    @app.get("/dashboard")
    def dashboard(request: Request) -> Response:
        return shown(
            request,
            "dashboard.html",
            lambda wh, me: {"board": wh.dashboard(wh.access(me, "data_quality"))},
        )

    @app.get("/agreements")
    def agreements(request: Request) -> Response:
        return shown(
            request,
            "agreements.html",
            lambda wh, me: {
                "versions": wh.agreements_for(wh.access(me, "data_quality"))
            },
        )

    @app.get("/agreements/{agreement_id}")
    def agreement(request: Request, agreement_id: str) -> Response:
        return shown(
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
        with opened() as wh:
            session, me = signed_in(request, wh)
        form = await checked_form(request, session)
        party = str(form.get("party") or me.partner_id)
        title = str(form.get("title") or "") or None

        def approved() -> None:
            with opened() as wh:
                _session, me = signed_in(request, wh)
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
        return shown(
            request,
            "submissions.html",
            lambda wh, me: {
                "submissions": wh.ingest.list_for(wh.access(me, "data_quality"))
            },
        )

    @app.get("/submissions/{submission_id}")
    def submission(request: Request, submission_id: int) -> Response:
        return shown(
            request,
            "submission.html",
            lambda wh, me: {
                "report": wh.ingest.report(submission_id, wh.access(me, "data_quality"))
            },
        )

    @app.get("/submissions/{submission_id}/quarantine.csv")
    def quarantine(request: Request, submission_id: int) -> Response:
        with opened() as wh:
            _session, me = signed_in(request, wh)
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
        return shown(
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
        session = session_of(request)
        if session is None or session.user_id is None:
            raise _SignInNeeded
        form = await checked_form(request, session)
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            raise UserError("choose a file to send.")
        upload: UploadFile = sent

        def send() -> Response:  # away from the event loop: other pages go on
            with tempfile.TemporaryDirectory(prefix="backbone-upload-") as folder:
                with opened() as wh:
                    _session, me = signed_in(request, wh)
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
                with opened() as wh:
                    session, me = signed_in(request, wh)
                    with wh.session(me) as s:
                        results = wh.ingest.submit(s, partner, feed, [path], mode=mode)
                    feeds = wh.feeds.list(me.partner_id)
            return page(
                request,
                "upload.html",
                session=session,
                principal=me,
                feeds=feeds,
                results=results,
            )

        return await run_in_threadpool(send)

    return app


def _set_cookie(request: Request, response: Response, session: WebSession) -> None:
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _qr_data_uri(secret: str, user_id: str, site: str) -> str:
    """The secret as a QR code an authenticator app scans, drawn here (SVG)."""
    import pyotp
    import segno

    uri = pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=site)
    return str(segno.make(uri, error="m").svg_data_uri(scale=5))
