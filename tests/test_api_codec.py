"""The API's codec: a stage's result types to JSON and back (the client prints
from what it decodes, so a round trip must give the same records), their OpenAPI
schemas, and the upload limit, on a real ASGI stack."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI, Request

from backbone.api import codec
from backbone.api.app import SMALL_BODY, ApiError, Gate, _status_of, envelope
from backbone.api.questions import QUESTIONS, pairs
from backbone.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFoundError,
    UserError,
    WarehouseError,
)
from backbone.governance.release import Release


class Colour(StrEnum):
    red = "red"


@dataclass(frozen=True)
class Inner:
    day: date
    colour: Colour
    ratio: float | None


@dataclass(frozen=True)
class Outer:
    inners: tuple[Inner, ...]
    named: dict[str, int]
    table: pa.Table
    note: str | None = None


def test_a_result_comes_back_as_the_same_records() -> None:
    table = pa.table(
        {
            "when": pa.array([date(2025, 9, 1), None], pa.date32()),
            "at": pa.array([datetime(2025, 9, 1, 8, 30), None], pa.timestamp("us")),
            "year": pa.array([2026, 2025], pa.int16()),
            "amount": pa.array([Decimal("1.50"), None], pa.decimal128(9, 2)),
            "name": pa.array(["a", "=b"], pa.string()),
        }
    )
    value = Outer((Inner(date(2026, 1, 2), Colour.red, None),), {"x": 1}, table, "n")
    sent = json.loads(json.dumps(codec.encode(value)))  # as it crosses the wire
    back = codec.decode(sent, Outer)
    assert back.inners == value.inners
    assert back.named == value.named and back.note == "n"
    assert back.table.schema == table.schema
    assert back.table.to_pylist() == table.to_pylist()


def test_a_release_and_a_read_only_mapping_cross_the_wire() -> None:
    release = Release(
        7,
        pa.table({"school_year": ["(all)", "2026"], "persons": [12, None]}),
        2,
        1,
        ("DSA-1@2",),
        "suppression",
    )
    back = codec.decode(json.loads(json.dumps(codec.encode(release))), Release)
    assert back == Release(7, back.table, 2, 1, ("DSA-1@2",), "suppression")
    assert back.table.to_pylist() == release.table.to_pylist()
    assert codec.encode(MappingProxyType({"d01": "Northfield"})) == {
        "d01": "Northfield"
    }


def test_every_question_has_a_schema_for_its_answer() -> None:
    components: dict[str, Any] = {}
    for q in QUESTIONS:
        described = codec.schema_of(q.result, components)
        assert described or q.result is Any, q.name
    assert components["Release"]["properties"]["table"] == {
        "$ref": "#/components/schemas/Table"
    }
    # every reference points at a schema that is there
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(components)
    assert refs <= set(components), refs - set(components)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (AuthenticationFailed("x"), 401, "unauthenticated"),
        (Forbidden("x"), 403, "forbidden"),
        (NotFoundError("x"), 404, "not_found"),
        (Conflict("x"), 409, "conflict"),
        (WarehouseError("x"), 409, "busy"),
        (UserError("x"), 400, "bad_request"),
    ],
)
def test_each_error_has_its_status(error: Exception, status: int, code: str) -> None:
    assert _status_of(error) == (status, code)  # type: ignore[arg-type]


def test_name_value_parameters_say_how_to_write_them() -> None:
    assert pairs(["tier=high risk", "tier=watch"], "--where") == {
        "tier": ["high risk", "watch"]
    }
    with pytest.raises(UserError, match="write it as COLUMN=VALUE"):
        pairs(["tier"], "--where")


def _limited(limit: int) -> Any:
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def refused(_request: Request, exc: ApiError) -> Any:
        return envelope(exc.status, exc.code, str(exc))

    @app.post("/submissions")
    async def upload(request: Request) -> dict[str, Any]:
        return {"bytes": len(await request.body()), "by": request.state.user_id}

    @app.post("/jobs")
    async def job(request: Request) -> dict[str, Any]:
        return {"bytes": len(await request.body()), "by": request.state.user_id}

    def sign_in(token: str, source: str) -> str:
        assert source.startswith("ip:")  # where it came from, for the throttle
        if token != "good":
            raise AuthenticationFailed("unknown or wrong token.")
        return "someone"

    return Gate(app, sign_in, limit)


def _post(app: Any, path: str, body: Any, token: str | None = "good") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post(path, content=body, headers=headers)

    return asyncio.run(go())


async def _chunks(n: int, size: int) -> Any:  # no length declared
    for _ in range(n):
        yield b"x" * size


def test_a_stranger_is_refused_before_a_byte_of_the_body_is_read() -> None:
    app = _limited(1000)
    for token in (None, "forged"):
        r = _post(app, "/jobs", _chunks(1000, 1000), token)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthenticated"
    assert _post(app, "/jobs", b"{}").json() == {"bytes": 2, "by": "someone"}


def test_a_file_over_the_limit_is_refused_as_it_arrives() -> None:
    app = _limited(1000)
    assert _post(app, "/submissions", b"x" * 1000).json()["bytes"] == 1000
    declared = _post(app, "/submissions", b"x" * 1001)  # by its Content-Length
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "too_large"
    streamed = _post(app, "/submissions", _chunks(5, 400))  # counted as it comes
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "too_large"


def test_anything_but_a_file_is_small() -> None:
    app = _limited(10 * SMALL_BODY)
    assert _post(app, "/jobs", b"x" * SMALL_BODY).json()["bytes"] == SMALL_BODY
    for body in (b"x" * (SMALL_BODY + 1), _chunks(SMALL_BODY // 512 + 1, 1024)):
        r = _post(app, "/jobs", body)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "too_large"
