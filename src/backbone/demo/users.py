"""The demo partnership's people: the steward's admin and analyst, an uploader and
an analyst at every data partner, a viewer at every funder, and a researcher at the
college-data agency whose data-use request is approved and licensed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS, FUNDERS
from backbone.demo.governance import STEWARD
from backbone.demo.writers import CONSENT_CBO
from backbone.errors import PolicyDenied
from backbone.governance import Principal, Role
from backbone.partners.agreements.document import AgreementDocument
from backbone.yamltext import read_yaml

if TYPE_CHECKING:
    from backbone.warehouse import Warehouse

__all__ = ["DemoUsers", "create_demo_users", "governance_tour", "research_tour"]

RESEARCH_REQUEST = "REQ-2026-11"
RESEARCH_PROVIDER = DISTRICTS[0].partner_id
RESEARCH_PURPOSE = "college_persistence"


@dataclass
class DemoUsers:
    steward: Principal
    analyst: Principal
    uploaders: dict[str, Principal] = field(default_factory=dict)
    analysts: dict[str, Principal] = field(default_factory=dict)
    viewers: dict[str, Principal] = field(default_factory=dict)
    researchers: dict[str, Principal] = field(default_factory=dict)


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
        college = COLLEGE_AGENCY[0]
        out.researchers[college] = users.add(
            s,
            f"{college}.researcher",
            partner=college,
            role=Role.researcher,
            display_name="College-going researcher",
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


def _research_request(requester: str, today: date) -> dict[str, Any]:
    return {
        "request_id": RESEARCH_REQUEST,
        "requester": requester,
        "title": "Who persists in college: graduates' records, pseudonymously",
        "purpose": {
            "id": RESEARCH_PURPOSE,
            "description": "Study which high-school records go with persisting "
            "in college, to advise the districts' counselors.",
        },
        "data": [
            {
                "provider": RESEARCH_PROVIDER,
                "entity": "graduation",
                "fields": ["school_id", "graduation_date", "class_of_school_year"],
                "level": "pseudonymous",
            },
            {
                "provider": RESEARCH_PROVIDER,
                "entity": "student_academic_record",
                "fields": [
                    "school_year",
                    "cumulative_gpa",
                    "cumulative_earned_credits",
                ],
                "level": "pseudonymous",
            },
        ],
        "begin": (today - timedelta(days=1)).isoformat(),
        "end": date(today.year + 2, 6, 30).isoformat(),
        "audience": ["the agency's research office"],
        "publication": "A research brief with counts of 10 or more; no row leaves the agency.",
    }


def research_tour(wh: Warehouse, users: DemoUsers, today: date) -> list[str]:
    """A researcher's data-use request from filing to its first read: the
    researcher files it, the district's analyst approves it, the steward records
    the license drafted from it (as signed by every party, letting the researcher
    take a pseudonymous extract), and the researcher reads the rows it licenses."""
    college, researcher = next(iter(users.researchers.items()))
    reviewer = users.analysts[RESEARCH_PROVIDER]
    with wh.session(researcher) as s:
        filed = wh.requests.file_document(
            s, _research_request(college, today), on=today - timedelta(days=12)
        )
    with wh.session(reviewer) as s:
        reviewed = wh.requests.review(
            s,
            filed.request_id,
            provider=RESEARCH_PROVIDER,
            decision="approve_with_conditions",
            fit=4,
            protections=4,
            minimum_necessary=3,
            on=today - timedelta(days=5),
            conditions="Pseudonyms only; the extract stays on the agency's servers.",
            comments="Useful to our counselors.",
        )
    (agreement_id,) = reviewed.drafts
    draft = read_yaml(
        (wh.path / "agreements" / "drafts" / f"{agreement_id}.yaml").read_text(
            encoding="utf-8"
        )
    )
    # the signed license names the researchers and lets them take the extract
    draft["recipients"][0] |= {
        "roles": ["researcher"],
        "operations": ["row_level_view", "export_microdata", "aggregate"],
    }
    signed = (today - timedelta(days=2)).isoformat()
    draft["signatories"] = [
        {"partner": RESEARCH_PROVIDER, "name": "Superintendent", "signed": signed},
        {"partner": STEWARD, "name": "Executive Director", "signed": signed},
        {"partner": college, "name": "Agency Director", "signed": signed},
    ]
    with wh.session(users.steward) as s:
        license = wh.agreements.add_document(
            s,
            AgreementDocument.model_validate(draft),
            source=f"agreements/drafts/{agreement_id}.yaml",
        )
    rows = wh.access(researcher, RESEARCH_PURPOSE).rows(
        "graduation",
        providers=[RESEARCH_PROVIDER],
        fields=list(_research_request(college, today)["data"][0]["fields"]),
    )
    return [
        f"  {researcher.user_id} filed {filed.request_id}; {RESEARCH_PROVIDER} "
        f"approved it with conditions; the steward recorded {license.ref}, and the "
        f"researcher reads {rows.table.num_rows:,} graduation rows under it, as "
        "pseudonyms (no names, birth dates or local ids)."
    ]
