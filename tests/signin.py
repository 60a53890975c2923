"""Signing in from tests: a steward admin and a token for the CLI."""

from __future__ import annotations

from backbone import Warehouse
from backbone.governance import Principal, Role


def steward(wh: Warehouse, partner: str) -> Principal:
    """The warehouse's steward admin ``steward`` (added when missing: by the setup
    session while the warehouse has no user, else by its first steward admin)."""
    if not any(u.user_id == "steward" for u in wh.users.list()):
        admin = next((u for u in wh.users.list() if u.role is Role.steward_admin), None)
        with wh.session(admin) as s:
            wh.users.add(s, "steward", partner=partner, role=Role.steward_admin)
    return wh.users.get("steward")


def steward_env(wh: Warehouse, partner: str) -> dict[str, str]:
    """Environment that signs CLI commands in as the steward admin."""
    admin = steward(wh, partner)
    with wh.session(admin) as s:
        issued = wh.users.issue_token(s, admin.user_id)
    return {"BACKBONE_TOKEN": issued.token}
