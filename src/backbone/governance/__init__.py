"""Governance below every interface: principals, the policy layer, governed access,
the release gate, the audit trail and retention.

Every door (CLI, web, REST, Python) reads person-level data only through
:class:`Access` (``wh.access(principal, purpose)``), which asks the policy layer,
materializes only permitted rows and fields, and writes to the audit log.
"""

from backbone.governance.access import Access, Keys, Materialized, locked_connection
from backbone.governance.audit import AuditEntry, AuditLog, Verification, system_clock
from backbone.governance.policy import Grant, Refusal
from backbone.governance.principals import Principal, Principals, Role
from backbone.governance.release import Release, ReleaseGate
from backbone.governance.retention import Purge, Retention

__all__ = [
    "Access",
    "AuditEntry",
    "AuditLog",
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
