"""Browser sessions of the web door: who is signed in, each form's CSRF token (the
sign-in throttle is the warehouse's, shared by every door: governance/throttle.py).

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

__all__ = ["SessionStore", "WebSession"]


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
