"""Browser sessions of the web door: who is signed in, each form's CSRF token, and
the sign-in throttle.

Sessions live in the server process (a restart signs everyone out); the cookie
carries only a random token. Each request looks the user up again in the
warehouse, so a disabled user's session ends at its next request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

__all__ = ["SessionStore", "SignInThrottle", "WebSession"]


@dataclass
class WebSession:
    token: str
    csrf: str
    user_id: str | None = None
    """None until signed in (the sign-in form has a session of its own, for CSRF)"""
    pending_user: str | None = None
    """whose password was right, while the second factor is asked"""
    pending_secret: str | None = None
    """a second factor being set up, until a code from it is entered"""
    started: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, sent or "")


class SessionStore:
    """Sessions by token; one idles out after ``idle_minutes`` and ends after
    ``max_hours`` whatever it does."""

    def __init__(self, idle_minutes: int, max_hours: int = 12) -> None:
        self._idle = idle_minutes * 60
        self._max = max_hours * 3600
        self._sessions: dict[str, WebSession] = {}
        self._made = 0
        self._lock = threading.Lock()

    def new(self, user_id: str | None = None) -> WebSession:
        session = WebSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        session.user_id = user_id
        with self._lock:
            self._sessions[session.token] = session
            self._made += 1
            if self._made % 256 == 0:  # sessions nobody came back to, swept
                now = time.monotonic()
                for token, old in list(self._sessions.items()):
                    if now - old.seen > self._idle or now - old.started > self._max:
                        del self._sessions[token]
        return session

    def get(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.seen > self._idle or now - session.started > self._max:
                del self._sessions[token]
                return None
            session.seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


class SignInThrottle:
    """Failed sign-ins by user: after ``failures`` in a row the user is locked out
    for ``lockout_minutes``; before that, each failure makes the next attempt wait
    one second more (the caller refuses early attempts without checking the
    password). A success clears the count."""

    def __init__(self, failures: int, lockout_minutes: int) -> None:
        self._limit = failures
        self._lockout = lockout_minutes * 60
        self._failed: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, user_id: str) -> float:
        """How long ``user_id`` must wait before its password is checked again."""
        with self._lock:
            count, last = self._failed.get(user_id, (0, 0.0))
        if not count:
            return 0.0
        pause = self._lockout if count >= self._limit else count
        return max(0.0, last + pause - time.monotonic())

    def failed(self, user_id: str) -> bool:
        """Count a failure; True when it locks the user out."""
        with self._lock:
            count, _ = self._failed.get(user_id, (0, 0.0))
            self._failed[user_id] = (count + 1, time.monotonic())
            return count + 1 >= self._limit

    def succeeded(self, user_id: str) -> None:
        with self._lock:
            self._failed.pop(user_id, None)
