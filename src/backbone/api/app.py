"""The REST API under ``/api/v1``: the questions of :mod:`backbone.api.questions`
as routes, a file upload per feed, long jobs, the OpenAPI document and its
interactive docs (served from this package: nothing from a CDN).

A door only: a route reads its Bearer token and parameters, calls one question
(the stage decides who may, and audits) and encodes the answer. Every error, on
every route, is one JSON envelope ``{"error": {"code", "message", "detail"}}``
with its status; never a traceback or SQL text.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import shutil
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from importlib import resources
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Body, Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backbone.api import codec
from backbone.api.questions import BY_NAME, QUESTIONS, FileAnswer, Question
from backbone.errors import (
    AuthenticationFailed,
    BackboneError,
    Conflict,
    Forbidden,
    NotFoundError,
    WarehouseError,
)
from backbone.governance.principals import Principal
from backbone.governance.throttle import address_source
from backbone.ingest.submit import SubmissionResult
from backbone.serving import JOB_KINDS, Job, Serving, Ticket, upload_folder
from backbone.version import __version__
from backbone.warehouse import Warehouse

__all__ = ["API_PREFIX", "create_api"]

API_PREFIX = "/api/v1"
_log = logging.getLogger("backbone.api")


class ApiError(Exception):
    """An error the API answers with its own status and code."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None):
        super().__init__(message)
        self.status, self.code, self.detail = status, code, detail


def envelope(status: int, code: str, message: str, detail: Any = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "detail": detail}},
        status_code=status,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


def _status_of(exc: BackboneError) -> tuple[int, str]:
    if isinstance(exc, AuthenticationFailed):
        return 401, "unauthenticated"
    if isinstance(exc, Forbidden):
        return 403, "forbidden"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, Conflict):
        return 409, "conflict"
    if isinstance(exc, WarehouseError):
        return 409, "busy"
    return 400, "bad_request"


PUBLIC = ("/openapi.json", "/docs")
UPLOAD_ROUTE = "/submissions"
SMALL_BODY = 64 * 1024  # a JSON body of parameters; only a file is larger


class Gate:
    """Every request to the API, before the routes: its token signed in (off the
    event loop; ``sign_in(token, source)`` gives the user id, or raises) before a byte of
    its body is read, and a body larger than its route takes refused (413): a
    file up to ``upload_limit``, streamed on, counted as it arrives; anything
    else up to :data:`SMALL_BODY`, read whole here first."""

    def __init__(
        self, app: ASGIApp, sign_in: Callable[[str, str], str], upload_limit: int
    ) -> None:
        self.app, self.sign_in, self.upload_limit = app, sign_in, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        root = str(scope.get("root_path", ""))
        route = path[len(root) :] if root and path.startswith(root) else path
        if not route.startswith(PUBLIC):
            refused = await self._signed_in(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        upload = route == UPLOAD_ROUTE
        limit = self.upload_limit if upload else SMALL_BODY
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        if upload:
            await self.app(scope, _counted(receive, limit), send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replayed() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replayed, send)

    async def _signed_in(self, scope: Scope) -> JSONResponse | None:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return envelope(401, "unauthenticated", NO_TOKEN)
        try:
            client = scope.get("client")
            source = address_source(client[0] if client else None)
            user_id = await anyio.to_thread.run_sync(
                self.sign_in, token.strip(), source
            )
        except BackboneError as exc:
            status, code = _status_of(exc)
            return envelope(status, code, BUSY if code == "busy" else str(exc))
        except Exception:  # logged; the client gets the envelope only
            _log.exception("signing in a token failed")
            return envelope(500, "internal", BROKEN)
        scope.setdefault("state", {})["user_id"] = user_id
        return None


def _counted(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ApiError(413, "too_large", _too_large_text(limit))
        return message

    return counted


NO_TOKEN = (
    "send your API token as `Authorization: Bearer <token>`; "
    "`backbone user token` issues one."
)
BUSY = (
    "the warehouse is busy with other work and could not answer now; nothing was "
    "changed. Try again in a minute."
)
BROKEN = (
    "something went wrong on the server; nothing was changed by this request. "
    "The steward can find the details in the server's log."
)


def _too_large_text(limit: int) -> str:
    return (
        f"the request is larger than this server takes ({limit:,} bytes); split "
        "the file by school year, or ask the steward to raise api.max_upload_bytes."
    )


def _too_large(limit: int) -> JSONResponse:
    return envelope(413, "too_large", _too_large_text(limit))


def _answer_response(question: Question, answer: Any) -> Response:
    if isinstance(answer, FileAnswer):
        return Response(
            answer.content,
            media_type=answer.media_type,
            headers={"Content-Disposition": f'attachment; filename="{answer.name}"'},
        )
    return JSONResponse(codec.encode(answer), status_code=question.status)


@dataclass(frozen=True)
class PreparingView:
    """An answer being prepared: ask the question again once it is ``done``."""

    ticket: int
    what: str
    done: bool
    failed: str | None
    """why it could not be made (asking again tries anew)"""


@dataclass(frozen=True)
class JobStart:
    kind: str
    """link, indicators, evaluate or scorecard"""
    initiative: str | None = None
    """the initiative an evaluation is of"""


@dataclass(frozen=True)
class JobView:
    """A long job: its state, its steps so far and what it said."""

    job_id: int
    kind: str
    title: str
    state: str
    """running, done or failed"""
    started: str
    finished: str | None
    progress: list[str]
    output: list[str]
    messages: list[str]


def _said(lines: Any, warehouse: FilePath) -> list[str]:
    """What a job's command said, up to any traceback (the server's log has it),
    with the warehouse's place on the disk and a busy warehouse's holder left out."""
    said: list[str] = []
    places = (str(warehouse.resolve()), str(warehouse))
    for line in lines:
        if line.startswith("Traceback"):
            said.append("(the job failed unexpectedly; the steward can find why)")
            break
        if "is held by" in line or "in use by" in line:
            said.append(BUSY)
            continue
        for place in places:
            line = line.replace(place + "/", "").replace(place, "the warehouse")
        said.append(line)
    return said


def _job_view(job: Job, warehouse: FilePath) -> JobView:
    return JobView(
        job.job_id,
        job.kind,
        job.title,
        job.state,
        job.started.isoformat(),
        job.finished.isoformat() if job.finished else None,
        list(job.progress),
        _said(job.output, warehouse),
        _said(job.messages, warehouse),
    )


def create_api(serving: Serving) -> FastAPI:
    """The API for the warehouse ``serving`` holds (mounted at ``/api/v1``)."""
    with Warehouse.open(serving.warehouse, read_only=True) as wh:
        name = str(wh.settings["warehouse.name"])
        limit = int(wh.settings["api.max_upload_bytes"])
    api = FastAPI(
        title=f"Backbone API: {name}",
        version=__version__,
        description=(
            "Backbone's data API. Send `Authorization: Bearer <token>` with every "
            "request (`backbone user token` issues one; it carries your role and "
            'expires). Every error is `{"error": {"code", "message", '
            '"detail"}}` with its HTTP status. Person-level reads and releases '
            "are decided by the agreements and recorded in the audit log."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        servers=[{"url": API_PREFIX}],
    )
    keeper = serving.keeper
    components: dict[str, Any] = {}

    def sign_in(token: str, source: str) -> str:
        """A token's user (the sign-in audited), where a token reaches beyond the
        folder: one issued with a password alone is refused where an agreement
        asks a second factor."""
        with keeper.opened() as wh:
            return wh.users.sign_in_token(
                token, second_factor_required=wh.second_factor_required, source=source
            ).user_id

    api.add_middleware(Gate, sign_in=sign_in, upload_limit=limit)

    def signed_in(request: Request) -> None:
        """Signed in by the :class:`Gate` (this only says so in the document)."""
        if getattr(request.state, "user_id", None) is None:
            raise ApiError(401, "unauthenticated", NO_TOKEN)

    authenticated = [Depends(signed_in)]

    def asked(request: Request, ask: Callable[[Warehouse, Principal], Any]) -> Any:
        with keeper.opened() as wh:
            me = wh.users.current(request.state.user_id)  # disabled meanwhile: out
            if me.lapsed(wh.today()):
                raise AuthenticationFailed(f"{me.user_id} may no longer sign in.")
            return ask(wh, me)

    # --- errors ----------------------------------------------------------------

    @api.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return envelope(exc.status, exc.code, str(exc), exc.detail)

    @api.exception_handler(BackboneError)
    async def refused(request: Request, exc: BackboneError) -> Response:
        status, code = _status_of(exc)
        message = str(exc)
        if code == "busy":  # the details (the folder, the command) are the steward's
            _log.warning("%s: %s", request.url.path, exc)
            message = BUSY
        return envelope(status, code, message)

    @api.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {
                "where": ".".join(str(part) for part in e.get("loc", ())),
                "problem": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        where = ", ".join(d["where"] for d in detail) or "the request"
        return envelope(
            422,
            "invalid",
            f"{where}: not as the API describes it (see /api/v1/docs).",
            detail,
        )

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return envelope(404, "not_found", "no such route; see /api/v1/docs.")
        if exc.status_code == 405:
            return envelope(
                405, "method_not_allowed", "that route cannot be used that way."
            )
        return envelope(exc.status_code, "error", str(exc.detail))

    @api.exception_handler(ClientDisconnect)
    async def gone(_request: Request, _exc: ClientDisconnect) -> Response:
        # the client left mid-request: nothing of it was kept, no one to answer
        return envelope(400, "disconnected", "the request ended before it was sent.")

    @api.exception_handler(Exception)
    async def broken(request: Request, _exc: Exception) -> Response:
        _log.exception("unexpected error on %s", request.url.path)
        return envelope(500, "internal", BROKEN)

    # --- the questions ---------------------------------------------------------

    for question in QUESTIONS:
        _route(api, question, asked, components, authenticated, serving)

    # --- submitting a file -----------------------------------------------------

    @api.post(
        "/submissions",
        tags=["submissions"],
        summary="Submit a file for a feed: validated, loaded, quarantined.",
        status_code=201,
        dependencies=authenticated,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["partner", "feed", "file"],
                            "properties": {
                                "partner": {"type": "string"},
                                "feed": {"type": "string"},
                                "mode": {
                                    "type": "string",
                                    "enum": ["replace-period", "append"],
                                },
                                "reprocess": {"type": "boolean"},
                                "replace_smaller": {"type": "boolean"},
                                "file": {"type": "string", "format": "binary"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    "description": "What became of the file.",
                    "content": {
                        "application/json": {
                            "schema": codec.schema_of(
                                list[SubmissionResult], components
                            )
                        }
                    },
                }
            },
        },
    )
    async def submit(request: Request) -> Response:
        form = await request.form(max_files=1, max_fields=10)
        try:
            return await _submitted(request, form)
        finally:
            await form.close()  # the spooled upload goes at once

    async def _submitted(request: Request, form: Any) -> Response:
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            raise ApiError(
                422, "invalid", "send the file as the multipart field `file`."
            )
        partner = str(form.get("partner") or "")
        feed = str(form.get("feed") or "")
        mode = str(form.get("mode") or "") or None
        reprocess = str(form.get("reprocess") or "").lower() in ("1", "true", "yes")
        smaller = str(form.get("replace_smaller") or "").lower() in ("1", "true", "yes")
        name = FilePath(str(sent.filename)).name
        if name in ("", ".", ".."):
            raise ApiError(422, "invalid", "the file needs a name such as roster.csv.")

        def send() -> list[SubmissionResult]:
            folder = upload_folder(serving.warehouse)
            try:
                folder.mkdir(parents=True, mode=0o700)
                path = folder / name
                with path.open("wb") as out:  # from the spooled upload, in pieces
                    shutil.copyfileobj(sent.file, out, 1 << 20)

                def load(wh: Warehouse, me: Principal) -> list[SubmissionResult]:
                    with wh.session(me) as s:
                        return wh.ingest.submit(
                            s,
                            partner,
                            feed,
                            [path],
                            mode=mode,
                            reprocess=reprocess,
                            replace_smaller=smaller,
                        )

                return typing.cast(list[SubmissionResult], asked(request, load))
            except WarehouseError:
                raise  # answered as busy, its details for the steward's log
            except BackboneError as exc:  # named as sent, not where it was kept
                status, code = _status_of(exc)
                text = str(exc).replace(str(folder) + "/", "").replace(str(folder), "")
                # a mapping or a setting is named from the warehouse, not the disk
                text = text.replace(str(serving.warehouse.resolve()) + "/", "")
                text = text.replace(str(serving.warehouse) + "/", "")
                raise ApiError(status, code, text) from None
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        results = await run_in_threadpool(send)
        return JSONResponse(codec.encode(results), status_code=201)

    # --- jobs ------------------------------------------------------------------

    jobs = serving.jobs

    @api.post(
        "/jobs",
        tags=["jobs"],
        summary="Start a long job (link, indicators, evaluate, scorecard) as "
        "yourself; follow it at /jobs/{job_id}.",
        status_code=202,
        responses={202: _schema(JobView, components)},
        dependencies=authenticated,
    )
    def job_start(request: Request, start: JobStart) -> Response:
        arguments: list[str] = []
        spec = jobs.check_kind(start.kind)
        if spec.needs_initiative:
            if not start.initiative:
                raise ApiError(
                    422, "invalid", f"a {start.kind} job needs `initiative`."
                )
            arguments = ["--", start.initiative]
        me = asked(request, lambda _wh, me: me)
        job = serving.start_job(me, start.kind, arguments)
        return JSONResponse(
            codec.encode(_job_view(job, serving.warehouse)),
            status_code=202,
            headers={"Location": f"{API_PREFIX}/jobs/{job.job_id}"},
        )

    @api.get(
        "/jobs",
        tags=["jobs"],
        summary="Your jobs since the server started, newest first.",
        dependencies=authenticated,
        responses={200: _schema(list[JobView], components)},
    )
    def job_list(request: Request) -> Response:
        me = asked(request, lambda _wh, me: me)
        return JSONResponse(
            codec.encode([_job_view(j, serving.warehouse) for j in jobs.of(me.user_id)])
        )

    @api.get(
        "/jobs/{job_id}",
        tags=["jobs"],
        summary="A job of yours: its state and steps.",
        dependencies=authenticated,
        responses={200: _schema(JobView, components)},
    )
    def job_show(request: Request, job_id: int) -> Response:
        me = asked(request, lambda _wh, me: me)
        return JSONResponse(
            codec.encode(_job_view(jobs.get(job_id, me.user_id), serving.warehouse))
        )

    @api.get(
        "/preparing/{ticket_id}",
        tags=["jobs"],
        summary="Whether an answer that was being prepared (202) is ready: when "
        "`done`, ask the first question again.",
        dependencies=authenticated,
        responses={200: _schema(PreparingView, components)},
    )
    def preparing(request: Request, ticket_id: int) -> Response:
        me = asked(request, lambda _wh, me: me)
        ticket = serving.preparer.ticket(ticket_id, me)
        failed = None
        if isinstance(ticket.error, WarehouseError):
            failed = BUSY
        elif isinstance(ticket.error, BackboneError):
            failed = str(ticket.error)
        elif ticket.error is not None:
            failed = BROKEN
        return JSONResponse(
            codec.encode(
                PreparingView(ticket.ticket_id, ticket.what, ticket.done, failed)
            )
        )

    # --- the document and its docs -------------------------------------------

    static = FilePath(str(resources.files("backbone.api") / "static"))
    # Swagger UI 5 (it reads OpenAPI 3.1), as the swagger-ui-py package ships it
    swagger = FilePath(str(resources.files("swagger_ui") / "static"))
    api.mount("/docs/swagger", StaticFiles(directory=swagger))
    api.mount("/docs/static", StaticFiles(directory=static))

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse((static / "docs.html").read_text("utf-8"))

    plain_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = plain_openapi()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(components)
            document["components"]["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `backbone user token`.",
                }
            }
            document["security"] = [{"bearer": []}]
            schemas["Error"] = ERROR_SCHEMA
            for path in document["paths"].values():
                for operation in path.values():
                    for status, text in ERROR_STATUSES.items():
                        operation.setdefault("responses", {})[status] = {
                            "description": text,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        }
            for fastapi_own in ("HTTPValidationError", "ValidationError"):
                schemas.pop(fastapi_own, None)
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    assert set(BY_NAME) == {q.name for q in QUESTIONS}
    assert JOB_KINDS
    return api


PREPARING_SCHEMA = {
    "type": "object",
    "properties": {
        "preparing": {
            "type": "object",
            "properties": {
                "ticket": {"type": "integer"},
                "what": {"type": "string"},
                "poll": {"type": "string"},
            },
        }
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "detail"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "detail": {},
            },
        }
    },
}
ERROR_STATUSES = {
    "400": "The request cannot be done as asked (the message says why).",
    "401": "No token, or a token that is unknown, expired or revoked.",
    "403": "The agreements or your role do not allow it (recorded).",
    "404": "No such thing, or none you may see.",
    "409": "The warehouse is busy, or the request conflicts with its state.",
    "413": "The request is larger than the server takes.",
    "422": "A parameter is missing or not of its type.",
}


def _schema(hint: Any, components: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": codec.schema_of(hint, components)}},
    }


def _route(
    api: FastAPI,
    question: Question,
    asked: Callable[[Request, Callable[[Warehouse, Principal], Any]], Any],
    components: dict[str, Any],
    authenticated: list[Any],
    serving: Serving,
) -> None:
    """``question`` as a route: its parameters in the path, the query (GET) or a
    JSON body (POST), its answer's schema in the document."""
    hints = codec.type_hints(question.params)
    parameters = [
        inspect.Parameter(
            "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
        )
    ]
    in_path = set(_path_names(question.path))
    for f in fields(question.params):
        default = (
            f.default
            if f.default is not MISSING
            else (f.default_factory() if f.default_factory is not MISSING else ...)
        )
        where = (
            Path()
            if f.name in in_path
            else (Query() if question.method == "GET" else Body(embed=True))
        )
        parameters.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if default is ... else default,
                annotation=Annotated[hints[f.name], where],
            )
        )

    prepared = question.prepared

    def endpoint(request: Request, **given: Any) -> Response:
        params = question.params(**given)
        if getattr(params, "extract", "") is None:
            # rows sent to a program are an extract: exporting must be permitted
            params = dataclasses.replace(params, extract="an API client")
        if prepared is None:
            answer = asked(request, lambda wh, me: question.answer(wh, me, params))
            return _answer_response(question, answer)

        def kept_or_started(wh: Warehouse, me: Principal) -> Any:
            """As made earlier for this audience, or a ticket for it being made."""
            assert prepared is not None
            access = wh.access(me, prepared.purpose(me, params))
            key = prepared.key(params)
            found = wh.shown_again(serving.shelf, access, prepared.what, *key)
            if found is not None:
                return found
            return serving.preparer.start(
                access,
                prepared.what,
                lambda w, a: prepared.make(w, a, params),
                key,
            )

        answer = asked(request, kept_or_started)
        if isinstance(answer, Ticket):
            return _preparing(answer)
        return _answer_response(question, answer)

    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = question.name
    if question.result is FileAnswer:
        responses: dict[int | str, Any] = {
            question.status: {
                "description": "A file.",
                "content": {
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                },
            }
        }
    else:
        responses = {question.status: _schema(question.result, components)}
    if question.prepared is not None:
        responses[202] = {
            "description": "Being prepared away from the requests: poll `Location` "
            "(`/preparing/{ticket}`) until `done`, then ask this again.",
            "content": {"application/json": {"schema": PREPARING_SCHEMA}},
        }
    api.add_api_route(
        question.path,
        endpoint,
        methods=[question.method],
        summary=question.summary,
        tags=[question.tag],
        status_code=question.status,
        responses=responses,
        name=question.name,
        operation_id=question.name,
        dependencies=authenticated,
    )


def _preparing(ticket: Ticket) -> JSONResponse:
    """202: the answer is being made; poll ``Location`` and ask again when done."""
    where = f"{API_PREFIX}/preparing/{ticket.ticket_id}"
    return JSONResponse(
        {"preparing": {"ticket": ticket.ticket_id, "what": ticket.what, "poll": where}},
        status_code=202,
        headers={"Location": where, "Retry-After": "2"},
    )


def _path_names(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)
