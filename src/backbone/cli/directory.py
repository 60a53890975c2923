"""Commands that register what a partnership has, one entry at a time: ``school``,
``program``, ``school-year``, ``calendar``, ``institution`` and ``descriptor``.

Each builds the entry in the directory format (docs/PARTNERSHIP.md) and hands it to
``PartnerRegistry.register``, which checks it as ``partner import`` checks a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from backbone.cli.common import (
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _plain,
    doors,
    maybe_signed_in,
    parse_date,
)
from backbone.errors import UserError

school_app = typer.Typer(
    help="Schools and sites: add, rename, close.", no_args_is_help=True
)
program_app = typer.Typer(help="Programs: add, rename, close.", no_args_is_help=True)
year_app = typer.Typer(help="School years the partnership uses.", no_args_is_help=True)
calendar_app = typer.Typer(
    help="Instructional calendars: from a file of dates, or made from first and last "
    "day, weekdays and holidays.",
    no_args_is_help=True,
)
institution_app = typer.Typer(
    help="Colleges and other postsecondary institutions.", no_args_is_help=True
)
descriptor_app = typer.Typer(
    help="A partner's own codes for canonical values.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(school_app, name="school")
    app.add_typer(program_app, name="program")
    app.add_typer(year_app, name="school-year")
    app.add_typer(calendar_app, name="calendar")
    app.add_typer(institution_app, name="institution")
    app.add_typer(descriptor_app, name="descriptor")


def _register(
    warehouse: Path,
    user: str | None,
    token: str | None,
    entries: dict[str, Any],
    what: str,
) -> None:
    with doors(), Warehouse.open(warehouse) as wh:
        with wh.session(maybe_signed_in(wh, user, token)) as session:
            done = wh.partners.register_entries(session, entries, what)
        _plain().print(f"Registered {done}.")


def _optional(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@school_app.command("add")
def school_add(
    partner_id: Annotated[str, typer.Argument(help="The district or organization.")],
    code: Annotated[str, typer.Argument(help="Its own code for the school or site.")],
    name: str,
    level: Annotated[
        str | None, typer.Option(help="Elementary, Middle, High or Site.")
    ] = None,
    lowest_grade: Annotated[str | None, typer.Option(help="e.g. Ninth grade.")] = None,
    highest_grade: Annotated[str | None, typer.Option()] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Add a school or site a partner owns; its id is PARTNER/CODE."""
    item = _optional(
        partner_id=partner_id,
        local_school_code=code,
        name=name,
        school_level=level,
        lowest_grade_level=lowest_grade,
        highest_grade_level=highest_grade,
    )
    what = f"add school {partner_id}/{code}"
    _register(warehouse, user, token, {"schools": [item]}, what)


@program_app.command("add")
def program_add(
    partner_id: Annotated[str, typer.Argument(help="Who runs it (a district may).")],
    program_id: Annotated[str, typer.Argument(help="e.g. P-READ.")],
    name: str,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type", help="A ProgramTypeDescriptor value, e.g. 'Remedial Education'."
        ),
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Add a program a partner runs."""
    item = _optional(
        program_id=program_id,
        partner_id=partner_id,
        program_name=name,
        program_type=type_,
    )
    _register(warehouse, user, token, {"programs": [item]}, f"add program {program_id}")


def _rename_command(kind: str) -> Callable[..., None]:
    def rename(
        item_id: Annotated[str, typer.Argument(help="The id (a school's is d1/63).")],
        name: Annotated[str, typer.Argument(help="The new name.")],
        user: UserOption = None,
        token: TokenOption = None,
        warehouse: WarehouseOption = Path("warehouse"),
    ) -> None:
        """Give it a new name; its id, and every record naming it, stay."""
        with doors(), Warehouse.open(warehouse) as wh:
            with wh.session(maybe_signed_in(wh, user, token)) as session:
                old = wh.partners.rename(session, kind, item_id, name)
            _plain().print(f"Renamed {kind} {item_id}: {old} -> {name.strip()}.")

    return rename


def _close_command(kind: str) -> Callable[..., None]:
    def close(
        item_id: Annotated[str, typer.Argument(help="The id (a school's is d1/63).")],
        on: Annotated[str, typer.Option(help="Its last day, YYYY-MM-DD.")],
        user: UserOption = None,
        token: TokenOption = None,
        warehouse: WarehouseOption = Path("warehouse"),
    ) -> None:
        """Record that it closed: its records stay; one that starts after its last
        day is quarantined (rule `closed`)."""
        with doors(), Warehouse.open(warehouse) as wh:
            day = parse_date(on, "--on")
            with wh.session(maybe_signed_in(wh, user, token)) as session:
                wh.partners.close(session, kind, item_id, day)
            _plain().print(f"Closed {kind} {item_id} after {day.isoformat()}.")

    return close


for _kind, _app in (("school", school_app), ("program", program_app)):
    _app.command("rename")(_rename_command(_kind))
    _app.command("close")(_close_command(_kind))


@year_app.command("add")
def school_year_add(
    school_year: Annotated[
        int, typer.Argument(help="Its ending year: 2026 for 2025-26.")
    ],
    begin: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Add a school year (any year from 1900)."""
    item = {"school_year": school_year, "begin_date": begin, "end_date": end}
    what = f"add school year {school_year}"
    _register(warehouse, user, token, {"school_years": [item]}, what)


@calendar_app.command("add")
def calendar_add(
    school_year: Annotated[int, typer.Argument(help="Its ending year: 2026.")],
    school: Annotated[
        list[str], typer.Option(help="A school's id, e.g. d1/63 (repeatable).")
    ],
    file: Annotated[
        Path | None,
        typer.Option(
            help="The instructional days, one date a line (a CSV's first column)."
        ),
    ] = None,
    first_day: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    last_day: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    weekday: Annotated[
        list[str] | None,
        typer.Option(help="Weekdays taught (repeatable; mon to fri if not given)."),
    ] = None,
    holiday: Annotated[
        list[str] | None,
        typer.Option(help="A day off, or a range 2025-12-22..2026-01-02 (repeatable)."),
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Add the instructional days of some schools in a school year; a day already
    registered for a school is kept, not doubled."""
    from backbone.partners.directory import calendar_dates_from_file

    item: dict[str, Any] = {"school_year": school_year, "school_ids": school}
    with doors():
        if (file is None) == (first_day is None and last_day is None):
            raise UserError(
                "Give either --file with the instructional days, or --first-day and "
                "--last-day (with --holiday and --weekday)."
            )
        if file is not None:
            item["instructional_dates"] = calendar_dates_from_file(file)
        else:
            item |= _optional(first_day=first_day, last_day=last_day, weekdays=weekday)
            item["holidays"] = holiday or []
    what = f"add the {school_year} calendar of {', '.join(school)}"
    _register(warehouse, user, token, {"calendars": [item]}, what)


@institution_app.command("add")
def institution_add(
    institution_id: Annotated[str, typer.Argument(help="e.g. its IPEDS unit id.")],
    name: str,
    level: Annotated[str | None, typer.Option(help="e.g. 4-year, 2-year.")] = None,
    control: Annotated[str | None, typer.Option(help="public or private.")] = None,
    state: Annotated[str | None, typer.Option()] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Add a college or other postsecondary institution."""
    item = _optional(
        institution_id=institution_id,
        name=name,
        level=level,
        control=control,
        state=state,
    )
    what = f"add institution {institution_id}"
    _register(warehouse, user, token, {"institutions": [item]}, what)


@descriptor_app.command("map")
def descriptor_map(
    partner_id: str,
    descriptor: Annotated[str, typer.Argument(help="e.g. SexDescriptor.")],
    local_code: Annotated[str, typer.Argument(help="The partner's code, e.g. F.")],
    canonical: Annotated[str, typer.Argument(help="The canonical value, e.g. Female.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Say what one of a partner's codes means; every mapping of that partner reading
    the descriptor uses it (a mapping's own codes come first). Mapped again, the
    newer meaning replaces the older."""
    item = {
        "partner_id": partner_id,
        "descriptor_name": descriptor,
        "local_code_value": local_code,
        "code_value": canonical,
    }
    what = f"map {partner_id}'s {descriptor} code {local_code!r} to {canonical!r}"
    _register(warehouse, user, token, {"descriptor_maps": [item]}, what)
