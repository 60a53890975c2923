"""``backbone demo run`` below the door: generate the community, build its warehouse
and run every stage, returning what happened as data for any door to render.

The steward's admin is created right after the partners are registered (by the
setup, as in any new warehouse), and everything after that is done as a signed-in
user: the steward records the paperwork and links, each partner's uploader sends
its own files, and every step leaves its audit entry.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from backbone.demo.early_warning import early_warning_tour
from backbone.demo.generate import GenerateSummary, expected_steps, generate
from backbone.demo.governance import record_governance
from backbone.demo.ingest import (
    IngestSummary,
    RefusedColumns,
    ingest_community,
    submission_plan,
)
from backbone.demo.outcomes import outcomes_tour
from backbone.demo.users import (
    DemoUsers,
    create_demo_users,
    governance_tour,
    research_tour,
)
from backbone.errors import UserError
from backbone.governance.policy import IDENTITY_RESOLUTION
from backbone.linkage.link import LinkSummary
from backbone.linkage.persons import Evaluation
from backbone.warehouse import Warehouse, WarehouseInfo

__all__ = ["DemoProgress", "DemoRun", "run_demo"]


class DemoProgress(Protocol):
    """How a door hears about the demo's progress: a phase starts (with the number of
    steps it has, when known), then steps advance with a message."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def step(self, message: str, *, advance: bool = True) -> None: ...


class _Silent:
    def phase(self, name: str, total: int | None = None) -> None:
        del name, total

    def step(self, message: str, *, advance: bool = True) -> None:
        del message, advance


@dataclass(frozen=True)
class DemoRun:
    """What ``run_demo`` did, for a door to show."""

    community: Path
    warehouse: Path
    generated: GenerateSummary
    registered: dict[str, int]
    ingested: IngestSummary
    linked: LinkSummary
    accuracy: Evaluation
    tour: list[str]
    token_file: Path
    facts: WarehouseInfo
    refused_columns: tuple[RefusedColumns, ...] = ()
    sign_ins: tuple[tuple[str, str, str], ...] = ()
    """(user, password, what the user is) for the web site, one per kind of user"""

    @property
    def reconciled(self) -> bool:
        i = self.ingested
        return i.rows_read == i.rows_loaded + i.rows_quarantined


def run_demo(
    out_dir: Path,
    *,
    students: int = 12_000,
    years: int = 6,
    seed: int = 42,
    progress: DemoProgress | None = None,
    today: date | None = None,
    replace: bool = False,
) -> DemoRun:
    """Generate a community in ``out_dir/community`` and build ``out_dir/warehouse``
    from it. A warehouse or community already there is replaced only when
    ``replace``: a warehouse holds users, an audit log and a key nobody can remake."""
    say = progress or _Silent()
    today = today or date.today()
    community = out_dir / "community"
    warehouse = out_dir / "warehouse"
    if warehouse.exists() and any(warehouse.iterdir()):
        if not (warehouse / "backbone.toml").exists():  # not even with --force
            raise UserError(
                f"{warehouse} holds files that are not a warehouse; choose another "
                "--out so nothing there is lost."
            )
        if not replace:
            raise UserError(
                f"{warehouse} already holds a warehouse (its users, audit log and key "
                "would be lost); pass --force to replace it, or choose another --out."
            )
    say.phase("generating", expected_steps(years))
    generated = generate(
        community,
        students=students,
        years=years,
        seed=seed,
        last_year=2026,
        progress=say.step,
        replace=replace,
    )
    if warehouse.exists():
        shutil.rmtree(warehouse)  # replacing it was asked for
    with Warehouse.init(warehouse, name="Demo community warehouse") as wh:
        say.phase("registering the partnership")
        with wh.session() as setup:  # a new warehouse: no user yet
            registered = wh.partners.import_directory(
                setup, community / "community.json"
            ).counts()
        users = create_demo_users(wh)
        registered |= record_governance(wh, community, today, by=users.steward)
        registered["users"] = len(wh.users.list())
        say.phase("submitting", len(submission_plan(community)))
        ingested = ingest_community(
            wh,
            community,
            today,
            progress=lambda m: say.step(f"submitting {m}"),
            uploaders=users.uploaders,
            steward=users.steward,
        )
        say.phase("linking partner records to persons")
        with wh.session(users.steward, purpose=IDENTITY_RESOLUTION) as s:
            linked = wh.linkage.run(s, progress=lambda m: say.step(m, advance=False))
        accuracy = wh.linkage.evaluate(
            wh.access(users.steward, IDENTITY_RESOLUTION), community / "truth"
        )
        tour = governance_tour(wh, users)
        say.phase("computing early-warning indicators")
        tour += early_warning_tour(wh, users, out_dir / "charts")
        say.phase("evaluating the funders' initiatives")
        tour += outcomes_tour(wh, users, community / "truth", out_dir / "charts")
        # last, so the license it ends with changes nothing the tours above show
        say.phase("a researcher's data-use request")
        tour += research_tour(wh, users, today)
        registered["requests"] += 1
        registered["agreements"] += 1
        registered["agreement versions"] += 1
        token_file = out_dir / "steward.token"
        with wh.session(users.steward) as s:
            issued = wh.users.issue_token(
                s, users.steward.user_id, label="demo", days=30
            )
        token_file.write_text(issued.token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        sign_ins = _web_sign_ins(wh, users)
        facts = wh.info(users.steward)
    return DemoRun(
        community=community,
        warehouse=warehouse,
        generated=generated,
        registered=registered,
        ingested=ingested,
        linked=linked,
        accuracy=accuracy,
        tour=tour,
        token_file=token_file,
        facts=facts,
        refused_columns=ingested.refused_columns,
        sign_ins=sign_ins,
    )


def _web_sign_ins(wh: Warehouse, users: DemoUsers) -> tuple[tuple[str, str, str], ...]:
    """A fresh password for one user of each kind, set by the steward (audited),
    so that each role can be tried on the web site (`backbone serve`)."""
    district = next(iter(users.analysts))
    organization = (
        "c02-eastside"
        if "c02-eastside" in users.uploaders
        else next(p for p in users.uploaders if p.startswith("c"))
    )
    funder = next(iter(users.viewers))
    chosen = (
        (users.steward.user_id, "the steward's admin"),
        (users.analyst.user_id, "the steward's analyst"),
        (users.analysts[district].user_id, f"{district}'s analyst"),
        (users.uploaders[organization].user_id, f"{organization}'s uploader"),
        (users.viewers[funder].user_id, f"{funder}'s viewer"),
        *(
            (researcher.user_id, f"{partner}'s researcher")
            for partner, researcher in users.researchers.items()
        ),
    )
    out = []
    with wh.session(users.steward) as s:
        for user_id, who in chosen:
            password = secrets.token_urlsafe(9)
            wh.users.set_password(s, user_id, password)
            out.append((user_id, password, who))
    return tuple(out)
