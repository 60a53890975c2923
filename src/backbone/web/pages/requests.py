"""Data-use requests: the list a user may read, filing one through a form (the
same document ``backbone request file`` reads), a provider's review against the
rubric, and an approved request's pseudonymous extracts for its requester."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import FormData

from backbone.errors import UserError
from backbone.governance.principals import Principal
from backbone.partners.agreements.document import SHAREABLE, AccessLevel
from backbone.partners.requests import DECISIONS, DataRequest
from backbone.session import Session
from backbone.warehouse import Warehouse
from backbone.web.door import Column, Door, NavItem, Table

ITEMS = 3
"""data items the filing form offers (the first is required)"""
PURPOSE = "data_use_request"
"""the purpose named when a user reads the paperwork of requests"""
# what the web door shows of each decision
DECISION_LABELS = {
    "approve": "Approve",
    "approve_with_conditions": "Approve with conditions",
    "decline": "Decline",
}
RUBRIC = (
    ("fit", "Fit with the partnership's goals"),
    ("protections", "Protections offered"),
    ("minimum_necessary", "Only the minimum data necessary"),
)

NAV = (
    NavItem(
        "/requests",
        "Requests",
        "data-use requests: file one, review those asking for your data, take an "
        "approved request's extract",
        lambda me: True,
        order=30,
    ),
)


def requests_table(rows: list[DataRequest]) -> Table:
    return Table(
        "requests",
        (
            Column("request_id", "Request", link="/requests/{request_id}"),
            Column("requester", "From"),
            Column("title", "Title"),
            Column("filed_on", "Filed"),
            Column("status", "Status"),
            Column("awaiting", "Awaiting review by"),
        ),
        [
            {
                "request_id": r.request_id,
                "requester": r.requester,
                "title": r.title,
                "filed_on": r.filed_on,
                "status": r.status.replace("_", " "),
                "awaiting": ", ".join(r.awaiting) if r.status == "in_review" else None,
            }
            for r in rows
        ],
        caption="Data-use requests",
        empty="No data-use requests you may read yet.",
    )


def _entities() -> list[tuple[str, list[str]]]:
    """Each entity a request may ask for, with the fields it can name."""
    from backbone.ingest.mapping import IMPLICIT

    return [
        (name, [c.name for c in table.columns if c.name not in IMPLICIT])
        for name, table in sorted(SHAREABLE.items())
    ]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def request_document(form: FormData, requester: str) -> dict[str, Any]:
    """The request document (the YAML shape ``backbone request file`` reads) from
    the filing form's fields; the stage checks it whole."""
    data = []
    for i in range(1, ITEMS + 1):
        provider = _text(form, f"provider_{i}")
        entity = _text(form, f"entity_{i}")
        fields = [f for f in re.split(r"[\s,;]+", _text(form, f"fields_{i}")) if f]
        if i > 1 and not (provider or fields):
            continue  # an item left empty
        data.append(
            {
                "provider": provider,
                "entity": entity,
                "fields": fields,
                "level": _text(form, f"level_{i}"),
            }
        )
    audience = [a for a in re.split(r"[\n;]+", _text(form, "audience")) if a.strip()]
    return {
        "request_id": _text(form, "request_id"),
        "requester": requester,
        "title": _text(form, "title"),
        "purpose": {
            "id": _text(form, "purpose_id"),
            "description": _text(form, "purpose_description"),
        },
        "data": data,
        "begin": _text(form, "begin") or None,
        "end": _text(form, "end") or None,
        "audience": [a.strip() for a in audience],
        "publication": _text(form, "publication"),
    }


def _score(form: FormData, name: str) -> int:
    try:
        return int(_text(form, name))
    except ValueError:
        raise UserError(
            f"give the rubric's {name.replace('_', ' ')} score, 1 to 4."
        ) from None


def register(app: FastAPI, door: Door) -> None:
    door.menu(*NAV)

    @app.get("/requests")
    def requests(request: Request) -> Response:
        return door.shown(
            request,
            "request_list.html",
            lambda wh, me: {
                "requests": requests_table(wh.requests_for(wh.access(me, PURPOSE)))
            },
        )

    @app.get("/requests/new")
    def new_request(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            today = wh.today()
            return {
                "partners": [p for p in wh.partners.list() if p.kind != "funder"],
                "entities": _entities(),
                "levels": [level.value for level in AccessLevel],
                "items": range(1, ITEMS + 1),
                "suggested_id": f"REQ-{today:%Y%m%d}-{me.partner_id.split('-')[0]}",
                "today": today,
                "until": date(today.year + 1, 6, 30),
            }

        return door.shown(request, "request_new.html", read)

    @app.post("/requests/new")
    async def file_request(request: Request) -> Response:
        def act(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
            filed = wh.requests.file_document(
                s, request_document(form, me.partner_id), on=wh.today()
            )
            return f"/requests/{filed.request_id}"

        return await door.acted(request, act)

    @app.get("/requests/{request_id}")
    def show_request(request: Request, request_id: str) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            r = wh.request_for(wh.access(me, PURPOSE), request_id)
            return {
                "r": r,
                "items": list(enumerate(r.document.data, start=1)),
                # a convenience only: the stage decides who may review and who
                # may take an extract, and refuses anyone else
                "reviewable": [
                    p
                    for p in r.awaiting
                    if r.status == "in_review"
                    and me.may("act_for_partner")
                    and (me.is_steward or p == me.partner_id)
                ],
                "extracts": r.status == "approved" and me.partner_id == r.requester,
                "decisions": DECISION_LABELS,
                "rubric": RUBRIC,
            }

        return door.shown(request, "request_show.html", read)

    @app.post("/requests/{request_id}/review")
    async def review_request(request: Request, request_id: str) -> Response:
        def act(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
            decision = _text(form, "decision")
            if decision not in DECISIONS:
                raise UserError(
                    "choose a decision: approve, with conditions, or decline."
                )
            wh.requests.review(
                s,
                request_id,
                provider=_text(form, "provider") or me.partner_id,
                decision=decision,
                fit=_score(form, "fit"),
                protections=_score(form, "protections"),
                minimum_necessary=_score(form, "minimum_necessary"),
                on=wh.today(),
                conditions=_text(form, "conditions") or None,
                comments=_text(form, "comments") or None,
            )
            return f"/requests/{request_id}"

        return await door.acted(request, act)

    @app.get("/requests/{request_id}/extract/{item}.csv")
    async def extract(request: Request, request_id: str, item: int) -> Response:
        """An approved request's data item as a pseudonymous CSV file (the stage
        decides, reads and audits; away from the event loop)."""

        def read() -> bytes:
            with door.opened() as wh:
                _session, me = door.signed_in(request, wh)
                return wh.request_extract(me, request_id, item).content

        content = await run_in_threadpool(read)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{request_id}-item-{item}.csv")
        return Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
