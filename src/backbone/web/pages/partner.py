"""A partner's data staff's pages (a district's, a community organization's, the
college agency's analysts and uploaders): their own feeds, their students'
early-warning roster, their crosswalk, their weekly digest and what the
partnership gives them. Every read goes through the stage that decides who may
(the roster and the crosswalk through ``wh.access``: policy decision and audit
entry); a page a user may not see answers 403 or 404."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from backbone.errors import UserError
from backbone.governance.access import Access, ExportFormat
from backbone.governance.principals import Principal, Role
from backbone.model.calendar import school_year_label
from backbone.partners.status import OwnFeed
from backbone.warehouse import Warehouse
from backbone.web.door import Column, Door, NavItem, Table

EARLY_WARNING = "early_warning"
IDENTITY_RESOLUTION = "identity_resolution"
SHARED_MEASUREMENT = "shared_measurement"
TIERS = ("on track", "watch", "high risk")
WEB_DOWNLOAD = "a download from the web site"


def _partner_staff(me: Principal) -> bool:
    return me.role in (Role.partner_analyst, Role.partner_uploader)


NAV = (
    NavItem(
        "/feeds/mine",
        "Our feeds",
        "the files your organization sends: schedule, last received, what is late",
        _partner_staff,
        order=22,
    ),
    NavItem(
        "/roster",
        "Early warning",
        "your students by risk tier, with the factors behind each score",
        lambda me: me.role is Role.partner_analyst,
        order=30,
    ),
    NavItem(
        "/crosswalk",
        "Crosswalk",
        "download your local ids with the partnership's person ids",
        lambda me: _partner_staff(me) and me.may("export_microdata"),
        order=31,
    ),
    NavItem(
        "/digest",
        "Digest",
        "your weekly digest: promises, late feeds, approvals waiting for you",
        _partner_staff,
        order=32,
    ),
    NavItem(
        "/what-we-get",
        "What we get",
        "what the partnership shows you that your own records could not",
        _partner_staff,
        order=33,
    ),
)


def feeds_table(feeds: list[OwnFeed]) -> Table:
    return Table(
        "feeds",
        (
            Column("feed", "Feed"),
            Column("entities", "Data"),
            Column("cadence", "Schedule"),
            Column("agreement", "Agreement"),
            Column("last_received", "Last received"),
            Column("last_due", "Last due"),
            Column("status", "Status"),
        ),
        [
            {
                "feed": f.feed.feed_id,
                "entities": ", ".join(f.feed.entities),
                "cadence": f.feed.cadence,
                "agreement": f.feed.agreement_id,
                "last_received": f.last_received or "never",
                "last_due": f.last_due.due if f.last_due else "not yet due",
                "status": f"late: was due {f.late.due}" if f.late else "on time",
            }
            for f in feeds
        ],
        caption="Your feeds",
        empty="Your organization has no feeds registered.",
    )


def _percent(value: Any) -> float | None:
    return None if value is None else round(100 * float(value), 1)


def roster_table(words: Any) -> Table:
    """The roster as every door shows it (``roster_in_words``)."""
    names = list(words.column_names)
    headings = {
        "person": "Person",
        "name": "Name",
        "records": "Records",
        "district": "District",
        "school": "School",
        "grade": "Grade",
        "tier": "Tier",
        "attendance": "Attendance %",
        "risk": "Risk",
        "top factors": "Top factors",
        "flags": "Flags",
    }
    order = [
        c
        for c in (
            "person",
            "name",
            "school",
            "grade",
            "tier",
            "attendance",
            "risk",
            "top factors",
            "flags",
            "records",
        )
        if c in names
    ]
    rows = []
    for row in words.to_pylist():
        row["attendance"] = _percent(row.get("attendance"))
        rows.append({key.replace(" ", "_"): value for key, value in row.items()})
    return Table(
        "roster",
        [
            Column(
                c.replace(" ", "_"),
                headings.get(c, c),
                numeric=c in ("attendance", "risk"),
            )
            for c in order
        ],
        rows,
        caption="Students by risk, worst first",
        empty="No student matches these filters.",
    )


def _choice(request: Request, name: str) -> str | None:
    value = (request.query_params.get(name) or "").strip()
    return value or None


def register(app: FastAPI, door: Door) -> None:
    door.menu(*NAV)

    @app.get("/feeds/mine")
    def my_feeds(request: Request) -> Response:
        return door.shown(
            request,
            "partner_feeds.html",
            lambda wh, me: _feeds(wh.feeds_for(wh.access(me, "data_quality"))),
        )

    @app.get("/roster")
    def roster(request: Request) -> Response:
        tier, school, grade = (_choice(request, n) for n in ("tier", "school", "grade"))
        wanted = request.query_params.get("download")
        kind = request.query_params.get("format", "csv")

        page = _page_number(request)
        if tier and tier not in TIERS:
            raise UserError(f"unknown tier {tier!r}; use {', '.join(TIERS)}.")

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            access = wh.access(me, EARLY_WARNING)
            if wanted:  # a file of it is an extract: the stage permits it, or not
                view = _roster_view(
                    wh, access, tier, school, grade, f"{WEB_DOWNLOAD} ({kind})"
                )
                return {**view, "table": roster_table(view["words"])}
            # the roster of stored indicators and scores, kept for its readers
            # while nothing changes; each showing is a person-level read, audited
            access.require_some(
                "student_indicator", "row_level_view", "the early-warning roster"
            )
            view = door.prepared(
                wh,
                access,
                "your early-warning roster",
                lambda w, a: _roster_view(w, a, tier, school, grade, None),
                tier,
                school,
                grade,
                detail=lambda v: {
                    "providers": v["roster"].providers,
                    "rows": v["words"].num_rows,
                },
            )
            words = view["words"]
            last = max(0, (words.num_rows - 1) // ROSTER_PAGE)
            page_now = min(page, last)
            return {
                **view,
                "table": roster_table(words.slice(page_now * ROSTER_PAGE, ROSTER_PAGE)),
                "students": words.num_rows,
                "page": page_now,
                "pages": last + 1,
                "first_row": page_now * ROSTER_PAGE + 1,
                "last_row": min(words.num_rows, (page_now + 1) * ROSTER_PAGE),
            }

        return door.shown(request, "partner_roster.html", read)

    @app.get("/crosswalk")
    def crosswalk_page(request: Request) -> Response:
        """What the crosswalk is, with its downloads (the page shows no data)."""
        return door.shown(
            request,
            "partner_crosswalk.html",
            lambda wh, me: {"partner": wh.partners.get(me.partner_id)},
        )

    @app.get("/crosswalk/file")
    def crosswalk(request: Request) -> Response:
        """The signed-in partner's own local ids with their person ids, as a file
        (CSV, Excel or Parquet); the export is authorized and recorded."""
        asked = request.query_params.get("format", "csv")
        if asked not in ("csv", "xlsx", "parquet"):
            raise UserError("ask for the crosswalk as csv, xlsx or parquet.")
        form = ExportFormat(asked)
        with door.opened() as wh:
            _session, me = door.signed_in(request, wh)
            export = wh.linkage.export_crosswalk(
                wh.access(me, IDENTITY_RESOLUTION),
                me.partner_id,
                form,
                destination=f"{WEB_DOWNLOAD} (crosswalk-{me.partner_id}.{asked})",
            )
        media = {
            "csv": "text/csv; charset=utf-8",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "parquet": "application/vnd.apache.parquet",
        }[asked]
        return Response(
            export.content,
            media_type=media,
            headers={
                "Content-Disposition": "attachment; "
                f'filename="crosswalk-{me.partner_id}.{asked}"'
            },
        )

    @app.get("/digest")
    def digest(request: Request) -> Response:
        partner = _choice(request, "partner")

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            from backbone.partners.status import digest_sections

            d = wh.digest_for(wh.access(me, "data_quality"), partner)
            return {"digest": d, "sections": digest_sections(d)}

        return door.shown(request, "partner_digest.html", read)

    @app.get("/digest/file")
    def digest_file(request: Request) -> Response:
        """The digest as the file ``backbone digest`` writes (HTML or text)."""
        partner = _choice(request, "partner")
        asked = request.query_params.get("format", "html")
        if asked not in ("html", "txt", "checkpoint.json"):
            raise UserError("ask for the digest as html or txt, or its checkpoint.")
        from backbone.partners.status import digest_html, digest_text

        with door.opened() as wh:
            _session, me = door.signed_in(request, wh)
            d = wh.digest_for(wh.access(me, "data_quality"), partner)
            # the chain head signed for the partner the digest is for (decided above)
            checkpoint = wh.checkpoint(d.partner_id).to_json()
        body, media = (
            (digest_html(d), "text/html; charset=utf-8")
            if asked == "html"
            else (digest_text(d), "text/plain; charset=utf-8")
            if asked == "txt"
            else (checkpoint, "application/json")
        )
        return Response(
            body,
            media_type=media,
            headers={
                "Content-Disposition": "attachment; "
                f'filename="digest-{d.partner_id}-{d.on}.{asked}"'
            },
        )

    @app.get("/what-we-get")
    def what_we_get_page(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            from backbone.measures.what_we_get import what_we_get

            access = wh.access(me, SHARED_MEASUREMENT)
            findings = door.prepared(
                wh,
                access,
                "what the partnership gives you",
                lambda w, a: what_we_get(w, a, a.principal.partner_id),
            )
            return {
                "partner": wh.partners.get(me.partner_id),
                "findings": findings,
                "table": Table(
                    "what-we-get",
                    (
                        Column("topic", "Topic"),
                        Column("text", "What the partnership shows"),
                        Column("releases", "Releases"),
                    ),
                    [
                        {
                            "topic": f.topic,
                            "text": f.text,
                            "releases": ", ".join(map(str, f.release_ids)),
                        }
                        for f in findings
                    ],
                    caption="What we get",
                ),
            }

        return door.shown(request, "partner_what_we_get.html", read)


def _feeds(feeds: list[OwnFeed]) -> dict[str, Any]:
    return {
        "feeds": feeds,
        "table": feeds_table(feeds),
        "late": [f for f in feeds if f.late],
    }


ROSTER_PAGE = 100  # rows shown at once; a download has them all


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "0")
    if not raw.isdigit() or len(raw) > 6:
        raise UserError("the page number must be a whole number, such as 2.")
    return int(raw)


def _roster_view(
    wh: Warehouse,
    access: Access,
    tier: str | None,
    school: str | None,
    grade: str | None,
    export_to: str | None,
) -> dict[str, Any]:
    """The roster (through the stage: a person-level read, audited), ranked by
    the risk model and put in words, with the choices its filters offer."""
    from backbone.measures.indicators import roster_in_words

    r = wh.indicators.roster(
        access,
        tiers=[tier] if tier else None,
        school=school,
        grade=grade,
        export_to=export_to,
    )
    ranked = wh.risk.ranked(r)
    words = roster_in_words(ranked)
    schools = sorted(
        {
            (str(i), str(n or i))
            for i, n in zip(
                ranked.column("school_id").to_pylist(),
                ranked.column("school_name").to_pylist(),
                strict=True,
            )
            if i
        },
        key=lambda s: s[1],
    )
    grades = sorted({g for g in words.column("grade").to_pylist() if g})
    start = wh.settings["calendar.school_year_start_month"]
    return {
        "roster": r,
        "words": words,
        "year": school_year_label(r.snapshot.school_year, start),
        "tiers": TIERS,
        "schools": schools,
        "grades": grades,
        "chosen": {"tier": tier, "school": school, "grade": grade},
    }
