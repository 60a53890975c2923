"""Commands for partners and the promises between them: ``partner``, ``agreement``,
``commitment``, ``feed``, ``request``, ``status`` and ``digest``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from backbone.cli.common import (
    ForceOption,
    FormatOption,
    OnOption,
    OutputForm,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _plain,
    _quiet_spinner,
    ask,
    doors,
    emit,
    may_write,
    maybe_signed_in,
    parse_date,
    reading,
    signed_in,
    write_file,
)
from backbone.errors import NotFoundError, UserError

if TYPE_CHECKING:
    from backbone.governance.access import Access
    from backbone.partners.agreements.store import VersionRecord
    from backbone.warehouse import Warehouse as WarehouseType

partner_app = typer.Typer(
    help="Partners: organizations, contacts, schools and sites.", no_args_is_help=True
)
agreement_app = typer.Typer(
    help="Data-sharing agreements as living documents.", no_args_is_help=True
)
commitment_app = typer.Typer(
    help="Promises partners make to each other.", no_args_is_help=True
)
feed_app = typer.Typer(
    help="The datasets each partner has agreed to send.", no_args_is_help=True
)
request_app = typer.Typer(
    help="Data-use requests and their review.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(partner_app, name="partner")
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(commitment_app, name="commitment")
    app.add_typer(feed_app, name="feed")
    app.add_typer(request_app, name="request")
    app.command("status")(status)
    app.command("digest")(digest)


def _state(version: VersionRecord | None, day: date) -> str:
    """What a version means on a day: running, ended, suspended, or nothing in force."""
    from backbone.partners.agreements.inforce import VersionState

    return str(VersionState(version, day))


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


# --- partner ------------------------------------------------------------------------


@partner_app.command("add")
def partner_add(
    partner_id: Annotated[str, typer.Argument(help="Short id, e.g. d09-eastfield.")],
    name: Annotated[str, typer.Option(help="The organization's name.")],
    kind: Annotated[
        str,
        typer.Option(
            help="school_district, community_organization, higher_education_agency, government_agency, funder, research or backbone."
        ),
    ],
    contact: Annotated[
        list[str] | None, typer.Option(help="'Name, role, email' (repeatable).")
    ] = None,
    school: Annotated[
        list[str] | None,
        typer.Option(help="'CODE=Name' of a school or site it owns (repeatable)."),
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Register a partner with its contacts and schools or sites (a steward admin;
    in a new warehouse with no user yet, whoever sets it up)."""
    with doors(), Warehouse.open(warehouse) as wh:
        from backbone.partners import Contact, Partner

        contacts = tuple(Contact.parse(c) for c in contact or [])
        sites = []
        for s in school or []:
            code, sep, label = s.partition("=")
            if not sep or not code.strip() or not label.strip():
                raise UserError(
                    f"School {s!r} should read 'CODE=Name', e.g. 'HS01=Eastfield High School'."
                )
            sites.append((code.strip(), label.strip()))
        with wh.session(maybe_signed_in(wh, user, token)) as session:
            wh.partners.add(
                session, Partner(partner_id, name, kind), contacts, tuple(sites)
            )
        _plain().print(
            f"Registered {partner_id} ({kind}) with {len(contacts)} contacts and {len(sites)} schools or sites."
        )


@partner_app.command("import")
def partner_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="A partnership directory (partnership.yaml or .json), or the folder "
            "holding it; the format is in docs/PARTNERSHIP.md."
        ),
    ],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Register a whole partnership from its directory file: partners, schools and
    sites, programs, initiatives, institutions, school years and calendars (made
    from first and last day and holidays, or listed). Checked whole first: nothing is
    registered if any entry is wrong. Entries already registered are left as they
    are, so the file can grow and be imported again."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(maybe_signed_in(wh, user, token)) as session:
            done = wh.partners.import_directory(session, path)
        _plain().print(f"Registered {done}.")


@partner_app.command("list")
def partner_list(
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """List partners."""
    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        table = _table("Partners", "id", "name", "kind", "contacts", "schools/sites")
        for p in wh.partners.list():
            table.add_row(
                p.partner_id,
                p.name,
                p.kind,
                str(len(wh.partners.contacts(p.partner_id))),
                str(len(wh.partners.schools(p.partner_id))),
            )
        emit(table, form)


def _agreements_of(wh: WarehouseType, access: Access) -> set[str]:
    """The agreements the reader is a party to (the steward: all)."""
    return {v.agreement_id for v in wh.agreements_for(access)}


def _party_to(wh: WarehouseType, access: Access, agreement_id: str) -> None:
    """Refuse an agreement the reader is not a party to as if it did not exist."""
    if agreement_id not in _agreements_of(wh, access):
        raise NotFoundError(
            f"no agreement {agreement_id!r} of yours; `backbone agreement list` "
            "shows them."
        )


def _closed(day: date | None) -> str:
    return f" (closed after {day.isoformat()})" if day else ""


@partner_app.command("show")
def partner_show(
    partner_id: str,
    warehouse: WarehouseOption = Path("warehouse"),
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Everything about one partner: contacts, schools, programs, and the
    agreements and feeds you may see of it (signed in; the steward: all)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        day = parse_date(on)
        p = wh.partners.get(partner_id)
        mine = _agreements_of(wh, access)
        scope = access.submission_scope()
        console = _plain()
        console.print(f"{p.name} ({p.partner_id}), {p.kind.replace('_', ' ')}")
        for c in wh.partners.contacts(partner_id):
            console.print(
                f"  contact: {c.name}{f', {c.role}' if c.role else ''} <{c.email}>"
            )
        schools = wh.partners.schools(partner_id)
        if schools:
            console.print(
                f"  schools and sites ({len(schools)}): "
                + "; ".join(
                    f"{s.name} [{s.school_id}]{_closed(s.closed_on)}" for s in schools
                )
            )
        for prog in wh.partners.programs(partner_id):
            console.print(
                f"  program: {prog.name} [{prog.program_id}]"
                + (f", {prog.program_type}" if prog.program_type else "")
                + _closed(prog.closed_on),
                markup=False,
                highlight=False,
            )
        for aid in wh.agreements.ids():
            if aid not in mine:
                continue
            latest = wh.agreements.versions(aid)[-1]
            if partner_id in latest.document.parties.all() or partner_id in {
                r.partner for r in latest.document.recipients
            }:
                current = wh.agreements.in_force(aid, day)
                state = _state(current, day)
                console.print(
                    f"  agreement: {aid} — {latest.document.title} ({state}; latest v{latest.version} {latest.status})"
                )
        for f in wh.feeds.list(partner_id) if scope in (None, partner_id) else []:
            console.print(
                f"  feed: {f.feed_id} ({f.cadence}) {', '.join(f.entities)} under {f.agreement_id}"
            )


# --- agreement ----------------------------------------------------------------------


@agreement_app.command("add")
def agreement_add(
    file: Path,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record a new agreement from its YAML document (version 1; steward admins)."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            v = wh.agreements.add(s, file)
        state = (
            f"in force from {v.in_force_from}"
            if v.status == "approved"
            else f"pending approval by {', '.join(v.awaiting)}"
        )
        _plain().print(f"Recorded {v.ref}: {v.document.title} ({state}).")


@agreement_app.command("amend")
def agreement_amend(
    agreement_id: str,
    file: Path,
    effective: Annotated[
        str, typer.Option(help="Date the new version takes effect (YYYY-MM-DD).")
    ],
    summary: Annotated[str, typer.Option(help="What changed and why.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record the next version of an agreement; widening versions wait for approval."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            amended = wh.agreements.amend(
                s,
                agreement_id,
                file,
                effective=parse_date(effective, "--effective"),
                summary=summary,
            )
        v = amended.version
        console = _plain()
        console.print(
            f"Recorded {v.ref} ({v.change_class}), effective {v.effective_from}."
        )
        for c in amended.changes:
            console.print(f"  [{c.effect.value}] {c.describe()}")
        if v.status == "pending":
            console.print(
                f"It widens access, so it is pending until approved by: {', '.join(v.awaiting)}."
            )


@agreement_app.command("approve")
def agreement_approve(
    agreement_id: str,
    partner: Annotated[str, typer.Option(help="The approving party.")],
    version: Annotated[
        int | None, typer.Option(help="Version (default: the latest).")
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(
            help="Who signed for the party, e.g. 'Superintendent' (kept in the audit log)."
        ),
    ] = None,
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record a party's approval of a pending version, given on --on: an analyst of
    the party, or a steward admin on its behalf (the signed-in user is recorded)."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            v = wh.agreements.approve(
                s,
                agreement_id,
                partner,
                on=parse_date(on),
                version=version,
                title=title,
            )
        if v.status == "approved":
            _plain().print(
                f"{v.ref} is approved by every party and in force from {v.in_force_from}."
            )
        else:
            _plain().print(
                f"Approval recorded; {v.ref} still awaits {', '.join(v.awaiting)}."
            )


@agreement_app.command("withdraw")
def agreement_withdraw(
    agreement_id: str,
    version: int,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Withdraw a pending version (it stays in the history, never in force)."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            v = wh.agreements.withdraw(s, agreement_id, version)
        _plain().print(f"{v.ref} withdrawn.")


@agreement_app.command("list")
def agreement_list(
    warehouse: WarehouseOption = Path("warehouse"),
    on: OnOption = None,
    form: FormatOption = OutputForm.table,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """List the agreements you are a party to (the steward: all), with the
    version in force."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        day = parse_date(on)
        mine = _agreements_of(wh, access)
        table = _table(
            f"Agreements on {day}",
            "id",
            "title",
            "tier",
            "provider",
            "in force",
            "latest",
            "ends",
        )
        for aid in wh.agreements.ids():
            if aid not in mine:
                continue
            history = wh.agreements.versions(aid)
            latest = history[-1]
            current = wh.agreements.in_force(aid, day)
            doc = (current or latest).document
            table.add_row(
                aid,
                doc.title,
                doc.tier.value,
                doc.parties.provider,
                _state(current, day),
                f"v{latest.version} {latest.status}",
                str(doc.effective_to or "open"),
            )
        emit(table, form)


@agreement_app.command("show")
def agreement_show(
    agreement_id: str,
    on: OnOption = None,
    version: Annotated[
        int | None, typer.Option(help="Show this version instead.")
    ] = None,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Print the version in force on a day (default today), of an agreement you
    are a party to (the steward: any)."""
    from backbone.partners.agreements.document import dump_document

    with doors(), reading(warehouse, user, token) as (wh, access):
        _party_to(wh, access, agreement_id)
        day = parse_date(on)
        v = (
            wh.agreements.version(agreement_id, version)
            if version
            else wh.agreements.in_force(agreement_id, day)
        )
        if v is None:
            raise UserError(
                f"No version of {agreement_id} is in force on {day}; `backbone agreement history {agreement_id}` lists them."
            )
        # the document itself, never wrapped to a terminal: `> file.yaml` is valid
        # YAML (the first line is a comment)
        _quiet_spinner()
        typer.echo(
            f"# {v.ref}, {v.status}, in force from {v.in_force_from}; on {day}: "
            f"{_state(v, day)}"
        )
        typer.echo(dump_document(v.document), nl=False)


@agreement_app.command("history")
def agreement_history(
    agreement_id: str,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Every version, with its class, status and approvals (of an agreement you
    are a party to; the steward: any)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        _party_to(wh, access, agreement_id)
        table = _table(
            f"History of {agreement_id}",
            "version",
            "effective",
            "class",
            "status",
            "in force from",
            "summary",
            "approvals",
        )
        for v in wh.agreements.versions(agreement_id):
            table.add_row(
                str(v.version),
                str(v.effective_from),
                v.change_class,
                v.status,
                str(v.in_force_from or "—"),
                v.summary,
                "; ".join(f"{p} ({by}, {d})" for p, by, d in v.approvals) or "—",
            )
        emit(table, form)


@agreement_app.command("diff")
def agreement_diff(
    agreement_id: str,
    v1: int,
    v2: int,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Every change between two versions, classed as widening, narrowing or neutral
    (of an agreement you are a party to; the steward: any)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        _party_to(wh, access, agreement_id)
        changes = wh.agreements.diff(agreement_id, v1, v2)
        table = _table(f"{agreement_id} v{v1} → v{v2}", "effect", "change")
        for c in changes:
            table.add_row(c.effect.value, c.describe())
        _plain().print(table if changes else "No differences.")


@agreement_app.command("export")
def agreement_export(
    agreement_id: str,
    out: Annotated[
        Path, typer.Option(help="Folder to write the documents into (one per dataset).")
    ] = Path("."),
    form: Annotated[
        str, typer.Option("--format", help="odcs: Open Data Contract Standard v3 YAML.")
    ] = "odcs",
    on: OnOption = None,
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Write each dataset the version in force shares as an Open Data Contract
    Standard v3 document (the schema with the agreement's field classes; its
    purposes, recipients, retention and publication rules as custom properties),
    for data-governance tools. For the agreement's parties and the steward."""
    import re

    import yaml

    from backbone.api.questions import OdcsParams

    with doors():
        if form != "odcs":
            raise UserError(f"--format {form!r}: agreements export as odcs.")
        contracts = ask(
            "agreement_odcs",
            OdcsParams(agreement_id, parse_date(on) if on else None),
            warehouse,
            user,
            token,
        )
        names = [c.name for c in contracts]
        if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n) for n in names):
            raise UserError("the server sent a contract name that is not a file name.")
        targets = [out / f"{n}.odcs.yaml" for n in names]
        may_write(force, *targets)
        for c, target in zip(contracts, targets, strict=True):
            text = yaml.safe_dump(c.document, sort_keys=False, allow_unicode=True)
            write_file(target, text.encode(), "the contract")
    for target in targets:
        _plain().print(f"Wrote {target}")


@agreement_app.command("lint")
def agreement_lint(
    target: Annotated[
        str | None,
        typer.Argument(
            help="An agreement id or a YAML file; default: every recorded agreement."
        ),
    ] = None,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Check mandatory terms by legal basis; exits 1 if any error is found. A
    YAML file is checked as it is; recorded agreements (yours; the steward: all)
    after signing in."""
    from backbone.partners.agreements import Severity, lint_document, load_document

    with doors():
        if (
            target
            and target.lower().endswith((".yaml", ".yml"))
            and not Path(target).is_file()
        ):
            raise UserError(
                f"{target} does not exist; give an agreement id or the path of a YAML file."
            )
        if target and Path(target).is_file():
            results = {target: lint_document(load_document(Path(target)))}
        else:
            with reading(warehouse, user, token) as (wh, access):
                results = wh.lint_agreements(access, target)
        errors = 0
        console = _plain()
        for ref, findings in results.items():
            if not findings:
                console.print(f"{ref}: ok")
            for f in findings:
                errors += f.severity is Severity.error
                console.print(
                    f"{ref}: {f.severity.value}: {f.path}: {f.message}", highlight=False
                )
        if errors:
            raise UserError(
                f"{errors} error(s) in the agreements above; fix them before relying on them."
            )


@agreement_app.command("check")
def agreement_check(
    provider: Annotated[str, typer.Option(help="Partner providing the data.")],
    recipient: Annotated[str, typer.Option(help="Partner asking for it.")],
    entity: Annotated[
        str, typer.Option(help="Canonical entity, e.g. attendance_event.")
    ],
    purpose: Annotated[str, typer.Option(help="Declared purpose id.")],
    operation: Annotated[
        str,
        typer.Option(
            help="row_level_view, link, aggregate, export_microdata or download."
        ),
    ],
    field: Annotated[
        list[str] | None, typer.Option(help="Field asked for (repeatable).")
    ] = None,
    role: Annotated[str | None, typer.Option(help="Recipient's role.")] = None,
    link_with: Annotated[
        str | None, typer.Option(help="For link: the other partner.")
    ] = None,
    on: OnOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Ask the agreements whether a use is allowed on a day, and why (a use your
    partner provides, receives or is linked in; the steward: any)."""
    from backbone.partners.agreements import AccessRequest

    with doors(), reading(warehouse, user, token) as (wh, access):
        d = wh.check_use(
            access,
            AccessRequest(
                provider,
                recipient,
                entity,
                tuple(field or ()),
                purpose,
                operation,
                parse_date(on),
                role,
                link_with,
            ),
        )
        _plain().print(
            ("ALLOW " if d.allowed else "DENY ") + d.reason,
            highlight=False,
        )
        if not d.allowed:
            raise typer.Exit(1)


# --- commitments --------------------------------------------------------------------


@commitment_app.command("add")
def commitment_add(
    title: Annotated[str, typer.Argument(help="What was promised.")],
    owner: Annotated[str, typer.Option(help="Partner who will do it.")],
    due: Annotated[str, typer.Option(help="Due date (YYYY-MM-DD).")],
    person: Annotated[
        str | None, typer.Option(help="Person at the owner responsible.")
    ] = None,
    counterpart: Annotated[
        str | None, typer.Option(help="Partner it is owed to.")
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(help="Where it was promised, e.g. 'Oct partner meeting'."),
    ] = None,
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record a commitment made in a partner meeting (steward admins)."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            c = wh.commitments.add(
                s,
                title,
                owner=owner,
                due=parse_date(due, "--due"),
                made_on=parse_date(on),
                owner_person=person,
                counterpart=counterpart,
                context=context,
            )
        _plain().print(
            f"Commitment #{c.commitment_id}: {c.owner_partner_id} will {c.title!r} by {c.due_date}."
        )


@commitment_app.command("update")
def commitment_update(
    commitment_id: int,
    status: Annotated[
        str | None, typer.Option(help="open, in_progress, done or dropped.")
    ] = None,
    due: Annotated[str | None, typer.Option(help="New due date.")] = None,
    note: Annotated[str | None, typer.Option(help="What happened.")] = None,
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record progress on a commitment (a new dated entry in its history): an
    analyst of the owner, or a steward admin on its behalf."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            c = wh.commitments.update(
                s,
                commitment_id,
                on=parse_date(on),
                status=status,
                due=parse_date(due, "--due") if due else None,
                note=note,
            )
        _plain().print(
            f"Commitment #{c.commitment_id} is {c.status}, due {c.due_date}."
        )


@commitment_app.command("list")
def commitment_list(
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only overdue ones.")
    ] = False,
    owner: Annotated[str | None, typer.Option(help="Only this owner's.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Include done and dropped ones.")
    ] = False,
    on: OnOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """List commitments (open ones by default): your partner's, owed by it or to
    it (the steward: all)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        day = parse_date(on)
        items = wh.commitments_for(
            access, on=day, owner=owner, overdue=overdue, open_only=not all_
        )
        table = _table(
            f"Commitments on {day}",
            "#",
            "what",
            "owner",
            "person",
            "owed to",
            "due",
            "status",
        )
        for c in items:
            due = (
                f"{c.due_date} ({c.days_late(day)} days late)"
                if c.overdue(day)
                else str(c.due_date)
            )
            table.add_row(
                str(c.commitment_id),
                c.title,
                c.owner_partner_id,
                c.owner_person or "—",
                c.counterpart_partner_id or "—",
                due,
                c.status,
            )
        emit(table, form)


@commitment_app.command("show")
def commitment_show(
    commitment_id: int,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """A commitment of your partner's (owed by it or to it; the steward: any) and
    its dated history."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        c, history = wh.commitment_for(access, commitment_id)
        console = _plain()
        console.print(
            f"#{c.commitment_id} {c.title} — {c.owner_partner_id} ({c.owner_person or 'no one named'}), "
            f"owed to {c.counterpart_partner_id or 'the partnership'}, due {c.due_date}, {c.status}"
        )
        for u in history:
            console.print(
                f"  {u.on} {u.status} (due {u.due})"
                f"{f' — {u.note}' if u.note else ''}{f' [{u.by}]' if u.by else ''}"
            )


# --- feeds --------------------------------------------------------------------------


@feed_app.command("add")
def feed_add(
    partner: str,
    feed_id: str,
    entity: Annotated[
        list[str], typer.Option(help="Canonical entity sent (repeatable).")
    ],
    cadence: Annotated[str, typer.Option(help="monthly, term or yearly.")],
    agreement: Annotated[str, typer.Option(help="Agreement that covers it.")],
    since: Annotated[str, typer.Option(help="First period expected (YYYY-MM-DD).")],
    description: Annotated[str | None, typer.Option()] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Declare a dataset a partner has agreed to send (steward admins)."""
    with doors(), Warehouse.open(warehouse) as wh:
        from backbone.partners.feeds import Feed

        feed = Feed(
            partner,
            feed_id,
            tuple(entity),
            cadence,
            agreement,
            description,
            parse_date(since, "--since"),
        )
        with wh.session(signed_in(wh, user, token)) as s:
            wh.feeds.add(s, feed)
        _plain().print(
            f"Feed {partner}/{feed_id} ({cadence}) recorded under {agreement}."
        )


@feed_app.command("list")
def feed_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's.")] = None,
    on: OnOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """List your partner's feeds (the steward: every partner's), with the late
    ones marked."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        scope = access.submission_scope()  # None: the steward's, all
        if scope is not None:
            if partner not in (None, scope):
                raise NotFoundError(f"no feeds of {partner!r} of yours.")
            partner = scope
        day = parse_date(on)
        from backbone.partners.status import late_feeds

        late = {(f.feed.partner_id, f.feed.feed_id): f.due for f in late_feeds(wh, day)}
        table = _table(
            f"Feeds on {day}",
            "partner",
            "feed",
            "entities",
            "cadence",
            "agreement",
            "state",
        )
        for f in wh.feeds.list(partner):
            due = late.get((f.partner_id, f.feed_id))
            table.add_row(
                f.partner_id,
                f.feed_id,
                ", ".join(f.entities),
                f.cadence,
                f.agreement_id,
                f"late (due {due})" if due else "on time",
            )
        emit(table, form)


# --- data-use requests --------------------------------------------------------------


@request_app.command("file")
def request_file(
    file: Path,
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """File a data-use request from its YAML document: an analyst of the requester,
    or a steward admin on its behalf."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            r = wh.requests.file(s, file, on=parse_date(on))
        _plain().print(
            f"Filed {r.request_id}; awaiting review by {', '.join(r.awaiting)}."
        )


@request_app.command("review")
def request_review(
    request_id: str,
    partner: Annotated[str, typer.Option(help="The reviewing provider.")],
    decision: Annotated[
        str, typer.Option(help="approve, approve_with_conditions or decline.")
    ],
    fit: Annotated[
        int, typer.Option(help="Rubric 1-4: fit with the partnership's goals.")
    ],
    protections: Annotated[int, typer.Option(help="Rubric 1-4: protections offered.")],
    minimum: Annotated[
        int, typer.Option(help="Rubric 1-4: only the minimum data necessary.")
    ],
    conditions: Annotated[str | None, typer.Option()] = None,
    comment: Annotated[str | None, typer.Option()] = None,
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record a provider's review of a request: the signed-in reviewer is an analyst
    of the provider, or a steward admin recording it on the provider's behalf."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            r = wh.requests.review(
                s,
                request_id,
                provider=partner,
                decision=decision,
                fit=fit,
                protections=protections,
                minimum_necessary=minimum,
                on=parse_date(on),
                conditions=conditions,
                comments=comment,
            )
        if r.status == "approved":
            _plain().print(
                f"{r.request_id} approved by every provider; draft agreements for signature: "
                f"{', '.join(r.drafts)} (in agreements/drafts/)."
            )
        elif r.status == "declined":
            _plain().print(f"{r.request_id} declined by {partner}.")
        else:
            _plain().print(
                f"Review recorded; {r.request_id} awaits {', '.join(r.awaiting)}."
            )


@request_app.command("list")
def request_list(
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """List the data-use requests you may read (your partner's, those for its
    data; the steward: all)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        table = _table(
            "Data-use requests", "id", "from", "title", "filed", "status", "awaiting"
        )
        for r in wh.requests_for(access):
            table.add_row(
                r.request_id,
                r.requester,
                r.title,
                str(r.filed_on),
                r.status,
                ", ".join(r.awaiting) or "—",
            )
        emit(table, form)


@request_app.command("show")
def request_show(
    request_id: str,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """A request you may read, its data, and its reviews."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        r = wh.request_for(access, request_id)
        d = r.document
        console = _plain()
        console.print(
            f"{r.request_id} {r.title} — from {r.requester}, filed {r.filed_on}, {r.status}"
        )
        console.print(
            f"  purpose: {d.purpose.id}: {d.purpose.description}",
            markup=False,
            highlight=False,
        )
        console.print(
            f"  period: {d.begin} to {d.end}; audience: {', '.join(d.audience)}"
        )
        console.print(f"  publication: {d.publication}", markup=False, highlight=False)
        for item in d.data:
            console.print(
                f"  data: {item.provider} {item.entity} ({', '.join(item.fields)}) at {item.level.value} level"
            )
        for rv in r.reviews:
            console.print(
                f"  review by {rv.provider} ({rv.reviewer}, {rv.reviewed_on}): {rv.decision}; fit {rv.fit}, "
                f"protections {rv.protections}, minimum {rv.minimum_necessary}"
                + (f"; conditions: {rv.conditions}" if rv.conditions else "")
                + (f"; {rv.comments}" if rv.comments else "")
            )
        if r.awaiting:
            console.print(
                f"  awaiting: {', '.join(r.awaiting)}", markup=False, highlight=False
            )
        if r.drafts:
            console.print(
                f"  draft agreements: {', '.join(r.drafts)}",
                markup=False,
                highlight=False,
            )


# --- status and digest --------------------------------------------------------------


def status(
    warehouse: WarehouseOption = Path("warehouse"),
    on: OnOption = None,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """The partnership at a glance: agreements, commitments, feeds, submissions,
    requests (the steward's)."""
    from backbone.partners.status import partnership_status

    with doors(), reading(warehouse, user, token) as (wh, access):
        access.require_steward("aggregate", "the partnership status")
        s = partnership_status(wh, parse_date(on))
    console = _plain()
    console.print(f"Partnership status on {s.on}")
    table = _table("Agreements needing attention", "agreement", "why")
    for v in s.expiring:
        table.add_row(
            v.ref,
            f"ends {v.document.effective_to} ({(v.document.effective_to - s.on).days} days)"
            if v.document.effective_to
            else "",
        )
    for v in s.pending:
        table.add_row(
            v.ref,
            f"{v.change_class} version pending approval by {', '.join(v.awaiting)}",
        )
    console.print(table)
    table = _table(
        "Overdue commitments by owner",
        "owner",
        "#",
        "what",
        "due",
        "days late",
        "owed to",
    )
    for owner, items in sorted(s.overdue.items()):
        for c in items:
            table.add_row(
                owner,
                str(c.commitment_id),
                c.title,
                str(c.due_date),
                str(c.days_late(s.on)),
                c.counterpart_partner_id or "—",
            )
    console.print(table)
    table = _table(
        "Late feeds", "partner", "feed", "cadence", "was due", "last received"
    )
    for late in s.late_feeds:
        table.add_row(
            late.feed.partner_id,
            late.feed.feed_id,
            late.feed.cadence,
            str(late.due),
            f"{late.last_received:%Y-%m-%d}" if late.last_received else "never",
        )
    console.print(table)
    table = _table("Last submission per partner", "partner", "name", "last submission")
    for last in s.last_submissions:
        table.add_row(
            last.partner_id,
            last.name,
            f"{last.received_at:%Y-%m-%d}" if last.received_at else "none yet",
        )
    console.print(table)
    table = _table(
        "Data-use requests in review", "request", "from", "title", "awaiting"
    )
    for r in s.requests:
        table.add_row(r.request_id, r.requester, r.title, ", ".join(r.awaiting))
    console.print(table)


def digest(
    partner: Annotated[str, typer.Option(help="The partner the digest is for.")],
    out: Annotated[
        Path, typer.Option(help="Folder to write the text and HTML into.")
    ] = Path("digests"),
    on: OnOption = None,
    force: ForceOption = False,
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Write a partner's weekly digest as text and HTML, with the warehouse's
    signed audit checkpoint (the partner's own users; the steward: any partner's)."""
    from backbone.partners.status import build_digest, digest_html, digest_text

    with doors(), reading(warehouse, user, token) as (wh, access):
        wh.digest_for(access, partner)  # whether this reader may: refused, audited
        d = build_digest(wh, partner, parse_date(on))
        checkpoint = wh.checkpoint(partner)
    text_path = out / f"digest-{partner}-{d.on}.txt"
    html_path = out / f"digest-{partner}-{d.on}.html"
    kept = out / f"digest-{partner}-{d.on}.checkpoint.json"
    with doors():
        may_write(force, text_path, html_path, kept)
        try:
            out.mkdir(parents=True, exist_ok=True)
            text_path.write_text(digest_text(d), encoding="utf-8")
            html_path.write_text(digest_html(d), encoding="utf-8")
            kept.write_text(checkpoint.to_json(), encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"Cannot write the digest into {out} ({exc.strerror}); choose another --out folder."
            ) from None
    _plain().print(
        f"Wrote {text_path} and {html_path}, and the warehouse's signed audit "
        f"checkpoint {kept} (entry {checkpoint.seq}) to send with them."
    )
    _plain().print(digest_text(d), highlight=False, markup=False)
