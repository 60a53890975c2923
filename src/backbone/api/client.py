"""The API's client: the CLI's questions asked of a server (``backbone --server
URL --token T …``), answered in the same types the stage returns locally, so the
CLI prints the same thing either way. A partner submits from its own machine
without a copy of the warehouse."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from backbone.api import codec
from backbone.api.questions import BY_NAME, FileAnswer
from backbone.errors import (
    AuthenticationFailed,
    BackboneError,
    Conflict,
    Forbidden,
    NotFoundError,
    UserError,
    WarehouseError,
)
from backbone.ingest.submit import SubmissionResult

__all__ = ["Client"]

API_PREFIX = "/api/v1"
PREPARING_ROUNDS = 5  # asked again after each preparation (the data may change)
POLL_SECONDS = 1.0
PREPARING_SECONDS = 3 * 3600.0
TIMEOUT = httpx.Timeout(30.0, read=3600.0)  # an answer may take a release's time
_ERRORS: dict[int, type[BackboneError]] = {
    401: AuthenticationFailed,
    403: Forbidden,
    404: NotFoundError,
}


@contextmanager
def _quiet(_what: str) -> Iterator[None]:
    yield


class Client:
    """Questions to the server at ``server`` under ``token``; ``working`` says
    what the server is preparing meanwhile (the CLI's spinner)."""

    def __init__(
        self,
        server: str,
        token: str | None,
        working: Callable[[str], Any] = _quiet,
    ) -> None:
        if not token:
            raise AuthenticationFailed(
                "a server is asked under a token: pass --token (or set "
                "BACKBONE_TOKEN); `backbone user token` issues one."
            )
        self.server = server.rstrip("/")
        self._working = working
        self._http = httpx.Client(
            base_url=self.server + API_PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def ask(self, name: str, params: Any) -> Any:
        """The answer to question ``name`` with ``params`` (its params dataclass)."""
        question = BY_NAME[name]
        in_path = set(re.findall(r"{(\w+)}", question.path))
        values = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
        path = question.path.format(
            **{k: quote(str(v), safe="") for k, v in values.items() if k in in_path}
        )
        rest = {
            k: codec.encode(v)
            for k, v in values.items()
            if k not in in_path and v is not None and v != []
        }
        for _ in range(PREPARING_ROUNDS):
            response = self._send(
                question.method,
                path,
                params=rest if question.method == "GET" else None,
                json=rest if question.method != "GET" else None,
            )
            if response.status_code != 202:
                break
            self._wait_until_prepared(response)  # then the same question again
        else:
            raise UserError(
                "the server prepared the answer several times, but the warehouse "
                "changed each time before it was asked again; try again later."
            )
        if question.result is FileAnswer:
            disposition = response.headers.get("content-disposition", "")
            found = re.search(r'filename="([^"]+)"', disposition)
            return FileAnswer(
                found.group(1) if found else "download",
                response.headers.get("content-type", ""),
                response.content,
            )
        return codec.decode(response.json(), question.result)

    def _wait_until_prepared(self, response: httpx.Response) -> None:
        poll = str(response.json()["preparing"]["poll"]).removeprefix(API_PREFIX)
        what = str(response.json()["preparing"]["what"])
        deadline = time.monotonic() + PREPARING_SECONDS
        with self._working(f"the server is preparing {what}"):
            while time.monotonic() < deadline:
                state = self._send("GET", poll).json()
                if state["failed"]:
                    raise UserError(str(state["failed"]))
                if state["done"]:
                    return
                time.sleep(POLL_SECONDS)
        raise UserError(
            f"the server was still preparing {what} after {PREPARING_SECONDS // 60:.0f} "
            "minutes; ask again later (it goes on)."
        )

    def submit(
        self,
        partner: str,
        feed: str,
        path: Path,
        *,
        mode: str | None = None,
        reprocess: bool = False,
        replace_smaller: bool = False,
    ) -> list[SubmissionResult]:
        """One file sent to a feed, streamed from disk as it goes."""
        data = {
            "partner": partner,
            "feed": feed,
            "reprocess": str(reprocess).lower(),
            "replace_smaller": str(replace_smaller).lower(),
        }
        if mode:
            data["mode"] = mode
        try:
            with path.open("rb") as file:
                response = self._send(
                    "POST", "/submissions", data=data, files={"file": (path.name, file)}
                )
        except OSError as exc:
            raise UserError(f"{path}: cannot read the file ({exc.strerror}).") from None
        return codec.decode(response.json(), list[SubmissionResult])  # type: ignore[no-any-return]

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise UserError(
                f"cannot reach {self.server} ({exc.__class__.__name__}); check the "
                "address (--server) and that the server is running."
            ) from None
        if response.is_success:
            return response
        try:
            error = response.json()["error"]
            message, code = str(error["message"]), str(error["code"])
        except (ValueError, KeyError, TypeError):
            message, code = f"the server answered {response.status_code}.", ""
        if code == "busy":
            raise WarehouseError(message)
        if response.status_code == 409:
            raise Conflict(message)
        raise _ERRORS.get(response.status_code, UserError)(message)
