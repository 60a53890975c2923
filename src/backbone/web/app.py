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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from backbone.governance.throttle import address_source
from backbone.serving import Serving
from backbone.warehouse import Warehouse
from backbone.web.door import COOKIE, Door, SignInNeeded
from backbone.web.pages import PAGE_MODULES
from backbone.web.sessions import SessionStore, WebSession

__all__ = ["create_app"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_log = logging.getLogger("backbone.web")


def _package_folder(name: str) -> Path:
    return Path(str(resources.files("backbone.web") / name))


def create_app(warehouse: Path, serving: Serving | None = None) -> FastAPI:
    """The site for the warehouse at ``warehouse`` (sharing ``serving`` with the
    API when both are served)."""
    with Warehouse.open(warehouse, read_only=True) as wh:  # a warehouse, or say so
        settings = wh.settings
        name = str(wh.settings["warehouse.name"])
    templates = Jinja2Templates(directory=str(_package_folder("templates")))
    sessions = SessionStore(int(settings["web.session_idle_minutes"]))
    door = Door(serving or Serving(warehouse), name, templates, sessions)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        door.close()  # jobs stopped, the file closed cleanly

    app = FastAPI(
        title=f"Backbone: {name}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=_package_folder("static")), "static")
    opened, session_of = door.opened, door.session_of
    page, checked_form, error_page = door.page, door.checked_form, door.error_page

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _exc: SignInNeeded) -> Response:
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
        message = str(exc)
        if isinstance(exc, WarehouseError):
            # the details (the folder, the command holding it) are the steward's
            status = 503
            _log.warning("%s: %s", request.url.path, exc)
            message = (
                "The warehouse is busy with other work (or being looked after) and "
                "could not answer now; nothing was changed. Try again in a minute."
            )
        return page(
            request,
            "error.html",
            status,
            session_of(request),
            message=message,
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

    def password_step(
        user_id: str, password: str, source: str
    ) -> tuple[Principal, bool, bool]:
        # throttled in the warehouse (by user and by address, shared with every door)
        with opened() as wh:
            principal = wh.users.sign_in(user_id, password, source=source)
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
                password_step, user_id, password, _source(request)
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
            raise SignInNeeded
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
        source = _source(request)

        def check(wh: Warehouse) -> Principal:
            return wh.users.check_second_factor(user_id, entered, source=source)

        try:
            await run_in_threadpool(_in, opened, check)
        except AuthenticationFailed as exc:
            return page(
                request, "sign_in_code.html", 401, session=session, failed=str(exc)
            )
        return finish(request, session, user_id)

    @app.get("/sign-in/setup")
    def setup_form(request: Request) -> Response:
        session = pending(request)
        if session.pending_secret is None:
            raise SignInNeeded
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
            raise SignInNeeded
        entered = str(form.get("code") or "")

        def set_up(wh: Warehouse) -> Principal:
            me = wh.users.current(user_id)
            with wh.session(me) as s:  # refused if the user has one already
                wh.users.set_second_factor(s, user_id, secret, entered)
            return wh.users.check_second_factor(user_id, entered, source=source)

        source = _source(request)
        try:
            await run_in_threadpool(_in, opened, set_up)
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

    for module in PAGE_MODULES:
        module.register(app, door)

    return app


class SecurityHeaders:
    """Every response's security headers (the Content-Security-Policy, no
    framing, no sniffing, no referrer; no-store but for the static files), as
    plain ASGI: it wraps each response's start and nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


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


def _source(request: Request) -> str:
    """Where a sign-in came from, for the throttle: the peer's address (behind a
    reverse proxy, the proxy's: README, Security)."""
    return address_source(request.client.host if request.client else None)


def _in(opened: Callable[[], Any], act: Callable[[Warehouse], Principal]) -> Principal:
    with opened() as wh:
        return act(wh)
