"""Signing in from tests: a steward admin and a token for the CLI."""

from __future__ import annotations

from backbone import Warehouse
from backbone.governance import Principal, Role


def steward(wh: Warehouse, partner: str) -> Principal:
    """The warehouse's steward admin ``steward`` (added when missing)."""
    if not any(u.user_id == "steward" for u in wh.users.list()):
        wh.users.add("steward", partner=partner, role=Role.steward_admin, by=None)
    return wh.users.get("steward")


def steward_env(wh: Warehouse, partner: str) -> dict[str, str]:
    """Environment that signs CLI commands in as the steward admin."""
    admin = steward(wh, partner)
    return {"BACKBONE_TOKEN": wh.users.issue_token(admin.user_id, by=admin).token}
