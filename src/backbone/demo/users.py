"""The demo partnership's people: the steward's admin and analyst, an uploader and
an analyst at every data partner, and a viewer at every funder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS, FUNDERS
from backbone.demo.governance import STEWARD
from backbone.demo.writers import CONSENT_CBO
from backbone.errors import PolicyDenied
from backbone.governance import Principal, Role

if TYPE_CHECKING:
    from backbone.warehouse import Warehouse

__all__ = ["DemoUsers", "create_demo_users", "governance_tour"]


@dataclass
class DemoUsers:
    steward: Principal
    analyst: Principal
    uploaders: dict[str, Principal] = field(default_factory=dict)
    analysts: dict[str, Principal] = field(default_factory=dict)
    viewers: dict[str, Principal] = field(default_factory=dict)


def create_demo_users(wh: Warehouse) -> DemoUsers:
    """Add the demo's users (no passwords: the demo acts for them in-process): the
    steward's admin by the setup, the others by that admin, each audited."""
    steward_id = STEWARD
    users = wh.users
    with wh.session() as setup:
        steward = users.add(
            setup,
            "steward",
            partner=steward_id,
            role=Role.steward_admin,
            display_name="Data steward",
        )
    with wh.session(steward) as s:
        analyst = users.add(
            s,
            "steward.analyst",
            partner=steward_id,
            role=Role.steward_analyst,
            display_name="Backbone analyst",
        )
        out = DemoUsers(steward, analyst)
        providers = [
            *(d.partner_id for d in DISTRICTS),
            *(c.partner_id for c in CBOS),
            COLLEGE_AGENCY[0],
        ]
        for partner in providers:
            out.uploaders[partner] = users.add(
                s, f"{partner}.uploader", partner=partner, role=Role.partner_uploader
            )
            out.analysts[partner] = users.add(
                s, f"{partner}.analyst", partner=partner, role=Role.partner_analyst
            )
        for funder, *_ in FUNDERS:
            out.viewers[funder] = users.add(
                s, f"{funder}.viewer", partner=funder, role=Role.funder_viewer
            )
    return out


def governance_tour(wh: Warehouse, users: DemoUsers) -> list[str]:
    """A few real requests through the policy layer and the release gate, as the
    demo's partners would make them; returns what each got."""
    lines = ["Governance (every request below went through the policy layer):"]
    district, analyst = next(iter(users.analysts.items()))
    served = wh.access(analyst, "early_warning").rows("program_participation")
    consented = sum(
        1
        for p in served.table.column("provider_partner_id").to_pylist()
        if p == CONSENT_CBO
    )
    lines.append(
        f"  {district} sees {served.table.num_rows:,} program rows about its own "
        f"students, as pseudonyms, under {', '.join(served.agreements)}; "
        f"{consented} are {CONSENT_CBO}'s, whose families' consent is current."
    )
    funder, viewer = next(iter(users.viewers.items()))
    try:
        wh.access(viewer, "initiative_outcomes").rows("program_participation")
        lines.append(f"  {funder} was given rows: THIS IS A LEAK.")
    except PolicyDenied as refused:
        lines.append(f"  {funder} asks for rows: refused ({refused}).")
    release = wh.access(viewer, "initiative_outcomes").count(
        "program_participation", ["program_id"]
    )
    lines.append(
        f"  {funder} counts participants by program: release {release.release_id}, "
        f"{release.cells} cells, {release.suppressed} suppressed, under "
        f"{', '.join(release.agreements)}."
    )
    check = wh.audit.verify()
    lines.append(
        f"  Audit log: {check.entries:,} entries, chain "
        f"{'intact' if check.ok else 'BROKEN at ' + str(check.first_bad)}; "
        f"head {check.head[:16]}… (`backbone audit verify`)."
    )
    return lines
