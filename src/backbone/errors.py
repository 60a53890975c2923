"""One exception tree for Backbone.

Every error a person can cause or fix is a :class:`BackboneError`; its message is a
full sentence saying what happened and what to do. Interfaces (CLI, web, API) catch
``BackboneError`` and show the message; anything else is a bug and may show a
traceback.

::

    BackboneError                 base; ``status`` is the HTTP status a door should use
    ├── UserError                 the person asked for something that cannot be done (400)
    │   ├── SettingsError         backbone.toml is missing a value, has an unknown key, ...
    │   ├── InputFileError        a submitted or generated file is unreadable or malformed
    │   └── NotFoundError         a named partner, record, ... does not exist (404)
    ├── WarehouseError            the warehouse folder is missing, foreign, locked, ...
    │   ├── NotAWarehouseError    the folder is not a Backbone warehouse
    │   └── SchemaVersionError    the warehouse was written by a newer Backbone
    ├── AuthenticationFailed      not signed in: unknown user, wrong password or token (401)
    └── Forbidden                 signed in, but may not do this (403)
        └── PolicyDenied          a read or release was refused by the agreements
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuthenticationFailed",
    "BackboneError",
    "Forbidden",
    "InputFileError",
    "NotAWarehouseError",
    "NotFoundError",
    "PolicyDenied",
    "SchemaVersionError",
    "SettingsError",
    "UserError",
    "WarehouseError",
]


class BackboneError(Exception):
    """Base of every error Backbone raises on purpose."""

    status: int = 400


class UserError(BackboneError):
    """The request cannot be done as asked; the message says what to change."""


class SettingsError(UserError):
    """A settings file is invalid."""


class InputFileError(UserError):
    """A file is unreadable or malformed; names the file, row and column when known."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.path = path
        self.row = row
        self.column = column


class NotFoundError(UserError):
    """A named thing does not exist."""

    status = 404


class Conflict(UserError):
    """What the request was based on changed meanwhile (another person's decision)."""

    status = 409


class WarehouseError(BackboneError):
    """The warehouse folder cannot be used."""

    status = 500


class NotAWarehouseError(WarehouseError):
    """The folder is missing or is not a Backbone warehouse."""

    status = 404


class SchemaVersionError(WarehouseError):
    """The warehouse's schema is newer than this Backbone understands."""


class Forbidden(BackboneError):
    """The person is signed in but may not do this (their role, partner or state)."""

    status = 403


class PolicyDenied(Forbidden):
    """The agreements in force do not allow the request."""


class AuthenticationFailed(BackboneError):
    """Who is asking could not be established (no such user, wrong secret, disabled)."""

    status = 401
