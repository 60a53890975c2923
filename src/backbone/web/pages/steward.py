"""The steward's pages: partners, feeds and their mappings, the clerical review
queue, a linked person's records and evidence, the release ledger, the audit log,
retention and users.

Each page calls one stage method that refuses anyone but the steward (and audits
the refusal); person-level reads (a review pair, a person) go through
``wh.access`` for identity resolution, audited in the stage as the CLI's are."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from backbone.errors import UserError
from backbone.governance.audit import AuditPage
from backbone.governance.policy import IDENTITY_RESOLUTION
from backbone.governance.principals import Principal, UserState
from backbone.governance.release.ledger import LedgerEntry
from backbone.governance.retention import RetentionState
from backbone.linkage import Holdings, PersonView, RecordKey, ReviewStep
from backbone.session import Session
from backbone.warehouse import FeedState, PartnerEntry, Warehouse
from backbone.web.door import Column, Door, NavItem, SignInNeeded, Table

STEWARDSHIP = "data_quality"
"""the purpose named when the steward reads the partnership's own records"""
PAGE = 100
"""entries per page of the audit log and the release ledger"""
SHORT = 160
"""characters of an audit entry's text shown (some hold a whole table's definition)"""
DECISIONS = {"same", "different", "skip"}
SHOWN_FIELDS = (
    ("first_name", "First name"),
    ("middle_name", "Middle name"),
    ("last_surname", "Last name"),
    ("birth_date", "Birth date"),
    ("birth_sex", "Sex"),
    ("address", "Address"),
    ("postal_code", "Postal code"),
    ("state_student_id", "State student id"),
    ("school", "School"),
    ("person_id", "Person"),
)


def _steward(me: Principal) -> bool:
    return me.is_steward


NAV = (
    NavItem(
        "/partners",
        "Partners",
        "the partners, their contacts, schools and sites",
        _steward,
        order=60,
    ),
    NavItem(
        "/feeds",
        "Feeds",
        "every partner's feeds, which are late, and their mappings",
        _steward,
        order=61,
    ),
    NavItem(
        "/review",
        "Review",
        "pairs of records the linkage could not decide: same person or not",
        lambda me: me.is_steward and me.may("link"),
        order=62,
    ),
    NavItem(
        "/persons",
        "Persons",
        "a linked person's records and the evidence of their links",
        lambda me: me.is_steward and me.may("link"),
        order=63,
    ),
    NavItem(
        "/unbacked",
        "Unbacked records",
        "records that open nothing until their partner's facts back them, and "
        "the records a steward admin confirmed",
        lambda me: me.is_steward and me.may("administer"),
        order=63,
    ),
    NavItem(
        "/releases",
        "Releases",
        "the release ledger: every table that left, to whom, what was suppressed",
        _steward,
        order=64,
    ),
    NavItem(
        "/audit",
        "Audit log",
        "the hash-chained audit log, newest first, and its verification",
        lambda me: me.is_steward and me.may("audit"),
        order=65,
    ),
    NavItem(
        "/retention",
        "Retention",
        "data due for destruction, and the destructions done",
        _steward,
        order=66,
    ),
    NavItem(
        "/users",
        "Users",
        "who may sign in, their roles and state",
        _steward,
        order=67,
    ),
)


# --- tables -----------------------------------------------------------------------


def partners_table(entries: list[PartnerEntry]) -> Table:
    return Table(
        "partners",
        (
            Column("partner_id", "Partner"),
            Column("name", "Name"),
            Column("kind", "Kind"),
            Column("contacts", "Contacts"),
            Column("schools", "Schools and sites", numeric=True),
            Column("programs", "Programs", numeric=True),
        ),
        [
            {
                "partner_id": e.partner.partner_id,
                "name": e.partner.name,
                "kind": e.partner.kind.replace("_", " "),
                "contacts": "; ".join(
                    f"{c.name}{f', {c.role}' if c.role else ''} <{c.email}>"
                    for c in e.contacts
                )
                or None,
                "schools": len(e.schools),
                "programs": len(e.programs),
            }
            for e in entries
        ],
        caption="Partners",
        empty="No partner is registered yet.",
    )


def schools_table(entries: list[PartnerEntry]) -> Table:
    return Table(
        "schools",
        (
            Column("partner_id", "Partner"),
            Column("school_id", "School or site"),
            Column("name", "Name"),
            Column("level", "Level"),
            Column("closed_on", "Closed after"),
        ),
        [
            {
                "partner_id": e.partner.partner_id,
                "school_id": s.school_id,
                "name": s.name,
                "level": s.level,
                "closed_on": s.closed_on,
            }
            for e in entries
            for s in e.schools
        ],
        caption="Schools and sites",
        empty="No school or site is registered yet.",
    )


def programs_table(entries: list[PartnerEntry]) -> Table:
    return Table(
        "programs",
        (
            Column("partner_id", "Partner"),
            Column("program_id", "Program"),
            Column("name", "Name"),
            Column("program_type", "Type"),
            Column("closed_on", "Closed after"),
        ),
        [
            {
                "partner_id": e.partner.partner_id,
                "program_id": p.program_id,
                "name": p.name,
                "program_type": p.program_type,
                "closed_on": p.closed_on,
            }
            for e in entries
            for p in e.programs
        ],
        caption="Programs",
        empty="No program is registered yet.",
    )


def _anchor(partner_id: str, feed_id: str) -> str:
    return f"mapping-{partner_id}-{feed_id}"


def feeds_table(feeds: list[FeedState]) -> Table:
    return Table(
        "feeds",
        (
            Column("partner_id", "Partner"),
            Column("feed_id", "Feed"),
            Column("entities", "Entities"),
            Column("cadence", "Cadence"),
            Column("mode", "Mode"),
            Column("agreement_id", "Agreement", link="/agreements/{agreement_id}"),
            Column("since", "Since"),
            Column("last_received", "Last received"),
            Column("state", "State"),
            Column("mapping", "Mapping", link="{mapping_link}"),
        ),
        [
            {
                "partner_id": f.feed.partner_id,
                "feed_id": f.feed.feed_id,
                "entities": ", ".join(f.feed.entities),
                "cadence": f.feed.cadence,
                "mode": f.feed.mode,
                "agreement_id": f.feed.agreement_id,
                "since": f.feed.since,
                "last_received": f.last_received,
                "state": f"late (due {f.late_since})" if f.late_since else "on time",
                "mapping": "shown below" if f.mapping is not None else "none yet",
                "mapping_link": (
                    "#" + _anchor(f.feed.partner_id, f.feed.feed_id)
                    if f.mapping is not None
                    else None
                ),
            }
            for f in feeds
        ],
        caption="Feeds",
        empty="No feed is registered yet.",
    )


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def pair_table(step: ReviewStep) -> Table | None:
    x = step.explanation
    if x is None:
        return None
    rows = []
    for key, label in SHOWN_FIELDS:
        left, right = getattr(x.left, key), getattr(x.right, key)
        if key == "person_id":  # an id, not a quantity
            left, right = _id(left), _id(right)
        if left is None and right is None:
            continue
        rows.append(
            {
                "field": label,
                "left": left,
                "right": right,
                "same": "same" if left == right else "differs",
            }
        )
    return Table(
        "pair",
        (
            Column("field", "Field"),
            Column("left", str(x.left.key)),
            Column("right", str(x.right.key)),
            Column("same", "Same?"),
        ),
        rows,
        caption="The two records side by side",
        empty="The agreements let you see none of these records' fields.",
        downloadable=False,  # person-level: viewing is not an export
    )


def weights_table(step: ReviewStep) -> Table | None:
    x = step.explanation
    if x is None:
        return None
    return Table(
        "weights",
        (
            Column("comparison", "Comparison"),
            Column("level", "Level"),
            Column("weight", "Match weight", numeric=True),
        ),
        [
            {"comparison": p.comparison, "level": p.level, "weight": round(p.weight, 2)}
            for p in x.parts
        ],
        caption="Evidence (match weight: log2 of the Bayes factor)",
        empty="No comparison could be made.",
    )


def person_tables(view: PersonView) -> dict[str, Table]:
    records = Table(
        "records",
        (
            Column("partner_id", "Partner"),
            Column("local_id", "Local id"),
            Column("name", "Name"),
            Column("birth_date", "Birth date"),
            Column("birth_sex", "Sex"),
            Column("school", "School"),
            Column("method", "Joined by"),
        ),
        [
            {
                "partner_id": r.partner_id,
                "local_id": r.local_id,
                "name": r.name or "(encoded or not shown)",
                "birth_date": r.birth_date,
                "birth_sex": r.birth_sex,
                "school": r.school,
                "method": r.method,
            }
            for r in view.records
        ],
        caption="Records",
        empty="No record of this person is open to you.",
        downloadable=False,  # person-level: viewing is not an export
    )
    evidence = Table(
        "evidence",
        (
            Column("pair", "Pair"),
            Column("method", "Method"),
            Column("weight", "Match weight", numeric=True),
            Column("probability", "Probability", numeric=True),
            Column("decision", "Decision"),
        ),
        [
            {
                "pair": f"{e.left} ~ {e.right}",
                "method": e.method,
                "weight": None if e.match_weight is None else round(e.match_weight, 2),
                "probability": round(e.match_probability, 4),
                "decision": e.decision + (f" ({e.reason})" if e.reason else ""),
            }
            for e in view.evidence
        ],
        caption="Evidence of the links",
        empty="No scored pair joins these records (one record, or linked by an id).",
        downloadable=False,  # person-level: viewing is not an export
    )
    events = Table(
        "events",
        (
            Column("run_id", "Link run", numeric=True),
            Column("event", "Event"),
            Column("person_id", "Person", link="/persons/{person_id}"),
            Column(
                "other_person_id", "Other person", link="/persons/{other_person_id}"
            ),
            Column("records", "Records", numeric=True),
            Column("happened_at", "When"),
        ),
        [
            {
                "run_id": e.run_id,
                "event": e.event,
                "person_id": e.person_id,
                "other_person_id": e.other_person_id,
                "records": e.records,
                "happened_at": e.happened_at,
            }
            for e in view.events
        ],
        caption="Merges and splits",
        empty="No merge or split has touched this person.",
    )
    return {"records": records, "evidence": evidence, "events": events}


def releases_table(entries: list[LedgerEntry]) -> Table:
    return Table(
        "releases",
        (
            Column("release_id", "#", numeric=True),
            Column("released_at", "Released"),
            Column("to", "To"),
            Column("purpose", "Purpose"),
            Column("name", "What"),
            Column("mode", "Protection"),
            Column("cells", "Cells", numeric=True),
            Column("suppressed", "Suppressed", numeric=True),
            Column("agreements", "Under"),
        ),
        [
            {
                "release_id": e.release_id,
                "released_at": e.released_at,
                "to": f"{e.user_id} ({e.partner_id})",
                "purpose": e.purpose.replace("_", " "),
                "name": e.name,
                "mode": (
                    f"differential privacy (epsilon {e.epsilon:g})"
                    if e.mode == "dp" and e.epsilon is not None
                    else "differential privacy"
                    if e.mode == "dp"
                    else "suppression"
                ),
                "cells": e.cells,
                "suppressed": e.suppressed,
                "agreements": ", ".join(e.agreements) or "own data",
            }
            for e in entries
        ],
        caption="Releases, newest first",
        empty="Nothing has been released yet.",
    )


def _short(text: str | None, limit: int = SHORT) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def audit_table(page: AuditPage) -> Table:
    return Table(
        "audit",
        (
            Column("seq", "#", numeric=True),
            Column("at", "When"),
            Column("who", "Who"),
            Column("action", "Action"),
            Column("purpose", "Purpose"),
            Column("what", "What"),
            Column("providers", "Whose data"),
            Column("reason", "Why"),
        ),
        [
            {
                "seq": e.seq,
                "at": e.at,
                "who": e.actor + (f" ({e.actor_partner})" if e.actor_partner else ""),
                "action": e.action + (", refused" if e.decision == "deny" else ""),
                "purpose": e.purpose.replace("_", " ") if e.purpose else None,
                "what": _short(e.what),
                "providers": _short(", ".join(e.providers)),
                "reason": _short(e.reason),
            }
            for e in page.entries
        ],
        caption="Audit log entries, newest first",
        empty="The audit log is empty.",
        note=f"Texts longer than {SHORT} characters are shortened (…).",
    )


def retention_tables(state: RetentionState) -> dict[str, Table]:
    due = Table(
        "due",
        (
            Column("provider", "Provider"),
            Column("entity", "Entity"),
            Column("agreement", "Last agreement"),
            Column("ended_on", "Ended"),
            Column("due_on", "Due"),
        ),
        [
            {
                "provider": d.provider,
                "entity": d.entity,
                "agreement": d.agreement,
                "ended_on": d.ended_on,
                "due_on": d.due_on,
            }
            for d in state.due
        ],
        caption="Due for destruction",
        empty="Nothing is due for destruction.",
    )
    done = Table(
        "destroyed",
        (
            Column("purge_id", "#", numeric=True),
            Column("provider", "Provider"),
            Column("agreement", "Agreement"),
            Column("due_on", "Was due"),
            Column("purged_at", "Destroyed"),
            Column("rows_destroyed", "Rows", numeric=True),
        ),
        [
            {
                "purge_id": c.purge_id,
                "provider": c.provider,
                "agreement": c.agreement,
                "due_on": c.due_on,
                "purged_at": c.purged_at,
                "rows_destroyed": c.rows_destroyed,
            }
            for c in state.certificates
        ],
        caption="Destructions done",
        empty="Nothing has been destroyed yet.",
    )
    return {"due": due, "destroyed": done}


def users_table(users: list[UserState], today: date) -> Table:
    return Table(
        "users",
        (
            Column("user_id", "User"),
            Column("display_name", "Name"),
            Column("partner_id", "Partner"),
            Column("role", "Role"),
            Column("expires_on", "Expires"),
            Column("training_until", "Training until"),
            Column("second_factor", "Second factor"),
            Column("state", "State"),
        ),
        [
            {
                "user_id": u.principal.user_id,
                "display_name": u.principal.display_name,
                "partner_id": u.principal.partner_id,
                "role": u.principal.role.value.replace("_", " "),
                "expires_on": u.principal.expires_on,
                "training_until": u.principal.training_until,
                "second_factor": "set" if u.second_factor else "not set",
                "state": (
                    f"disabled ({u.disabled_reason})"
                    if u.principal.disabled and u.disabled_reason
                    else u.principal.lapsed(today)
                    or ("locked out (failed sign-ins)" if u.locked else "active")
                ),
            }
            for u in users
        ],
        caption="Users",
        empty="No user yet.",
    )


# --- forms ------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _position(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0


def _before(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return max(1, int(text))
    except ValueError:
        raise UserError(f"{text!r} is not an entry number.") from None


def _decided(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
    """Same or different recorded (the stage decides who may, and audits), or
    skipped; then the next pair."""
    at = _position(_text(form, "at"))
    decision = _text(form, "decision")
    if decision not in DECISIONS:
        raise UserError("choose Same, Different or Skip.")
    if decision == "skip":
        return f"/review?at={at + 1}"
    wh.linkage.decide(
        s,
        RecordKey.parse(_text(form, "left")),
        RecordKey.parse(_text(form, "right")),
        decision,
        unless_decided=True,
    )
    # the pair left the queue: the one after it is now at the same place
    return f"/review?at={at}"


def _retention_run(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
    wh.retention.run(s)
    return "/retention?ran=1"


def _disable(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
    user_id, reason = _text(form, "user_id"), _text(form, "reason")
    if not reason:
        raise UserError("say why the user is disabled; the reason is kept on record.")
    wh.users.disable(s, user_id, reason=reason)
    return "/users"


def holdings_tables(holdings: Holdings) -> dict[str, Table]:
    waiting = Table(
        "unbacked",
        (
            Column("partner_id", "Partner"),
            Column("local_id", "Record"),
            Column("person_id", "Person", link="/persons/{person_id}"),
            Column("others", "Also held by"),
            Column("submission_id", "Submission", link="/submissions/{submission_id}"),
        ),
        [
            {
                "partner_id": u.partner_id,
                "local_id": u.local_id,
                "person_id": u.person_id,
                "others": ", ".join(u.others),
                "submission_id": u.submission_id,
            }
            for u in holdings.waiting
        ],
        caption="Waiting: linked to persons other partners hold, no fact of their "
        "partner's behind them"
        + _of_total(len(holdings.waiting), holdings.waiting_total),
        empty="No record waits: every linked record is backed by its partner's "
        "facts or a confirmation.",
        downloadable=False,
    )
    confirmed = Table(
        "confirmed",
        (
            Column("partner_id", "Partner"),
            Column("local_id", "Record"),
            Column("person_id", "Person", link="/persons/{person_id}"),
            Column("confirmed_by", "Confirmed by"),
            Column("confirmed_at", "On"),
            Column("reason", "Why"),
            Column("holds", "Holds"),
        ),
        [
            {
                "partner_id": c.partner_id,
                "local_id": c.local_id,
                "person_id": c.person_id,
                "confirmed_by": c.confirmed_by,
                "confirmed_at": c.confirmed_at.date(),
                "reason": c.reason,
                "holds": "yes" if c.holds else "no: linked to another person now",
            }
            for c in holdings.confirmed
        ],
        caption="Confirmed by a steward admin"
        + _of_total(len(holdings.confirmed), holdings.confirmed_total),
        empty="No record is confirmed.",
        downloadable=False,
    )
    return {"waiting": waiting, "confirmed": confirmed}


def _of_total(listed: int, total: int) -> str:
    return "" if listed == total else f" (the first {listed:,} of {total:,})"


def _record_of(form: FormData) -> tuple[str, str]:
    """``PARTNER:RECORD`` as the form's choice names it."""
    partner, sep, record = _text(form, "record").partition(":")
    if not sep or not partner or not record:
        raise UserError("choose a record from the list.")
    return partner, record


def _confirm_held(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
    partner, record = _record_of(form)
    wh.linkage.confirm_held(s, partner, record, str(form.get("reason") or ""))
    return "/unbacked"


def _withdraw_held(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
    partner, record = _record_of(form)
    wh.linkage.withdraw_held(s, partner, record, str(form.get("reason") or ""))
    return "/unbacked"


def _unlock(wh: Warehouse, s: Session, me: Principal, form: FormData) -> str:
    wh.users.unlock(s, _text(form, "user_id"))
    return "/users"


# --- routes -----------------------------------------------------------------------


def register(app: FastAPI, door: Door) -> None:
    door.menu(*NAV)

    @app.get("/partners")
    def partners(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            entries = wh.partner_directory(wh.access(me, STEWARDSHIP))
            return {
                "partners": partners_table(entries),
                "schools": schools_table(entries),
                "programs": programs_table(entries),
            }

        return door.shown(request, "steward_partners.html", read)

    @app.get("/feeds")
    def feeds(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            book = wh.feed_book(wh.access(me, STEWARDSHIP))
            return {
                "feeds": feeds_table(book),
                "mappings": [
                    (f, _anchor(f.feed.partner_id, f.feed.feed_id))
                    for f in book
                    if f.mapping is not None
                ],
            }

        return door.shown(request, "steward_feeds.html", read)

    @app.get("/review")
    def review(request: Request) -> Response:
        at = _position(request.query_params.get("at"))

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            step = wh.linkage.review_next(wh.access(me, IDENTITY_RESOLUTION), at)
            return {
                "step": step,
                "pair": pair_table(step),
                "weights": weights_table(step),
            }

        return door.shown(request, "steward_review.html", read)

    @app.post("/review")
    async def decide(request: Request) -> Response:
        return await door.acted(request, _decided)

    @app.get("/persons")
    def persons(request: Request) -> Response:
        wanted = (request.query_params.get("person_id") or "").strip()
        if wanted:
            if not wanted.isdigit():
                raise UserError(f"{wanted!r} is not a person id (a whole number).")
            return RedirectResponse(f"/persons/{int(wanted)}", status_code=303)

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            # the lookup is the steward's (identity resolution): the stage decides
            wh.access(me, IDENTITY_RESOLUTION).require_steward(
                "link", "the person lookup"
            )
            return {"view": None}

        return door.shown(request, "steward_person.html", read)

    @app.get("/persons/{person_id}")
    def person(request: Request, person_id: int) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            view = wh.linkage.linked_person(
                wh.access(me, IDENTITY_RESOLUTION), person_id
            )
            return {"view": view, **person_tables(view)}

        return door.shown(request, "steward_person.html", read)

    @app.get("/releases")
    def releases(request: Request) -> Response:
        before = _before(request.query_params.get("before"))

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            entries = wh.gate.releases_for(
                wh.access(me, STEWARDSHIP), before=before, limit=PAGE
            )
            older = entries[-1].release_id if len(entries) == PAGE else None
            return {
                "releases": releases_table(entries),
                "older": older,
                "paged": before is not None,
            }

        return door.shown(request, "steward_releases.html", read)

    @app.get("/audit")
    def audit(request: Request) -> Response:
        before = _before(request.query_params.get("before"))

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            page = wh.audit.page_for(
                wh.access(me, STEWARDSHIP), before=before, limit=PAGE
            )
            return {"page": page, "entries": audit_table(page)}

        return door.shown(request, "steward_audit.html", read)

    @app.post("/audit/verify")
    async def verify(request: Request) -> Response:
        """Walk the chain (a read: the result is shown, nothing is changed)."""
        session = door.session_of(request)
        if session is None or session.user_id is None:
            raise SignInNeeded
        await door.checked_form(request, session)

        def run() -> Response:
            with door.opened() as wh:
                session, me = door.signed_in(request, wh)
                result = wh.audit.verify_for(wh.access(me, STEWARDSHIP))
            return door.page(
                request,
                "steward_audit_verified.html",
                session=session,
                principal=me,
                result=result,
            )

        return await run_in_threadpool(run)

    @app.get("/retention")
    def retention(request: Request) -> Response:
        ran = request.query_params.get("ran") == "1"

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            state = wh.retention.due_for(wh.access(me, STEWARDSHIP))
            return {"state": state, "ran": ran, **retention_tables(state)}

        return door.shown(request, "steward_retention.html", read)

    @app.post("/retention/run")
    async def retention_run(request: Request) -> Response:
        return await door.acted(request, _retention_run)

    @app.get("/users")
    def users(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            listed = wh.users.list_for(wh.access(me, STEWARDSHIP))
            return {
                "users": users_table(listed, wh.today()),
                "enabled": [u.principal for u in listed if not u.principal.disabled],
                "locked": [u.principal for u in listed if u.locked],
            }

        return door.shown(request, "steward_users.html", read)

    @app.get("/unbacked")
    def unbacked(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            with wh.session(me, purpose=IDENTITY_RESOLUTION) as s:
                holdings = wh.linkage.unbacked(s)
            return {"holdings": holdings, **holdings_tables(holdings)}

        return door.shown(request, "steward_unbacked.html", read)

    @app.post("/unbacked/confirm")
    async def confirm_held(request: Request) -> Response:
        return await door.acted(request, _confirm_held)

    @app.post("/unbacked/withdraw")
    async def withdraw_held(request: Request) -> Response:
        return await door.acted(request, _withdraw_held)

    @app.post("/users/disable")
    async def disable(request: Request) -> Response:
        return await door.acted(request, _disable)

    @app.post("/users/unlock")
    async def unlock(request: Request) -> Response:
        return await door.acted(request, _unlock)
