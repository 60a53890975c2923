"""What every page of the web door shares: the warehouse opened for one request,
the signed-in user found again, the CSRF check, rendering, and tables that
download as CSV or Excel.

A page module (``backbone.web.pages``) registers its routes with a :class:`Door`;
a route parses the request, calls one stage method through :meth:`Door.shown` or
:meth:`Door.acted`, and renders. Roles are never checked here: the stage refuses
(403) what the agreements do not allow and writes the audit entry.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from backbone.errors import (
    AuthenticationFailed,
    Forbidden,
    NotFoundError,
)
from backbone.governance.principals import Principal
from backbone.serving import Serving, StillPreparing
from backbone.session import Session
from backbone.spreadsheet import formula_safe
from backbone.warehouse import Warehouse
from backbone.web.sessions import SessionStore, WebSession

__all__ = ["Column", "Door", "NavItem", "SignInNeeded", "StillPreparing", "Table"]

if TYPE_CHECKING:
    from backbone.governance.access import Access

_T = TypeVar("_T")
COOKIE = "backbone_session"
DOWNLOAD_FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class NavItem:
    """A link in the site's menu and on the home page, for the users ``shows``
    admits (a convenience only: the page itself is refused by the stage)."""

    href: str
    label: str
    blurb: str
    shows: Callable[[Principal], bool]
    order: int = 50


class SignInNeeded(Exception):
    """The request needs a signed-in user (answered by a redirect to sign in)."""


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    numeric: bool = False
    link: str | None = None
    """a URL pattern filled from the row, e.g. ``/submissions/{submission_id}``"""


@dataclass(frozen=True)
class Table:
    """A table a page shows, with links to download it as CSV and Excel.

    ``name`` names it in the download's URL (``?download=NAME&format=csv``) and
    file; ``rows`` are mappings from column keys to plain values."""

    name: str
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]
    caption: str = ""
    empty: str = "Nothing to show."
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    downloadable: bool = True
    """False for a person-level table read for viewing only: taking it away as a
    file is an export, which the stage must decide (see the roster's download)"""

    def cell(self, row: dict[str, Any], column: Column) -> str:
        return _text(row.get(column.key), column.numeric)

    def href(self, row: dict[str, Any], column: Column) -> str | None:
        if column.link is None or row.get(column.key) is None:  # nothing to open
            return None
        try:
            return column.link.format(**row)
        except (KeyError, IndexError, ValueError):
            return None


def _text(value: Any, numeric: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if numeric else f"{value:g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> Any:
    """A cell as a download holds it: numbers stay numbers, text that a
    spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return formula_safe(str(value))


def table_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.heading for c in table.columns])
    for row in table.rows:
        writer.writerow([_plain(row.get(c.key)) for c in table.columns])
    return out.getvalue().encode("utf-8-sig")  # a BOM, so Excel reads UTF-8


def table_xlsx(table: Table) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet(table.name[:31])
    bold = book.add_format({"bold": True})
    for j, column in enumerate(table.columns):
        sheet.write_string(0, j, column.heading, bold)
    for i, row in enumerate(table.rows, start=1):
        for j, column in enumerate(table.columns):
            value = _plain(row.get(column.key))
            if isinstance(value, bool | int | float):
                sheet.write_number(i, j, float(value))
            else:
                sheet.write_string(i, j, str(value))
    book.close()
    return out.getvalue()


def _tables(context: dict[str, Any]) -> Iterator[Table]:
    for value in context.values():
        if isinstance(value, Table):
            yield value
        elif isinstance(value, list | tuple):
            yield from (v for v in value if isinstance(v, Table))


def download(table: Table, kind: str, stem: str) -> Response:
    if kind == "xlsx":
        body, media = (
            table_xlsx(table),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        body, media = table_csv(table), "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{stem}.{kind}"'},
    )


class Door:
    """The request-scoped helpers every page uses (one per app)."""

    def __init__(
        self,
        serving: Serving,
        name: str,
        templates: Jinja2Templates,
        sessions: SessionStore,
    ) -> None:
        self.serving = serving
        self.warehouse = serving.warehouse
        self.name = name
        self.templates = templates
        self.sessions = sessions
        self.nav: list[NavItem] = []
        self.keeper = serving.keeper
        self.shelf = serving.shelf
        self.preparer = serving.preparer

    def opened(self) -> AbstractContextManager[Warehouse]:
        return self.keeper.opened()

    def close(self) -> None:
        self.serving.close()

    def prepared(
        self,
        wh: Warehouse,
        access: Access,
        what: str,
        make: Callable[[Warehouse, Access], _T],
        *key: Hashable,
        detail: Callable[[_T], dict[str, Any]] | None = None,
    ) -> _T:
        """A costly result for a page: as made earlier for the same audience
        (shown again, audited: ``detail(result)`` says what a person-level read
        reached), or else made away from the pages while the page says so
        (:class:`StillPreparing`, which :meth:`shown` renders) and reloads
        itself. ``make(wh, access)`` must use only what it is given."""
        found = wh.shown_again(self.shelf, access, what, *key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        raise StillPreparing(self.preparer.start(access, what, make, key, detail))

    def menu(self, *items: NavItem) -> None:
        """Add ``items`` to the menu (a page module's own links)."""
        self.nav = sorted([*self.nav, *items], key=lambda item: item.order)

    def session_of(self, request: Request) -> WebSession | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def signed_in(
        self, request: Request, wh: Warehouse
    ) -> tuple[WebSession, Principal]:
        """The request's session and its user, looked up again: a disabled or
        lapsed user's session ends here."""
        session = self.session_of(request)
        if session is None or session.user_id is None:
            raise SignInNeeded
        try:
            principal = wh.users.current(session.user_id)
        except AuthenticationFailed:
            principal = None
        if principal is None or principal.lapsed(wh.today()):
            self.sessions.end(session.token)
            raise SignInNeeded
        return session, principal

    def page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        session: WebSession | None = None,
        principal: Principal | None = None,
        **context: Any,
    ) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "site": self.name,
                "csrf": session.csrf if session else "",
                "me": principal,
                "nav": [n for n in self.nav if principal and n.shows(principal)],
                "path": request.url.path,
                # the page's own query, for its tables' downloads to keep
                "kept_query": "".join(
                    f"{urlencode({k: v})}&"
                    for k, v in request.query_params.multi_items()
                    if k not in ("download", "format")
                ),
                **context,
            },
            status_code=status,
        )

    def error_page(self, request: Request, status: int, message: str) -> Response:
        return self.page(
            request, "error.html", status, message=message, status_code=status
        )

    async def checked_form(self, request: Request, session: WebSession) -> FormData:
        form = await request.form()
        sent = form.get("csrf")
        if not session.csrf_matches(sent if isinstance(sent, str) else None):
            raise Forbidden(
                "the form is out of date or did not come from this site; "
                "reload the page and try again."
            )
        return form

    def shown(
        self,
        request: Request,
        template: str,
        read: Callable[[Warehouse, Principal], dict[str, Any]],
    ) -> Response:
        """A page: the warehouse opened for the request, its user found again,
        ``read`` (one stage method) for what the template shows. With
        ``?download=NAME&format=csv|xlsx`` the page's table NAME comes back as a
        file instead, from the same read."""
        preparing: StillPreparing | None = None
        with self.opened() as wh:
            session, me = self.signed_in(request, wh)
            try:
                context = read(wh, me)
            except StillPreparing as still:
                preparing = still
        if preparing is not None:  # rendered with the warehouse free for others
            return self.page(
                request,
                "preparing.html",
                202,
                session=session,
                principal=me,
                ticket=preparing.ticket,
            )
        wanted = request.query_params.get("download")
        if wanted:
            kind = request.query_params.get("format", "csv")
            found = [t for t in _tables(context) if t.name == wanted and t.downloadable]
            if not found or kind not in DOWNLOAD_FORMATS:
                raise NotFoundError(f"this page has no table {wanted!r} to download.")
            return download(found[0], kind, found[0].name)
        return self.page(request, template, session=session, principal=me, **context)

    async def acted(
        self,
        request: Request,
        act: Callable[[Warehouse, Session, Principal, FormData], str],
    ) -> Response:
        """A form posted: its CSRF token checked, ``act`` run in one unit of work
        as the signed-in user (away from the event loop), then a redirect to the
        URL ``act`` returns (so reloading does not post again)."""
        session = self.session_of(request)
        if session is None or session.user_id is None:
            raise SignInNeeded
        form = await self.checked_form(request, session)

        def run() -> str:
            with self.opened() as wh:
                _session, me = self.signed_in(request, wh)
                with wh.session(me) as s:
                    return act(wh, s, me, form)

        target = await run_in_threadpool(run)
        return RedirectResponse(target, status_code=303)
