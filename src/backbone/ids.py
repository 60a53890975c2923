"""The ids people choose (partners, feeds, agreements, initiatives): checked at
every door the same way, so that none can name a path outside its folder."""

from __future__ import annotations

import re

from backbone.errors import UserError

__all__ = ["SAFE_ID", "checked_id", "path_part"]

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def checked_id(value: str, what: str) -> str:
    """``value`` if it is a safe id (letters, digits, ``.``, ``_``, ``-``; at most
    64, starting with a letter or digit; so no path separator and no ``..`` of its
    own); else a UserError naming ``what`` it was meant to be."""
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value) or ".." in value:
        raise UserError(
            f"{what} {value!r}: use letters, digits, '.', '_' and '-' only (at most "
            "64, starting with a letter or digit); no spaces or path separators."
        )
    return value


def path_part(value: str, what: str) -> str:
    """``value`` as one part of a path under a folder of the warehouse: refused if
    it would leave it (a separator, ``..``, a NUL), whatever ids were allowed when
    it was made."""
    if not value or value in (".", "..") or any(c in value for c in ("/", "\\", "\0")):
        raise UserError(
            f"{what} {value!r} cannot name a file: it holds a path separator or is "
            "'.' or '..'."
        )
    return value
