"""Governance below every interface: principals, the policy layer, governed access,
the release gate, the audit trail and retention.

Every door (CLI, web, REST, Python) reads person-level data only through
:class:`Access` (``wh.access(principal, purpose)``), which asks the policy layer,
materializes only permitted rows and fields, and writes to the audit log.

The names below load on first use (PEP 562), so importing one light module such
as :mod:`backbone.governance.audit` does not pull in access, policy and release.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backbone.governance.access import (
        Access,
        Export,
        ExportFormat,
        Keys,
        Materialized,
        locked_connection,
    )
    from backbone.governance.audit import (
        AuditEntry,
        AuditHead,
        AuditLog,
        Verification,
        system_clock,
    )
    from backbone.governance.policy import Grant, Refusal
    from backbone.governance.principals import Principal, Principals, Role
    from backbone.governance.release import Release, ReleaseGate
    from backbone.governance.retention import Purge, Retention

# each public name, and the module that defines it
_HOMES = {
    "Access": "access",
    "Export": "access",
    "ExportFormat": "access",
    "Keys": "access",
    "Materialized": "access",
    "locked_connection": "access",
    "AuditEntry": "audit",
    "AuditHead": "audit",
    "AuditLog": "audit",
    "Verification": "audit",
    "system_clock": "audit",
    "Grant": "policy",
    "Refusal": "policy",
    "Principal": "principals",
    "Principals": "principals",
    "Role": "principals",
    "Release": "release",
    "ReleaseGate": "release",
    "Purge": "retention",
    "Retention": "retention",
}

__all__ = [
    "Access",
    "AuditEntry",
    "AuditHead",
    "AuditLog",
    "Export",
    "ExportFormat",
    "Grant",
    "Keys",
    "Materialized",
    "Principal",
    "Principals",
    "Purge",
    "Refusal",
    "Release",
    "ReleaseGate",
    "Retention",
    "Role",
    "Verification",
    "locked_connection",
    "system_clock",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value
