"""Commands for identity resolution: ``link``, ``person``, ``review``, ``export``, ``encode``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from backbone.cli.common import (
    EngineOption,
    ForceOption,
    FormatOption,
    OutputForm,
    PurposeOption,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _out,
    _plain,
    doors,
    emit,
    export_target,
    may_write,
    signed_in,
    working,
    write_file,
)
from backbone.errors import Conflict, InputFileError

if TYPE_CHECKING:
    from backbone.governance import Access
    from backbone.linkage import IdentityRecord, LinkSummary

# governance.policy.IDENTITY_RESOLUTION, written out so that building the command
# line (a default below) does not load the policy layer; tests/test_startup.py
# keeps the two the same
IDENTITY_RESOLUTION = "identity_resolution"

link_app = typer.Typer(
    help="Link partner records to persons; explain and evaluate links.",
    no_args_is_help=False,
    invoke_without_command=True,
)
person_app = typer.Typer(help="Linked persons.", no_args_is_help=True)
review_app = typer.Typer(
    help="Clerical review of uncertain pairs (run without a subcommand to review).",
    invoke_without_command=True,
)
export_app = typer.Typer(help="Give linked ids back to partners.", no_args_is_help=True)
encodings_app = typer.Typer(
    help="Privacy-preserving encodings partners send instead of names.",
    no_args_is_help=True,
)


def _linking(wh: Warehouse, user: str | None, token: str | None) -> Access:
    """The signed-in principal, for the steward's identity-resolution work."""
    return wh.access(signed_in(wh, user, token), IDENTITY_RESOLUTION)


def register(app: typer.Typer) -> None:
    app.add_typer(link_app, name="link")
    app.add_typer(person_app, name="person")
    app.add_typer(review_app, name="review")
    app.add_typer(export_app, name="export")
    app.add_typer(encodings_app, name="encodings")
    app.command("encode")(encode)


def print_link_summary(summary: LinkSummary) -> None:
    table = Table(title=f"Link run {summary.run_id}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("partner records", summary.records),
        ("pairs scored", summary.pairs_scored),
        ("linked by state student id", summary.deterministic_links),
        ("linked by the model", summary.auto_links),
        ("linked by encodings (Dice)", summary.encoded_links),
        ("waiting for review", summary.review_pairs),
        ("refused by constraints", summary.refused_by_constraints),
        ("persons", summary.persons),
        ("new persons", summary.new_persons),
        ("merges (logged)", summary.merges),
        ("splits (logged)", summary.splits),
    ):
        table.add_row(label, f"{value:,}")
    _out().print(table)
    if summary.model_note:
        note = summary.model_note
        _out().print(f"{note[0].upper()}{note[1:]}.")
    if summary.with_model:
        _out().print(
            "The model's pairs were linked from match probability "
            f"{summary.auto_link_probability:.3f} up, where by its own probabilities "
            "they are right as often as linkage.target_precision asks."
        )
    if summary.auto_link_dice is not None:
        _out().print(
            f"Encoded pairs were linked from Dice similarity {summary.auto_link_dice:.2f} "
            "up, where by the spread of the similarities they are right as often as "
            "linkage.target_precision asks."
        )
    from backbone.linkage.holdings import UNSERVED_ALERT

    for partner, records in summary.unserved:
        alert = records >= UNSERVED_ALERT
        _out().print(
            f"{'ALERT: ' if alert else ''}{records:,} of {partner}'s records "
            "are linked to persons other partners hold, and none of its own facts "
            "(an enrollment, a service) back them: they open nothing of the others' "
            "data until they do"
            + (" (recorded in the audit log)" if alert else "")
            + "; `backbone link unbacked` lists them."
        )
    saved = f"; model saved to {summary.model_path}" if summary.with_model else ""
    _out().print(
        f"Linked in {summary.seconds:.1f} s{saved}. Next: `backbone review` for "
        "uncertain pairs, `backbone person show ID`."
    )


@link_app.callback()
def link(
    ctx: typer.Context,
    retrain: Annotated[
        bool,
        typer.Option(help="Estimate the model again instead of reusing the saved one."),
    ] = False,
    engine: EngineOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Link every partner record to a person (run with no subcommand).

    The first run trains the model (EM) and saves it; later runs reuse it so new
    submissions do not move earlier links, unless --retrain.
    """
    if ctx.invoked_subcommand is not None:
        return
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        with (
            working("linking") as say,
            wh.session(principal, purpose=IDENTITY_RESOLUTION) as s,
        ):
            summary = wh.linkage.run(s, retrain=retrain, progress=say, engine=engine)
        print_link_summary(summary)


@link_app.command("unbacked")
def link_unbacked(
    partner: Annotated[
        str | None, typer.Option(help="Only this partner's records.")
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Records linked to persons other partners hold, that none of their partner's
    own facts back (the link run's alert): they open nothing of the others' data
    until facts arrive or a steward admin confirms them (`backbone link confirm`)."""
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        with wh.session(principal, purpose=IDENTITY_RESOLUTION) as s:
            holdings = wh.linkage.unbacked(s, partner)
    if holdings.confirmed:
        confirmed = Table(
            title=f"Confirmed by a steward admin ({_shown(len(holdings.confirmed), holdings.confirmed_total)})"
        )
        for column in ("partner", "record", "person", "by", "on", "why", "holds"):
            confirmed.add_column(column)
        for c in holdings.confirmed:
            confirmed.add_row(
                c.partner_id,
                c.local_id,
                str(c.person_id),
                c.confirmed_by,
                f"{c.confirmed_at:%Y-%m-%d}",
                c.reason,
                "yes" if c.holds else "no: linked to another person now",
            )
        _plain().print(confirmed)
    found = holdings.waiting
    if not found:
        _out().print(
            "No record waits: every linked record is backed by its partner's facts "
            "or a confirmation."
        )
        return
    table = Table(
        title=f"Unbacked records ({_shown(len(found), holdings.waiting_total)})"
    )
    for column in ("partner", "record", "person", "also held by", "submission"):
        table.add_column(column)
    for u in found:
        table.add_row(
            u.partner_id,
            u.local_id,
            str(u.person_id),
            ", ".join(u.others),
            "" if u.submission_id is None else str(u.submission_id),
        )
    _plain().print(table)
    _out().print(
        "Ask the partner about a record (`backbone submissions show ID`); confirm one "
        "it really serves with `backbone link confirm PARTNER RECORD --reason ...`."
    )


def _shown(listed: int, total: int) -> str:
    return f"{total:,}" if listed == total else f"the first {listed:,} of {total:,}"


@link_app.command("confirm")
def link_confirm(
    partner: Annotated[str, typer.Argument(help="The partner holding the record.")],
    record: Annotated[str, typer.Argument(help="The partner's local id of it.")],
    reason: Annotated[
        str, typer.Option(help="What shows that the partner serves this person.")
    ],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Confirm that a partner serves the person of one of its records (a steward
    admin's act, audited): the record then opens others' facts about the person
    as the partner's own facts would."""
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        with wh.session(principal) as s:
            wh.linkage.confirm_held(s, partner, record, reason)
    _plain().print(f"Confirmed: {partner}'s record {record} now counts as held.")


@link_app.command("withdraw")
def link_withdraw(
    partner: Annotated[str, typer.Argument(help="The partner holding the record.")],
    record: Annotated[str, typer.Argument(help="The partner's local id of it.")],
    reason: Annotated[str, typer.Option(help="Why the confirmation ends.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Withdraw a confirmation (`backbone link confirm`): the record opens nothing
    again until the partner's own facts back it. Audited."""
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        with wh.session(principal) as s:
            withdrawn = wh.linkage.withdraw_held(s, partner, record, reason)
    _plain().print(
        f"Withdrawn: {partner}'s record {record} no longer counts as held."
        if withdrawn
        else f"{partner}'s record {record} had no confirmation; nothing changed."
    )


@link_app.command("evaluate")
def link_evaluate(
    truth: Annotated[
        Path,
        typer.Option(
            help="A CSV or Parquet file, one row per record: partner_id, local_id, "
            "person_key (or a demo community's truth/ folder)."
        ),
    ],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Pairwise and cluster precision, recall and F1 of the last run against a truth."""
    with doors(), Warehouse.open(warehouse) as wh:
        access = _linking(wh, user, token)
        result = wh.linkage.evaluate(access, truth)
    table = Table(title=f"Linkage accuracy ({result.records:,} records)")
    for column in ("measure", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row(
        f"pairwise ({result.true_pairs:,} true pairs, {result.predicted_pairs:,} linked)",
        f"{result.pairwise_precision:.4f}",
        f"{result.pairwise_recall:.4f}",
        f"{result.pairwise_f1:.4f}",
    )
    table.add_row(
        f"cluster ({result.true_persons:,} true persons, {result.predicted_persons:,} found)",
        f"{result.cluster_precision:.4f}",
        f"{result.cluster_recall:.4f}",
        f"{result.cluster_f1:.4f}",
    )
    for kind in result.by_partner_kind:
        table.add_row(
            f"  {kind.kinds.replace('_', ' ')}",
            f"{kind.precision:.4f}",
            f"{kind.recall:.4f}",
            f"{kind.f1:.4f}",
        )
    _out().print(table)
    if result.not_held:
        _plain().print(
            f"{result.not_held:,} records of the truth are not in the warehouse "
            "(refused at upload, never sent, or sent after the last `backbone link`): "
            "each counted as a person of its own, its pairs missed. `backbone "
            "submissions list` shows what was refused."
        )


@link_app.command("explain")
def link_explain(
    left: Annotated[str, typer.Argument(help="PARTNER:LOCAL_ID")],
    right: Annotated[str, typer.Argument(help="PARTNER:LOCAL_ID")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """The match weights of one pair under the last run's model (the steward's)."""
    from backbone.linkage import RecordKey

    with doors(), Warehouse.open(warehouse) as wh:
        access = _linking(wh, user, token)
        x = wh.linkage.explain(access, RecordKey.parse(left), RecordKey.parse(right))
    _show_pair(x.left, x.right)
    table = Table(title="Evidence (match weight, log2 of the Bayes factor)")
    for column in ("comparison", "level", "weight"):
        table.add_column(column, justify="right" if column == "weight" else "left")
    for part in x.parts:
        table.add_row(part.comparison, part.level, f"{part.weight:+.2f}")
    _plain().print(table)
    status = f"; last run: {x.decision} ({x.method})" if x.decision else ""
    _out().print(
        f"Match weight {x.match_weight:+.2f}, probability {x.match_probability:.4f}{status}."
    )


_SHOWN = (
    "first_name",
    "middle_name",
    "last_surname",
    "birth_date",
    "birth_sex",
    "address",
    "postal_code",
    "state_student_id",
    "school",
    "person_id",
)


def _show_pair(a: IdentityRecord, b: IdentityRecord) -> None:
    table = Table(show_header=True)
    table.add_column("field")
    table.add_column(str(a.key))
    table.add_column(str(b.key))
    for field in _SHOWN:
        left, right = getattr(a, field), getattr(b, field)
        if left is None and right is None:
            continue
        mark = "" if left == right else " *"
        table.add_row(
            field + mark,
            "" if left is None else str(left),
            "" if right is None else str(right),
        )
    _plain().print(table)


@person_app.command("show")
def person_show(
    person_id: Annotated[int, typer.Argument(help="A person id.")],
    purpose: PurposeOption = IDENTITY_RESOLUTION,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """A person's partner records and the evidence that joined them: those the
    agreements let you see, for the purpose you name."""
    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), purpose)
        view = wh.linkage.person(access, person_id)
    console = _plain()
    state = (
        f", retired {view.retired_at:%Y-%m-%d}"
        + (f" (merged into {view.merged_into})" if view.merged_into else "")
        if view.retired_at
        else ""
    )
    console.print(f"Person {view.person_id} (since {view.created_at:%Y-%m-%d}{state})")
    records = Table(title="Records")
    for column in (
        "partner",
        "local id",
        "name",
        "birth date",
        "sex",
        "school",
        "joined by",
    ):
        records.add_column(column)
    for r in view.records:
        records.add_row(
            r.partner_id,
            r.local_id,
            r.name or "(encoded)",
            str(r.birth_date or ""),
            str(r.birth_sex or ""),
            str(r.school or ""),
            r.method,
        )
    console.print(records)
    evidence = Table(title="Evidence")
    for column in ("pair", "method", "weight", "probability", "decision"):
        evidence.add_column(column)
    for e in view.evidence:
        weight = "" if e.match_weight is None else f"{e.match_weight:+.2f}"
        decision = e.decision + (f" ({e.reason})" if e.reason else "")
        evidence.add_row(
            f"{e.left} ~ {e.right}",
            e.method,
            weight,
            f"{e.match_probability:.4f}",
            decision,
        )
    console.print(evidence)
    for event in view.events:
        pairs = ", ".join(
            f"{p.left}~{p.right} {p.method} {p.probability}" for p in event.evidence[:5]
        )
        console.print(
            f"run {event.run_id}: {event.event} {event.person_id} / "
            f"{event.other_person_id} ({event.records} records) {pairs}"
        )


@review_app.callback()
def review(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Pairs to review in this sitting.")] = 20,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Review uncertain pairs side by side: [y]es same, [n]o different, [s]kip, [q]uit.

    Decisions are recorded under the signed-in reviewer's name. The warehouse is
    held only to read a pair and to record a decision, never while a key is awaited,
    so other commands go on meanwhile."""
    if ctx.invoked_subcommand is not None:
        return
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        queue = wh.linkage.review_queue(
            wh.access(principal, IDENTITY_RESOLUTION), limit
        )
    if not queue:
        _out().print("Nothing to review. Run `backbone link` after new submissions.")
        return
    decided = 0
    for number, pair in enumerate(queue, start=1):
        with doors(), Warehouse.open(warehouse) as wh:
            access = wh.access(principal, IDENTITY_RESOLUTION)
            x = wh.linkage.explain(access, pair.left, pair.right)
        _out().print(
            f"\nPair {number} of {len(queue)}: probability {pair.match_probability:.4f}"
        )
        _show_pair(x.left, x.right)
        _plain().print(
            "  "
            + "; ".join(f"{p.comparison} {p.level} {p.weight:+.1f}" for p in x.parts)
        )
        choice = _review_choice()
        if choice == "quit":
            break
        if choice != "skip":
            with doors(), Warehouse.open(warehouse) as wh:
                try:
                    with wh.session(principal, purpose=IDENTITY_RESOLUTION) as s:
                        wh.linkage.decide(
                            s, pair.left, pair.right, choice, unless_decided=True
                        )
                    decided += 1
                except Conflict as meanwhile:  # another reviewer was quicker
                    _plain().print(str(meanwhile))
    _out().print(
        f"Recorded {decided} decisions; they override the model from the next "
        "`backbone link` on."
    )


REVIEW_KEYS = {"y": "same", "n": "different", "s": "skip", "q": "quit"}


def _review_choice() -> str:
    """same, different, skip or quit: keys nobody confuses (s is skip), anything else
    asked again, and a link decision confirmed before it is recorded."""
    while True:
        key = typer.prompt(
            "Same person? [y]es, [n]o, [s]kip, [q]uit", default="s", show_default=False
        )
        choice = REVIEW_KEYS.get(key.strip().lower())
        if choice is None:
            _plain().print(f"{key!r} is not one of y, n, s, q.")
            continue
        if choice in ("skip", "quit"):
            return choice
        meaning = "the same person" if choice == "same" else "different people"
        if typer.confirm(f"Record that these are {meaning}?", default=False):
            return choice


@review_app.command("list")
def review_list(
    limit: Annotated[int, typer.Option(help="Pairs to list.")] = 50,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """Pairs waiting for review, most likely first."""
    with doors(), Warehouse.open(warehouse) as wh:
        access = _linking(wh, user, token)
        queue = wh.linkage.review_queue(access, limit)
    table = Table(title=f"{len(queue)} pairs waiting for review")
    for column in ("left", "right", "method", "probability"):
        table.add_column(column)
    for p in queue:
        table.add_row(str(p.left), str(p.right), p.method, f"{p.match_probability:.4f}")
    emit(table, form)


@review_app.command("decide")
def review_decide(
    left: Annotated[str, typer.Argument(help="PARTNER:LOCAL_ID")],
    right: Annotated[str, typer.Argument(help="PARTNER:LOCAL_ID")],
    decision: Annotated[str, typer.Argument(help="same or different")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record one decision without the interactive review."""
    from backbone.linkage import RecordKey

    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token), purpose=IDENTITY_RESOLUTION) as s,
    ):
        wh.linkage.decide(
            s, RecordKey.parse(left), RecordKey.parse(right), decision, note=note
        )
    _plain().print(
        f"Recorded: {left} and {right} are {decision}; the next `backbone link` applies it."
    )


@export_app.command("crosswalk")
def export_crosswalk(
    partner: Annotated[str, typer.Option(help="The partner whose ids to give back.")],
    out: Annotated[Path, typer.Option(help="CSV (or .parquet) file to write.")],
    # a partner's own ids back to it (its users): linking is its purpose; the
    # steward names the purpose the ids go back for
    purpose: PurposeOption = IDENTITY_RESOLUTION,
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Write a partner's local ids with their person ids (for the partner itself
    and the steward; every export is recorded)."""
    with doors():
        form = export_target(out, force)
        with Warehouse.open(warehouse) as wh:
            access = wh.access(signed_in(wh, user, token), purpose)
            export = wh.linkage.export_crosswalk(
                access, partner, form, destination=str(out)
            )
        write_file(out, export.content, "the ids, which the audit log records as given")
    _plain().print(f"Wrote {export.table.num_rows:,} ids of {partner} to {out}.")


@encodings_app.command("submit")
def encodings_submit(
    file: Annotated[Path, typer.Argument(help="The CSV `backbone encode` wrote.")],
    partner: Annotated[str, typer.Option(help="The partner that encoded it.")],
    project: Annotated[str, typer.Option(help="The linkage project.")] = "backbone",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Store a partner's encodings (replacing its earlier ones) for the next link run."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        n = wh.linkage.add_encodings(s, partner, file, project=project)
    _plain().print(f"Stored {n:,} encodings of {partner}; run `backbone link`.")


def _read_secret(path: Path) -> bytes:
    if not path.is_file():
        raise InputFileError(
            "no such file; the linkage secret is a file only partners hold.", path=path
        )
    secret = path.read_bytes().strip()
    if len(secret) < 16:
        raise InputFileError("the linkage secret must be at least 16 bytes.", path=path)
    return secret


def encode(
    file: Annotated[Path, typer.Argument(help="CSV of the partner's records.")],
    secret_file: Annotated[Path, typer.Option(help="File holding the shared secret.")],
    out: Annotated[Path, typer.Option(help="CSV of local ids and encodings to write.")],
    id_column: Annotated[
        str, typer.Option(help="Column of the local id.")
    ] = "local_id",
    first_column: Annotated[
        str, typer.Option(help="Column of the first name.")
    ] = "first_name",
    last_column: Annotated[
        str, typer.Option(help="Column of the last name.")
    ] = "last_surname",
    birth_column: Annotated[
        str, typer.Option(help="Column of the birth date.")
    ] = "birth_date",
    sex_column: Annotated[str, typer.Option(help="Column of sex (F/M).")] = "birth_sex",
    address_column: Annotated[
        list[str] | None,
        typer.Option(
            help="Column of the street address; give it twice for house number and "
            "street kept apart.  [default: address]"
        ),
    ] = None,
    postcode_column: Annotated[
        str, typer.Option(help="Column of the postal code.")
    ] = "postal_code",
    date_format: Annotated[str, typer.Option(help="Birth date format.")] = "%Y-%m-%d",
    project: Annotated[
        str, typer.Option(help="Linkage project (rotates the salt).")
    ] = "backbone",
    salt_birth_year: Annotated[
        bool,
        typer.Option(
            help="Salt names with the birth year (harder to attack; needs exact years)."
        ),
    ] = False,
    force: ForceOption = False,
) -> None:
    """Run on a partner's own machine: names and birth dates become keyed Bloom filters.

    Only local ids and encodings are written; the secret never leaves the partners.
    """
    from backbone.linkage.pprl import IdentityColumns, encode_csv

    with doors():
        set_aside = out.with_suffix(".quarantine.csv")
        may_write(force, out, out.with_suffix(".schema.json"), set_aside)
        secret = _read_secret(secret_file)
        if not file.is_file():
            raise InputFileError("no such file.", path=file)
        encoded = encode_csv(
            file.read_bytes(),
            secret,
            columns=IdentityColumns(
                id_column,
                first_column,
                last_column,
                birth_column,
                sex_column,
                tuple(address_column or IdentityColumns().address),
                postcode_column,
            ),
            date_format=date_format,
            project=project,
            salt_with_birth_year=salt_birth_year,
            source=str(file),
        )
        write_file(out, encoded.csv, "the encodings")
        write_file(out.with_suffix(".schema.json"), encoded.schema, "the schema")
        set_aside.unlink(missing_ok=True)  # an earlier run's, replaced (--force)
        if encoded.quarantined:
            write_file(set_aside, encoded.quarantine_csv(), "the rows to fix")
    _plain().print(
        f"Encoded {encoded.records:,} records to {out} (local ids and encodings only); "
        f"send it with `backbone encodings submit {out.name} --partner YOUR_ID`."
    )
    if encoded.without:
        fields = ", ".join(f.replace("_", " ") for f in encoded.without)
        _plain().print(
            f"The file has no column for {fields}: encoded without it (tell the "
            "other partners of the project, who should encode without it too)."
        )
    if encoded.quarantined:
        _plain().print(
            f"{len(encoded.quarantined):,} rows were not encoded: {set_aside} says "
            "which and why (keep it; it is not sent). Fix them and encode again."
        )
