"""The sign-in throttle, kept in the warehouse so that every door shares it.

Each failed attempt (a password, a second-factor code, a token) is counted against
its subjects: the user it named (``password:<user>``, ``code:<user>``) and the
source it came from (``source:<address>``, or the machine account for the CLI).
Beyond a few free failures (a typo or two: :data:`FREE_FAILURES`), the next attempt
of a subject waits 1, 2, 4 … seconds (at most ``max_delay_seconds``); a user reaching ``failures_before_lockout`` is locked out for
``lockout_minutes`` (0: until a steward admin unlocks them, audited). A source is
slowed, never locked out: a school's many users share one address. Counting
happens as each attempt is checked, one at a time (the file's lock, a server's
one warehouse), so parallel attempts cannot all slip into the same second; a
success clears its user, never its source. Failures are forgotten
``memory_minutes`` after the last (a source's sooner).
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backbone.engines import Connection

__all__ = [
    "SignInThrottle",
    "ThrottleRules",
    "address_source",
    "delay_seconds",
    "source_subject",
]

# one process holds the file for writing; within it, every warehouse object on it
_LOCK = threading.Lock()
# failures in a row that cost no wait: a user's typos; a shared address's users' typos
FREE_FAILURES = {"user": 2, "source": 5}
# a source's failures are forgotten this long after its last: a school's shared
# address must not stay slowed by a morning's typos
SOURCE_MEMORY_MINUTES = 15


@dataclass(frozen=True)
class ThrottleRules:
    failures_before_lockout: int = 5
    lockout_minutes: int = 15
    """0: locked out until a steward admin unlocks the user"""
    max_delay_seconds: int = 60
    memory_minutes: int = 60

    @classmethod
    def of(cls, settings: Any) -> ThrottleRules:
        return cls(
            failures_before_lockout=max(
                1, int(settings["security.sign_in_failures_before_lockout"])
            ),
            lockout_minutes=int(settings["security.lockout_minutes"]),
            max_delay_seconds=int(settings["security.sign_in_max_delay_seconds"]),
        )


def delay_seconds(failures: int, cap: int, free: int = 0) -> float:
    """How long a subject with ``failures`` recent failures waits: nothing for the
    first ``free``, then 1, 2, 4, … s up to ``cap``."""
    beyond = failures - free
    if beyond <= 0:
        return 0.0
    return float(min(cap, 2 ** min(beyond - 1, 30)))


@dataclass(frozen=True)
class Hold:
    """Why an attempt is refused before it is checked."""

    why: str
    detail: str


class SignInThrottle:
    """Attempts are checked one at a time: a command holds the database file
    while it signs in, and a server's requests take turns at its one warehouse;
    within a process :data:`_LOCK` keeps each look-then-count whole."""

    def __init__(
        self, con: Connection, rules: ThrottleRules, clock: Callable[[], datetime]
    ) -> None:
        self._con = con
        self.rules = rules
        self._clock = clock

    def _row(self, subject: str) -> tuple[int, datetime] | None:
        row = self._con.execute(
            "SELECT failures, last_failed_at FROM gov.sign_in_failure "
            "WHERE subject = ?",
            [subject],
        ).fetchone()
        return (int(row[0]), row[1]) if row else None

    def _forget_old(self, now: datetime) -> None:
        """A source's failures go :data:`SOURCE_MEMORY_MINUTES` after its last; a
        user's after ``memory_minutes`` or the lockout, whichever is longer (never,
        while locked until unlocked)."""
        rules = self.rules
        memory = timedelta(minutes=max(rules.memory_minutes, rules.lockout_minutes))
        keep_locked = " AND NOT (failures >= ?)" if rules.lockout_minutes == 0 else ""
        params: list[Any] = [now - memory]
        if keep_locked:
            params.append(rules.failures_before_lockout)
        self._con.execute(
            "DELETE FROM gov.sign_in_failure WHERE NOT starts_with(subject, "
            f"'source:') AND last_failed_at < ?{keep_locked}",
            params,
        )
        self._con.execute(
            "DELETE FROM gov.sign_in_failure WHERE starts_with(subject, 'source:') "
            "AND last_failed_at < ?",
            [now - timedelta(minutes=SOURCE_MEMORY_MINUTES)],
        )

    def _hold(self, subject: str, now: datetime, user: bool) -> Hold | None:
        found = self._row(subject)
        if found is None:
            return None
        failures, last = found
        rules = self.rules
        if user and failures >= rules.failures_before_lockout:
            if rules.lockout_minutes == 0:
                until = None
            else:
                until = last + timedelta(minutes=rules.lockout_minutes)
            if until is None or now < until:
                after = (
                    "until a steward admin unlocks it (`backbone user unlock`)"
                    if until is None
                    else f"until {until:%H:%M} UTC, or until a steward admin unlocks it"
                )
                return Hold(
                    f"too many failed sign-ins: this account is locked {after}.",
                    "locked out",
                )
            return None
        wait = last + timedelta(
            seconds=delay_seconds(
                failures,
                rules.max_delay_seconds,
                FREE_FAILURES["user" if user else "source"],
            )
        )
        if now < wait:
            seconds = max(1, math.ceil((wait - now).total_seconds()))
            return Hold(
                f"too many failed sign-ins; try again in {seconds} s.", "throttled"
            )
        return None

    def hold(self, user_subject: str | None, source: str) -> Hold | None:
        """Why this attempt must not be checked now (its user locked out or
        waiting, or its source waiting), or None."""
        with _LOCK:
            now = self._clock()
            self._forget_old(now)
            for subject, user in (
                (user_subject, True),
                (source_subject(source), False),
            ):
                if subject:
                    found = self._hold(subject, now, user=user)
                    if found is not None:
                        return found
        return None

    def failed(self, user_subject: str | None, source: str) -> None:
        """Count a failed attempt against its user (if any) and its source."""
        with _LOCK:
            now = self._clock()
            for subject in (user_subject, source_subject(source)):
                if subject:
                    self._con.execute(
                        "INSERT INTO gov.sign_in_failure (subject, failures, "
                        "last_failed_at) VALUES (?, 1, ?) ON CONFLICT (subject) DO "
                        "UPDATE SET failures = failures + 1, last_failed_at = "
                        "excluded.last_failed_at",
                        [subject, now],
                    )

    def succeeded(self, user_subject: str) -> None:
        """The attempt was right: its user's failures are cleared. A source's are
        not (a guesser with one account of their own must not wipe them); they
        are forgotten with time."""
        with _LOCK:
            self._con.execute(
                "DELETE FROM gov.sign_in_failure WHERE subject = ?", [user_subject]
            )

    def is_locked(self, user_id: str) -> bool:
        now = self._clock()
        for subject in user_subjects(user_id):
            hold = self._hold(subject, now, user=True)
            if hold is not None and hold.detail == "locked out":
                return True
        return False

    def unlock(self, con: Connection, user_id: str) -> int:
        """Forget ``user_id``'s failures on ``con`` (the unlocking unit of work's,
        so that the unlock and its audit entry commit together); how many
        subjects were cleared."""
        with _LOCK:
            subjects = user_subjects(user_id)
            row = con.execute(
                "SELECT count(*) FROM gov.sign_in_failure WHERE subject IN (?, ?)",
                subjects,
            ).fetchone()
            con.execute(
                "DELETE FROM gov.sign_in_failure WHERE subject IN (?, ?)", subjects
            )
        return int(row[0]) if row else 0


def user_subjects(user_id: str) -> list[str]:
    return [f"password:{user_id}", f"code:{user_id}"]


def source_subject(source: str) -> str:
    """A source as counted: an IPv6 address by its /64 (one household or host
    holds a whole /64 and could walk it), anything else as given."""
    kind, _, address = source.partition(":")
    if kind != "ip":
        return f"source:{source}"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"source:{source}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client of a dual-stack server
            return f"source:ip:{ip.ipv4_mapped}"
        return f"source:ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"source:ip:{ip}"


def address_source(host: str | None) -> str:
    """The source of a request from ``host`` (the web site and the API alike: a
    guesser gains nothing by switching doors)."""
    return f"ip:{host or 'unknown'}"
