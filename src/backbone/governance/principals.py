"""Principals: the people who use the warehouse, each belonging to one partner.

A user has one role; the role bounds what the user may ever do, and the agreements
in force decide what the user may do with each provider's data. Passwords are
hashed with argon2id; API tokens are 256-bit random secrets of which only a SHA-256
hash is kept (a slow hash is for guessable secrets, and a token is not guessable).
Access ends when a user is disabled, when the account expires, or when the user's
confidentiality training lapses.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backbone.engines import Connection
from backbone.errors import AuthenticationFailed, NotFoundError, UserError
from backbone.governance.audit import AuditEntry, AuditLog, StewardCheck
from backbone.governance.throttle import SignInThrottle, ThrottleRules
from backbone.session import Actor, Session, SetupActor

__all__ = [
    "ROLE_OPERATIONS",
    "Principal",
    "Principals",
    "Role",
    "UserState",
]

_USER_ID = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
TOKEN_PREFIX = "bbt"
# beyond ten years a date is no longer a limit anyone means (and overflows at some point)
MAX_TOKEN_DAYS = 3650


class Role(StrEnum):
    steward_admin = "steward_admin"
    steward_analyst = "steward_analyst"
    partner_analyst = "partner_analyst"
    partner_uploader = "partner_uploader"
    funder_viewer = "funder_viewer"
    researcher = "researcher"


# What each role may ever do; the agreements narrow it further per provider.
# "upload", "administer", "audit" and "act_for_partner" are not data operations of an
# agreement. "act_for_partner" is speaking for one's own partner in the partnership's
# paperwork (approving an agreement version, reviewing a data-use request, filing one,
# reporting progress on its commitments); a steward admin may record it on any
# partner's behalf. "derive" is computing what the warehouse derives from everyone's
# facts (early-warning indicators, the risk model): the steward's work, like linking.
# "file_request" is filing a data-use request for one's own partner: an analyst, or a
# researcher asking for data for its study (who otherwise does not speak for its
# partner); a steward admin may file one on a partner's behalf.
ROLE_OPERATIONS: dict[Role, frozenset[str]] = {
    Role.steward_admin: frozenset(
        {
            "row_level_view",
            "export_microdata",
            "link",
            "aggregate",
            "upload",
            "administer",
            "audit",
            "act_for_partner",
            "file_request",
            "derive",
        }
    ),
    Role.steward_analyst: frozenset(
        {"row_level_view", "export_microdata", "link", "aggregate", "derive"}
    ),
    Role.partner_analyst: frozenset(
        {
            "row_level_view",
            "export_microdata",
            "aggregate",
            "act_for_partner",
            "file_request",
        }
    ),
    Role.partner_uploader: frozenset({"upload"}),
    Role.funder_viewer: frozenset({"aggregate"}),
    Role.researcher: frozenset(
        {"row_level_view", "export_microdata", "aggregate", "file_request"}
    ),
}
# The partner kinds a role fits.
ROLE_KINDS: dict[Role, frozenset[str]] = {
    Role.steward_admin: frozenset({"backbone"}),
    Role.steward_analyst: frozenset({"backbone"}),
    Role.partner_analyst: frozenset(
        {
            "school_district",
            "community_organization",
            "higher_education_agency",
            "government_agency",
        }
    ),
    Role.partner_uploader: frozenset(
        {
            "school_district",
            "community_organization",
            "higher_education_agency",
            "government_agency",
            "backbone",
        }
    ),
    Role.funder_viewer: frozenset({"funder"}),
    Role.researcher: frozenset({"research", "backbone", "higher_education_agency"}),
}


@dataclass(frozen=True)
class Principal:
    user_id: str
    partner_id: str
    role: Role
    display_name: str | None = None
    expires_on: date | None = None
    training_until: date | None = None
    disabled: bool = False

    @property
    def is_steward(self) -> bool:
        return self.role in (Role.steward_admin, Role.steward_analyst)

    def may(self, operation: str) -> bool:
        return operation in ROLE_OPERATIONS[self.role]

    def lapsed(self, on: date) -> str | None:
        """Why this user may not act on ``on``, or None."""
        if self.disabled:
            return f"user {self.user_id} is disabled"
        if self.expires_on is not None and on > self.expires_on:
            return f"user {self.user_id}'s access expired on {self.expires_on}"
        if self.training_until is not None and on > self.training_until:
            return (
                f"user {self.user_id}'s confidentiality training lapsed on "
                f"{self.training_until}"
            )
        return None


@dataclass(frozen=True)
class UserState:
    """A user as the steward's list shows it (:meth:`Principals.list_for`)."""

    principal: Principal
    second_factor: bool
    """whether an authenticator app is set up for signing in"""
    disabled_at: datetime | None
    disabled_reason: str | None
    locked: bool = False
    """locked out after too many failed sign-ins"""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    """Shown once; only its hash is kept."""
    token_id: str
    expires_at: datetime | None


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Principals:
    """``wh.users``: add, list, disable, passwords, tokens, sign-in."""

    def __init__(
        self,
        con: Connection,
        audit: AuditLog,
        clock: Callable[[], datetime],
        rules: ThrottleRules | None = None,
    ) -> None:
        self._con = con
        self._audit = audit
        self._clock = clock
        self._throttle = SignInThrottle(con, rules or ThrottleRules(), clock)
        # argon2id with the library's defaults (RFC 9106 low-memory profile)
        self._hasher = PasswordHasher()

    # --- reading -----------------------------------------------------------------

    def _row(self, user_id: str) -> Principal | None:
        return _principal(self._con, user_id)

    def get(self, user_id: str) -> Principal:
        return _known(self._con, user_id)

    def current(self, user_id: str) -> Principal:
        """The principal as the warehouse knows it now (for every access)."""
        found = self._row(user_id)
        if found is None:
            raise AuthenticationFailed(f"no user {user_id!r}; sign in first.")
        return found

    def list(self) -> list[Principal]:
        ids = [
            r[0]
            for r in self._con.execute(
                "SELECT user_id FROM gov.principal ORDER BY partner_id, user_id"
            ).fetchall()
        ]
        return [self.get(i) for i in ids]

    def list_for(self, reader: StewardCheck) -> builtins.list[UserState]:
        """Every user with role, partner and state (whether a second factor is
        set, never the secret itself), for the steward; anyone else is refused,
        and the refusal audited."""
        reader.require_steward("aggregate", "the list of users")
        rows = self._con.execute(
            "SELECT user_id, totp_secret IS NOT NULL, disabled_at, disabled_reason "
            "FROM gov.principal ORDER BY partner_id, user_id"
        ).fetchall()
        return [
            UserState(
                self.get(r[0]), bool(r[1]), r[2], r[3], self._throttle.is_locked(r[0])
            )
            for r in rows
        ]

    def count(self) -> int:
        row = self._con.execute("SELECT count(*) FROM gov.principal").fetchone()
        return int(row[0]) if row else 0

    # --- changing ----------------------------------------------------------------

    def add(
        self,
        s: Session,
        user_id: str,
        *,
        partner: str,
        role: Role | str,
        display_name: str | None = None,
        password: str | None = None,
        expires_on: date | None = None,
        training_until: date | None = None,
    ) -> Principal:
        """Add a user: a steward admin's work; the first user of a new warehouse is
        added by whoever sets it up (a session with no one signed in), and must be
        the steward's admin."""
        who = s.require("administer", f"add user {user_id}", action="user")
        try:
            role = Role(role)
        except ValueError:
            raise UserError(
                f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}."
            ) from None
        if isinstance(who, SetupActor) and role is not Role.steward_admin:
            raise UserError(
                "the first user of a warehouse must be the steward's admin "
                "(--role steward_admin)."
            )
        if not _USER_ID.match(user_id):
            raise UserError(
                f"user id {user_id!r} must be 2-64 characters: lower-case letters, "
                "digits, '.', '_', '@' or '-'."
            )
        con = s.con
        kind_row = con.execute(
            "SELECT kind FROM ref.partner WHERE partner_id = ?", [partner]
        ).fetchone()
        if kind_row is None:
            raise NotFoundError(
                f"no partner {partner!r}; register it first with `backbone partner add`."
            )
        if kind_row[0] not in ROLE_KINDS[role]:
            raise UserError(
                f"role {role.value} does not fit a {kind_row[0]} partner; it is for "
                f"{', '.join(sorted(ROLE_KINDS[role]))} partners."
            )
        if _principal(con, user_id) is not None:
            raise UserError(f"user {user_id!r} already exists.")
        con.execute(
            "INSERT INTO gov.principal (user_id, display_name, partner_id, role, "
            "password_hash, created_at, created_by, expires_on, training_until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                user_id,
                display_name,
                partner,
                role.value,
                self._hasher.hash(password) if password else None,
                s.clock(),
                who.user_id,
                expires_on,
                training_until,
            ],
        )
        s.record(
            "user",
            f"added user {user_id} ({role.value} of {partner})",
            providers=(partner,),
        )
        return _known(con, user_id)

    def disable(self, s: Session, user_id: str, *, reason: str) -> Principal:
        """Disable a user and revoke the user's tokens, at once (a steward admin)."""
        s.require("administer", f"disable user {user_id}", action="user")
        con = s.con
        _known(con, user_id)
        now = s.clock()
        con.execute(
            "UPDATE gov.principal SET disabled_at = ?, disabled_reason = ? "
            "WHERE user_id = ?",
            [now, reason, user_id],
        )
        con.execute(
            "UPDATE gov.api_token SET revoked_at = ? "
            "WHERE user_id = ? AND revoked_at IS NULL",
            [now, user_id],
        )
        s.record("user", f"disabled user {user_id}", reason=reason)
        return _known(con, user_id)

    def set_password(self, s: Session, user_id: str, password: str) -> None:
        """Set a password: one's own, or anyone's as a steward admin."""
        _self_or_admin(s, user_id, f"set the password of {user_id}", "user")
        if len(password) < 12:
            raise UserError("a password must have at least 12 characters.")
        con = s.con
        _known(con, user_id)
        con.execute(
            "UPDATE gov.principal SET password_hash = ? WHERE user_id = ?",
            [self._hasher.hash(password), user_id],
        )
        s.record("user", f"set the password of {user_id}")

    # --- a second factor (TOTP, RFC 6238) ------------------------------------------

    def has_second_factor(self, user_id: str) -> bool:
        row = self._con.execute(
            "SELECT totp_secret IS NOT NULL FROM gov.principal WHERE user_id = ?",
            [user_id],
        ).fetchone()
        return bool(row and row[0])

    @staticmethod
    def new_second_factor_secret() -> str:
        """A fresh base32 secret for an authenticator app (not stored until
        :meth:`set_second_factor` sees a code made from it)."""
        import pyotp

        return str(pyotp.random_base32())

    def set_second_factor(
        self, s: Session, user_id: str, secret: str, code: str
    ) -> None:
        """Keep ``secret`` as the user's second factor once ``code`` shows the
        user's app makes the same codes: one's own, or anyone's as a steward admin
        (audited)."""
        import pyotp

        who = _self_or_admin(s, user_id, f"set the second factor of {user_id}", "user")
        if who.user_id == user_id and self.has_second_factor(user_id):
            # whoever knows the password must not swap the user's app for theirs
            raise UserError(
                f"{user_id} has a second factor already; a steward admin can replace it."
            )
        if not pyotp.TOTP(secret).verify(code.strip(), valid_window=1):
            raise UserError(
                "that code does not match; enter the six digits the app shows now."
            )
        s.con.execute(
            "UPDATE gov.principal SET totp_secret = ? WHERE user_id = ?",
            [secret, user_id],
        )
        # a new app's codes: none of them taken yet
        s.con.execute("DELETE FROM gov.second_factor_step WHERE user_id = ?", [user_id])
        s.record("user", f"set the second factor of {user_id}")

    def check_second_factor(
        self, user_id: str, code: str, *, source: str = "local"
    ) -> Principal:
        """The second step of signing in: the code of the user's app (the current
        one or the one before or after, for clocks a little apart), each code
        taken once (a replayed one is refused); every attempt audited and
        throttled like the password's."""
        import pyotp

        subject = f"code:{user_id}"
        self._unless_held(subject, user_id, source)
        row = self._con.execute(
            "SELECT totp_secret FROM gov.principal WHERE user_id = ?", [user_id]
        ).fetchone()
        if row is None or row[0] is None:
            raise self._refuse(
                user_id, "no second factor is set up.", "no TOTP", source
            )
        step = _matched_step(pyotp.TOTP(row[0]), code.strip())
        if step is None:
            self._throttle.failed(subject, source)
            raise self._refuse(
                user_id, "that code does not match.", "wrong TOTP code", source
            )
        with _STEPS:  # a code is taken once, even by two requests at the same time
            used = self._con.execute(
                "SELECT last_step FROM gov.second_factor_step WHERE user_id = ?",
                [user_id],
            ).fetchone()
            if used is not None and step <= used[0]:
                self._throttle.failed(subject, source)
                raise self._refuse(
                    user_id,
                    "that code was used already; enter the next one your app shows.",
                    "TOTP code used before",
                    source,
                )
            self._con.execute(
                "INSERT INTO gov.second_factor_step VALUES (?, ?) ON CONFLICT "
                "(user_id) DO UPDATE SET last_step = excluded.last_step",
                [user_id, step],
            )
        self._throttle.succeeded(subject)
        return self._admit(self.get(user_id), "password and second factor", source)

    def issue_token(
        self,
        s: Session,
        user_id: str,
        *,
        label: str | None = None,
        days: int | None = 90,
        after_second_factor: bool = False,
    ) -> IssuedToken:
        """A new API token for ``user_id``. A user may issue their own; a steward
        admin anyone's. With no one signed in, only a new warehouse's one steward
        admin (no password and no token yet) can be given its first token, by
        whoever holds the folder."""
        if days is not None and days < 1:
            raise UserError(
                f"--days {days}: a token lasts at least one day. A token that never "
                "expires is issued only when asked for (--no-expiry), and recorded so."
            )
        if days is not None and days > MAX_TOKEN_DAYS:
            raise UserError(
                f"--days {days}: a token lasts at most {MAX_TOKEN_DAYS:,} days (ten "
                "years). One that never expires is issued only when asked for "
                "(--no-expiry), and recorded so."
            )
        con = s.con
        target = _known(con, user_id)
        first = s.principal is None and _bootstrapping(con, target)
        if not first:
            _self_or_admin(s, user_id, f"issue a token for {user_id}", "token")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = s.clock()
        expires = now + timedelta(days=days) if days else None
        issuer = SetupActor().user_id if first else s.actor().user_id
        con.execute(
            "INSERT INTO gov.api_token (token_id, user_id, secret_hash, label, "
            "created_at, expires_at, issued_by, after_second_factor) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                token_id,
                user_id,
                _secret_hash(secret),
                label,
                now,
                expires,
                issuer,
                after_second_factor,
            ],
        )
        what = f"issued token {token_id} for {user_id}"
        detail = {"expires_at": expires.isoformat() if expires else None}
        if first:
            s.append(
                AuditEntry(
                    "token",
                    SetupActor().user_id,
                    actor_partner=target.partner_id,
                    what=what,
                    detail=detail,
                )
            )
        else:
            s.record("token", what, detail=detail)
        return IssuedToken(f"{TOKEN_PREFIX}_{token_id}_{secret}", token_id, expires)

    def revoke_token(self, s: Session, token_id: str) -> None:
        """Revoke a token: one's own, or anyone's as a steward admin."""
        con = s.con
        row = con.execute(
            "SELECT user_id FROM gov.api_token WHERE token_id = ?", [token_id]
        ).fetchone()
        # who may not revoke it learns nothing of it, not even that it exists
        _self_or_admin(
            s, "" if row is None else str(row[0]), f"revoke token {token_id}", "token"
        )
        if row is None:
            raise NotFoundError(f"no token {token_id!r}.")
        con.execute(
            "UPDATE gov.api_token SET revoked_at = ? WHERE token_id = ?",
            [s.clock(), token_id],
        )
        s.record("token", f"revoked token {token_id}")

    # --- signing in --------------------------------------------------------------

    def _refuse(
        self, who: str, why: str, detail: str, source: str | None = None
    ) -> AuthenticationFailed:
        self._audit.append(
            AuditEntry(
                "login",
                who,
                decision="deny",
                reason=detail,
                what=why,
                detail={"from": source} if source else {},
            )
        )
        return AuthenticationFailed(why)

    def _unless_held(self, subject: str | None, who: str, source: str) -> None:
        """Refuse an attempt the throttle holds, without looking at what was
        entered (audited, with where it came from)."""
        hold = self._throttle.hold(subject, source)
        if hold is not None:
            raise self._refuse(who, hold.why, hold.detail, source)

    def unlock(self, s: Session, user_id: str) -> bool:
        """Clear ``user_id``'s failed sign-ins (a lockout included): a steward
        admin's act, audited in the same unit of work. Whether there was anything
        to clear."""
        s.require("administer", f"unlock {user_id}", action="user")
        _known(s.con, user_id)
        cleared = self._throttle.unlock(s.con, user_id) > 0
        s.record(
            "user",
            f"unlocked {user_id}" if cleared else f"unlock {user_id}: nothing held",
        )
        return cleared

    def sign_in(
        self, user_id: str, password: str, *, source: str = "local"
    ) -> Principal:
        """Check a password; every attempt is audited, and throttled (by user and
        by ``source``: where it came from, as the door knows it)."""
        subject = f"password:{user_id}"
        self._unless_held(subject, user_id, source)
        found = self._con.execute(
            "SELECT password_hash FROM gov.principal WHERE user_id = ?", [user_id]
        ).fetchone()
        wrong = "unknown user or wrong password."
        if found is None or found[0] is None:
            # hash anyway so that timing does not tell which users exist
            self._hasher.hash(password)
            self._throttle.failed(subject, source)
            raise self._refuse(
                user_id, wrong, "unknown user or no password set", source
            )
        try:
            self._hasher.verify(found[0], password)
        except (VerificationError, InvalidHashError):
            self._throttle.failed(subject, source)
            raise self._refuse(user_id, wrong, "wrong password", source) from None
        self._throttle.succeeded(subject)
        return self._admit(self.get(user_id), "password", source)

    def sign_in_token(
        self,
        token: str,
        *,
        second_factor_required: Callable[[Principal], bool] | None = None,
        source: str = "local",
    ) -> Principal:
        """Check a token; every attempt is audited. Where the door reaches beyond
        the folder (the API), ``second_factor_required(principal)`` says whether an
        agreement asks a second factor of the principal: then only a token that
        stands in for one (:meth:`vouched_for`) is accepted."""
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise self._wrong_token("(token)", "that is not a Backbone token.", source)
        _, token_id, secret = parts
        row = self._con.execute(
            "SELECT user_id, secret_hash, expires_at, revoked_at FROM gov.api_token "
            "WHERE token_id = ?",
            [token_id],
        ).fetchone()
        if row is None or not hmac.compare_digest(row[1], _secret_hash(secret)):
            raise self._wrong_token(
                f"(token {token_id})", "unknown or wrong token.", source
            )
        if row[3] is not None:
            raise self._refuse(row[0], "the token was revoked.", f"token {token_id}")
        if row[2] is not None and self._clock() > row[2]:
            raise self._refuse(
                row[0], f"the token expired on {row[2]:%Y-%m-%d}.", f"token {token_id}"
            )
        principal = self.get(row[0])
        if (
            second_factor_required is not None
            and not self.vouched_for(token)
            and second_factor_required(principal)
        ):
            raise self._refuse(
                row[0],
                "an agreement of your partner asks a second factor, and this token "
                "does not stand for one (issued by its user with a password alone, "
                "or before Backbone recorded who issued tokens); ask a steward "
                "admin to issue your API token (`backbone user token`).",
                f"token {token_id} without a second factor",
            )
        return self._admit(principal, f"token {token_id}", source)

    def _wrong_token(self, who: str, why: str, source: str) -> AuthenticationFailed:
        """A token that is no one's. A right token is never held back (it is not
        guessed, and one source's bad tokens must not lock out its good ones);
        a source sending wrong ones is told to wait, and slowed by the wait."""
        hold = self._throttle.hold(None, source)
        self._throttle.failed(None, source)
        if hold is not None:
            return self._refuse(who, hold.why, hold.detail, source)
        return self._refuse(who, why, "no such token", source)

    def vouched_for(self, token: str) -> bool:
        """Whether a (valid) token stands in for a second factor: issued by a
        steward admin (for anyone, themselves included: they run the warehouse),
        by whoever holds the folder for a new warehouse's first admin, or by its
        user after signing in with a second factor (a job started from the web
        site). One a partner's user issued for themselves with a password alone
        does not; nor one issued before Backbone recorded who issued tokens."""
        parts = token.strip().split("_", 2)
        row = self._con.execute(
            "SELECT t.user_id, t.issued_by, t.after_second_factor, p.role "
            "FROM gov.api_token t LEFT JOIN gov.principal p ON p.user_id = t.issued_by "
            "WHERE t.token_id = ?",
            [parts[1] if len(parts) == 3 else ""],
        ).fetchone()
        if row is None or row[1] is None:
            return False
        # a steward admin's word (on the warehouse's own machine) is the vouching
        return bool(row[2]) or row[1] != row[0] or row[3] == Role.steward_admin.value

    def _admit(
        self, principal: Principal, how: str, source: str | None = None
    ) -> Principal:
        why = principal.lapsed(self._clock().date())
        if why:
            raise self._refuse(principal.user_id, why + ".", how, source)
        self._audit.append(
            AuditEntry(
                "login",
                principal.user_id,
                actor_partner=principal.partner_id,
                what=f"signed in with {how}",
                detail={"from": source} if source else {},
            )
        )
        return principal


def _principal(con: Connection, user_id: str) -> Principal | None:
    row = con.execute(
        "SELECT user_id, partner_id, role, display_name, expires_on, "
        "training_until, disabled_at IS NOT NULL FROM gov.principal "
        "WHERE user_id = ?",
        [user_id],
    ).fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], Role(row[2]), row[3], row[4], row[5], bool(row[6]))


def _known(con: Connection, user_id: str) -> Principal:
    found = _principal(con, user_id)
    if found is None:
        raise NotFoundError(
            f"no user {user_id!r}; `backbone user list` shows the users."
        )
    return found


def _self_or_admin(s: Session, user_id: str, what: str, action: str) -> Actor:
    """The signed-in user acting on their own account (while not lapsed), or a
    steward admin acting on anyone's; anyone else is refused (and audited)."""
    who = s.actor()
    if who.user_id == user_id and who.lapsed(s.today()) is None:
        return who
    return s.require("administer", what, action=action)


def _bootstrapping(con: Connection, target: Principal) -> bool:
    """A new warehouse: its only user is a steward admin with no password and no
    token, so whoever holds the folder may give it a first token."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM gov.principal), "
        "(SELECT count(*) FROM gov.api_token), "
        "(SELECT count(*) FROM gov.principal WHERE password_hash IS NOT NULL)"
    ).fetchone()
    assert row is not None
    users, tokens, passwords = (int(v) for v in row)
    return (
        target.role is Role.steward_admin
        and users == 1
        and tokens == 0
        and passwords == 0
    )


# one look-then-keep of a user's last code step at a time, within a process (the
# file's lock keeps other processes out)
_STEPS = threading.Lock()


def _matched_step(totp: Any, code: str) -> int | None:
    """The 30-second step whose code ``code`` is: the current one, or the one
    before or after (clocks a little apart); None if none."""
    current = int(totp.timecode(datetime.now()))
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step
    return None
