"""Commands for governance: ``user``, ``rows``, ``count``, ``export rows``, ``audit``,
``retention``. Doors only: the warehouse's policy layer decides."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from backbone.cli.common import (
    ForceOption,
    FormatOption,
    OutputForm,
    PurposeOption,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _plain,
    ask,
    doors,
    emit,
    export_target,
    may_write,
    maybe_signed_in,
    notes,
    parse_date,
    print_release,
    reading,
    signed_in,
    write_file,
)
from backbone.errors import UserError

if TYPE_CHECKING:
    from backbone.governance.audit import AuditHead

user_app = typer.Typer(help="Users, their roles and tokens.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The hash-chained audit log: verify it, report disclosures.",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Destroy data whose agreements have ended.", no_args_is_help=True
)


def register(app: typer.Typer, export_app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")
    app.add_typer(retention_app, name="retention")
    app.command("rows")(rows)
    app.command("count")(count)
    export_app.command("rows")(export_rows)


def _new_password(ask: bool) -> str | None:
    if not ask:
        return None
    given = os.environ.get("BACKBONE_NEW_PASSWORD")
    if given is not None:
        return given
    return str(typer.prompt("New password", hide_input=True, confirmation_prompt=True))


# --- users --------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    user_id: Annotated[str, typer.Argument(help="The new user's id, e.g. j.chen.")],
    partner: Annotated[str, typer.Option(help="The partner the user works for.")],
    role: Annotated[
        str,
        typer.Option(
            help="steward_admin, steward_analyst, partner_analyst, partner_uploader, "
            "funder_viewer or researcher."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password: Annotated[
        bool,
        typer.Option(
            "--password", help="Set a password (asked for, or $BACKBONE_NEW_PASSWORD)."
        ),
    ] = False,
    expires: Annotated[
        str | None, typer.Option(help="No access after this day (YYYY-MM-DD).")
    ] = None,
    training_until: Annotated[
        str | None,
        typer.Option(help="Confidentiality training valid until (YYYY-MM-DD)."),
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Add a user. Sign in as a steward admin; a new warehouse's first user (its
    steward admin) needs no sign-in."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(maybe_signed_in(wh, user, token)) as s,
    ):
        added = wh.users.add(
            s,
            user_id,
            partner=partner,
            role=role,
            display_name=name,
            password=_new_password(password),
            expires_on=parse_date(expires, "--expires") if expires else None,
            training_until=(
                parse_date(training_until, "--training-until")
                if training_until
                else None
            ),
        )
    _plain().print(f"Added {added.user_id}: {added.role.value} of {added.partner_id}.")


@user_app.command("list")
def user_list(
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """Users with their partner, role and state (the steward's)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        states = {u.principal.user_id: u for u in wh.users.list_for(access)}
        users = [u.principal for u in states.values()]
        today = wh.today()
    table = Table(title=f"{len(users)} users")
    for column in ("user", "partner", "role", "expires", "training until", "state"):
        table.add_column(column)
    for u in users:
        table.add_row(
            u.user_id,
            u.partner_id,
            u.role.value,
            str(u.expires_on or ""),
            str(u.training_until or ""),
            u.lapsed(today)
            or (
                "locked out (failed sign-ins)" if states[u.user_id].locked else "active"
            ),
        )
    emit(table, form)


@user_app.command("disable")
def user_disable(
    user_id: Annotated[str, typer.Argument(help="The user to disable.")],
    reason: Annotated[str, typer.Option(help="Why; kept on record.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Disable a user and revoke the user's tokens at once (steward admins)."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        wh.users.disable(s, user_id, reason=reason)
    _plain().print(f"Disabled {user_id}; the user's tokens are revoked.")


@user_app.command("unlock")
def user_unlock(
    user_id: Annotated[str, typer.Argument(help="The user to unlock.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Let a user locked out by failed sign-ins try again at once (steward admins;
    audited). Their failed attempts stay in the audit log."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        cleared = wh.users.unlock(s, user_id)
    _plain().print(
        f"Unlocked {user_id}." if cleared else f"{user_id} was not locked out."
    )


@user_app.command("password")
def user_password(
    user_id: Annotated[str, typer.Argument(help="Whose password to set.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Set a password (your own, or anyone's as a steward admin)."""
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        new = _new_password(True)
        assert new is not None
        with wh.session(principal) as s:
            wh.users.set_password(s, user_id, new)
    _plain().print(f"Password of {user_id} set.")


@user_app.command("token")
def user_token(
    user_id: Annotated[str, typer.Argument(help="Whose token to issue.")],
    days: Annotated[int, typer.Option(help="Days until it expires.")] = 90,
    no_expiry: Annotated[
        bool,
        typer.Option(
            "--no-expiry",
            help="A token that never expires (for a partner's scheduled job; "
            "recorded as such; revoke it when the job ends).",
        ),
    ] = False,
    label: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Issue an API token (shown once; only its hash is kept). A new warehouse's
    one steward admin, with no password and no token yet, gets its first without
    signing in."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(maybe_signed_in(wh, user, token)) as s,
    ):
        issued = wh.users.issue_token(
            s, user_id, label=label, days=None if no_expiry else days
        )
    _plain().print(issued.token)
    until = f" until {issued.expires_at:%Y-%m-%d}" if issued.expires_at else ""
    typer.echo(
        f"Token {issued.token_id} for {user_id}{until}; keep it secret, it is not "
        "shown again. Use it with --token or BACKBONE_TOKEN.",
        err=True,
    )


@user_app.command("revoke")
def user_revoke(
    token_id: Annotated[
        str,
        typer.Argument(
            help="The token's id, as `user token` said it (bbt_<id>_<secret>: the "
            "part between the first and second underscore)."
        ),
    ],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Revoke an API token at once (your own, or anyone's as a steward admin); a
    request under it is refused from then on."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        token_id = token_id.split("_")[1] if token_id.startswith("bbt_") else token_id
        wh.users.revoke_token(s, token_id)
    _plain().print(f"Token {token_id} revoked.")


# --- reading data ---------------------------------------------------------------------


EntityArgument = Annotated[str, typer.Argument(help="An entity, e.g. enrollment.")]
ProviderOption = Annotated[
    list[str] | None, typer.Option(help="Only this provider's rows (repeatable).")
]
FieldOption = Annotated[
    list[str] | None, typer.Option(help="Only these fields (repeatable).")
]


def rows(
    entity: EntityArgument,
    purpose: PurposeOption,
    provider: ProviderOption = None,
    field: FieldOption = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """Row-level view of an entity: only the rows and fields the agreements give you
    for this purpose (your own data, and others' as their agreements grant)."""
    from backbone.api.questions import RowsParams

    with doors():
        # rows for a program (CSV, JSON) are an extract: exporting must be permitted
        m = ask(
            "rows",
            RowsParams(
                entity,
                purpose,
                provider=provider,
                field=field,
                limit=limit,
                extract=None
                if form is OutputForm.table
                else f"standard output ({form})",
            ),
            warehouse,
            user,
            token,
        )
    table = Table(title=f"{m.total_rows:,} rows of {entity}")
    for column in m.table.column_names:
        table.add_column(column)
    for r in m.table.to_pylist():
        table.add_row(*("" if v is None else str(v) for v in r.values()))
    emit(table, form)
    console = notes(form)
    for g in m.grants:
        console.print(f"{g.provider}: {g.reason} ({g.access.value})")
    for r in m.refusals:
        console.print(f"{r.provider}: not shown, {r.reason}")
    if m.protection:
        console.print(m.protection)


def export_rows(
    entity: EntityArgument,
    out: Annotated[Path, typer.Option(help="CSV or .parquet file to write.")],
    purpose: PurposeOption,
    provider: ProviderOption = None,
    field: FieldOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    force: ForceOption = False,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Export the rows you may export (the agreements' export_microdata)."""
    with doors():
        form = export_target(out, force)
        with Warehouse.open(warehouse) as wh:
            access = wh.access(signed_in(wh, user, token), purpose)
            export = access.export(
                entity, form, destination=str(out), providers=provider, fields=field
            )
        write_file(
            out, export.content, "the export, which the audit log records as made"
        )
    _plain().print(
        f"Wrote {export.table.num_rows:,} rows of {entity} to {out} "
        f"(under {', '.join(export.agreements) or 'your own data'}); the export is "
        "recorded."
    )
    protection = export.materialized.protection
    if protection:
        _plain().print(protection.note())


def count(
    entity: EntityArgument,
    purpose: PurposeOption,
    by: Annotated[
        list[str] | None, typer.Option(help="A dimension (repeatable, at most 2).")
    ] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="COLUMN=VALUE filter (repeatable).")
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(help="Release with differential privacy, spending this epsilon."),
    ] = None,
    matching: Annotated[
        list[str] | None,
        typer.Option(
            help="COLUMN=VALUE: also count those matching it, and the rate (repeatable)."
        ),
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Persons per group, through the release gate: small cells and the cells that
    would give them away are suppressed; the release is recorded in the ledger.
    With --matching, rates too (suppressed or top/bottom coded as agreed)."""
    from backbone.api.questions import CountParams

    with doors():
        release = ask(
            "count",
            CountParams(
                entity, purpose, by or [], where or [], matching or [], epsilon
            ),
            warehouse,
            user,
            token,
        )
    print_release(release, f"persons in {entity}")


# --- audit ----------------------------------------------------------------------------


def _anchor(text: str | None) -> AuditHead | None:
    from backbone.governance.audit import AuditHead

    if text is None:
        return None
    try:
        return AuditHead.parse(text)
    except ValueError:
        raise UserError(
            f"--anchor {text!r}: write it as SEQ:HASH, as `backbone audit head` prints."
        ) from None


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH handed out earlier; proves nothing was rewritten."),
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="A signed checkpoint file a partner kept (from a digest or a "
            "disclosure report); repeatable. Catches a chain cut short or rewritten "
            "before it.",
        ),
    ] = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Walk the hash chain; name the first edited, deleted or reordered entry."""
    from backbone.governance.checkpoints import read_checkpoint

    with doors():
        kept = []
        for path in checkpoints or []:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read the checkpoint {path} ({exc}).") from None
            kept.append(read_checkpoint(text, str(path)))
    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        result = wh.verify_audit(anchor=_anchor(anchor), checkpoints=kept)
    if result.ok:
        held = f"; holds {len(kept)} signed checkpoint(s)" if kept else ""
        _plain().print(
            f"Audit log intact: {result.entries:,} entries, head {result.head}{held}."
        )
        return
    _plain().print(
        f"Audit log BROKEN at entry {result.first_bad}: {result.problem}. "
        f"{result.entries:,} entries before it verify."
    )
    raise typer.Exit(1)


@audit_app.command("head")
def audit_head(warehouse: WarehouseOption = Path("warehouse")) -> None:
    """The newest entry's number and hash: give it to partners as an anchor."""
    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        head = wh.audit.head()
    _plain().print(str(head))


@audit_app.command("report")
def audit_report(
    partner: Annotated[str, typer.Option(help="Whose data's disclosures to list.")],
    since: Annotated[
        str | None, typer.Option(help="Only from this day (YYYY-MM-DD).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write a CSV file.")] = None,
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """Every disclosure of a partner's data (FERPA recordation, 34 CFR 99.32), for
    that partner's own users and the steward's admins."""
    start = parse_date(since, "--since") if since else None
    with doors():
        may_write(force, *([out, out.with_suffix(".checkpoint.json")] if out else []))
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        report = wh.audit.report(
            s, partner, since=None if start is None else _midnight(start)
        )
        checkpoint = wh.checkpoint(partner)
    entries = report.disclosures
    table = Table(title=f"Disclosures of {partner}'s data ({len(entries):,})")
    for column in ("#", "when", "what", "who", "purpose", "agreements", "rows/cells"):
        table.add_column(column)
    for e in entries:
        size = f"{e.rows:,} rows" if e.rows is not None else ""
        if e.cells is not None:
            size = f"{e.cells} cells, {e.suppressed or 0} suppressed"
        table.add_row(
            str(e.seq),
            f"{e.at:%Y-%m-%dT%H:%M:%S}",
            e.what + (f" -> {e.destination}" if e.destination else ""),
            f"{e.actor} ({e.actor_partner})",
            e.purpose or "",
            ", ".join(e.agreements) or "own data",
            size,
        )
    emit(table, form)
    kept = out.with_suffix(".checkpoint.json") if out is not None else None
    notes(form).print(
        f"Chain head {report.head}, signed by the warehouse"
        + (f" in {kept}" if kept else " (--out writes it to a file)")
        + ": keep it; `backbone audit verify --checkpoints FILE` proves later that "
        "this history was not cut short or rewritten."
    )
    if out is not None and kept is not None:
        with doors():
            from backbone.governance.audit import disclosure_csv

            write_file(out, disclosure_csv(report), "the report")
            write_file(kept, checkpoint.to_json().encode(), "the signed checkpoint")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


# --- retention ------------------------------------------------------------------------


@retention_app.command("due")
def retention_due(
    warehouse: WarehouseOption = Path("warehouse"),
    user: UserOption = None,
    token: TokenOption = None,
) -> None:
    """What the agreements say must be destroyed, and when it was due (the
    steward's)."""
    with doors(), reading(warehouse, user, token) as (wh, access):
        access.require_steward("aggregate", "what is due for destruction")
        due = wh.retention.due()
    if not due:
        _plain().print("Nothing is due for destruction.")
        return
    table = Table(title="Due for destruction")
    for column in ("provider", "entity", "agreement", "ended", "due"):
        table.add_column(column)
    for d in due:
        table.add_row(d.provider, d.entity, d.agreement, str(d.ended_on), str(d.due_on))
    _plain().print(table)


@retention_app.command("run")
def retention_run(
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Destroy what is due now, with a certificate in the audit log (a steward
    admin; run it daily, e.g. from cron with a token in BACKBONE_TOKEN)."""
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(signed_in(wh, user, token)) as s:
            purges = wh.retention.run(s)
        done = wh.retention.certificates()
    for p in purges:
        _plain().print(
            f"Destroyed {p.provider}'s {', '.join(p.entities)}: "
            f"{p.destroyed:,} rows, {p.raw_files} raw files; "
            f"certificate {p.certificate.name}."
        )
    if not done:
        _plain().print("Nothing was due; nothing has been destroyed.")
        return
    for c in done:
        _plain().print(
            f"destruction-{c.purge_id}: {c.provider} ({c.agreement}), "
            f"{c.rows_destroyed:,} rows, {c.purged_at:%Y-%m-%d}"
        )
