"""The policy layer as an attacker would try it: every role against every provider,
entity and operation; lifecycles; purposes; consent; pseudonyms; hostile strings;
the locked session. Expected answers are worked out in policy_fixtures.py."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from backbone import Warehouse
from backbone.errors import (
    AuthenticationFailed,
    BackboneError,
    Forbidden,
    NotFoundError,
    PolicyDenied,
    UserError,
)
from backbone.governance.access import ExportFormat, export_bytes
from backbone.governance.policy import IDENTIFYING, permitted_rows_sql
from backbone.model.calendar import school_year_sql
from tests.policy_fixtures import NOW, build, club_agreement, user

PRINCIPALS = (
    "steward",
    "analyst",
    "d1.analyst",
    "d1.uploader",
    "d2.analyst",
    "c1.analyst",
    "f1.viewer",
    "r1.researcher",
)
ENTITIES = (
    "partner_record",
    "record_person",
    "enrollment",
    "demographics",
    "program_participation",
    "consent",
)
PURPOSES = (
    "early_warning",
    "shared_measurement",
    "program_evaluation",
    "research",
    "identity_resolution",
    "marketing",
)
# who may ever see rows, by agreement: provider -> recipient partner -> purposes
ROW_GRANTS = {
    "d1": {
        "b0": {
            "early_warning",
            "shared_measurement",
            "program_evaluation",
            "research",
            "identity_resolution",
        },
        "r1": {"research"},
        "c1": {"early_warning"},
    },
    "d2": {
        "b0": {
            "early_warning",
            "shared_measurement",
            "program_evaluation",
            "research",
            "identity_resolution",
        },
        "r1": {"research"},
        "c1": {"early_warning"},
    },
    "c1": {
        "b0": {"early_warning", "program_evaluation", "identity_resolution"},
        "d1": {"early_warning"},
        "d2": {"early_warning"},
    },
}
PERSONS_OF = {
    "d1": set(range(1, 44)),
    "d2": set(range(101, 131)),
    "c1": {1, 2, 3, 4, 5, 6, 101, 102, 103, 104},
}
CONSENTED = {f"c1-{i}" for i in range(1, 9)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "wh"
    build(path)
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh", clock=lambda: NOW) as w:
        yield w


def _entries(wh: Warehouse) -> int:
    return wh.audit.head().seq


# --- the permission matrix ----------------------------------------------------------


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("who", PRINCIPALS)
def test_no_row_leaves_without_a_grant(
    wh: Warehouse, who: str, entity: str, purpose: str
) -> None:
    """Every role x entity x purpose: what comes back is only the principal's own
    data, or rows whose provider's agreement names the principal's partner for this
    purpose, within the population, consent and person scope, with identifying
    fields only under identified access; and the attempt is always audited."""
    principal = user(wh, who)
    before = _entries(wh)
    try:
        m = wh.access(principal, purpose).rows(entity)
    except PolicyDenied:
        assert _entries(wh) == before + 1
        assert wh.audit.entries(since_seq=before)[0].decision == "deny"
        return
    assert _entries(wh) == before + 1
    mine = principal.partner_id
    assert principal.role.value not in ("funder_viewer", "partner_uploader")
    rows = m.table.to_pylist()
    provider_col = (
        "partner_id"
        if entity in ("partner_record", "record_person")
        else "provider_partner_id"
    )
    for g in m.grants:
        if g.provider != mine:
            assert purpose in ROW_GRANTS[g.provider].get(mine, set()), (
                g.provider,
                g.reason,
            )
    others = [r for r in rows if r[provider_col] != mine]
    access = {g.provider: g.access.value for g in m.grants}
    for r in others:
        if access[r[provider_col]] != "identified":
            # neither the warehouse's ids nor anything identifying, only a pseudonym
            assert r["pseudonym"]
            assert all(r.get(f) is None for f in (*IDENTIFYING, "person_id")), r
        if entity == "enrollment":
            assert r["school_year"] != 2024, "outside the agreement's population"
        if r[provider_col] == "c1" and "student_local_id" in r:
            assert r["student_local_id"] in CONSENTED
        if principal.partner_id in PERSONS_OF and r.get("person_id") is not None:
            assert r["person_id"] in PERSONS_OF[principal.partner_id]
    if principal.role.value == "researcher":
        assert "person_id" not in m.table.column_names
        assert not set(m.table.column_names) & {
            "first_name",
            "last_surname",
            "birth_date",
            "address",
            "student_local_id",
            "local_id",
        }


@pytest.mark.parametrize("who", PRINCIPALS)
def test_exports_need_export_microdata(wh: Warehouse, who: str, tmp_path: Path) -> None:
    principal = user(wh, who)
    out = tmp_path / "out.csv"
    try:
        export = wh.access(principal, "research").export(
            "enrollment", ExportFormat.of(out), destination=str(out)
        )
    except PolicyDenied:
        return
    # researchers (r1: export under d1's and d2's agreements) and the steward
    assert who in ("steward", "analyst", "r1.researcher", "d1.analyst", "d2.analyst")
    # the bytes of a CSV file of the permitted rows; where they go is the caller's
    written = pacsv.read_csv(pa.BufferReader(export.content))
    assert written.num_rows == export.table.num_rows > 0
    assert written.column_names == export.table.column_names
    assert not out.exists()
    entry = wh.audit.entries(since_seq=_entries(wh) - 1)[0]
    assert entry.action == "export" and entry.destination == str(out)
    assert entry.rows == export.table.num_rows


def test_an_export_is_a_csv_parquet_or_xlsx_file() -> None:
    table = pa.table({"local_id": ["d1-01", "d1-02"], "grade": [3, None]})
    assert pq.read_table(
        pa.BufferReader(export_bytes(table, ExportFormat.parquet))
    ).equals(table)
    text = export_bytes(table, ExportFormat.csv).decode("utf-8")
    assert text.splitlines()[0] == '"local_id","grade"'
    assert ExportFormat.of("x/ids.PARQUET") is ExportFormat.parquet
    with pytest.raises(UserError, match=r"\.csv, \.xlsx or \.parquet"):
        ExportFormat.of("ids.json")
    sheet = export_bytes(table, ExportFormat.xlsx)  # a spreadsheet for a school
    assert sheet[:2] == b"PK" and ExportFormat.of("r.XLSX") is ExportFormat.xlsx


def test_the_hand_worked_answers(wh: Warehouse) -> None:
    # the steward sees both districts' 2026 rows, never 2024 (outside the population)
    m = wh.access(user(wh, "steward"), "early_warning").rows("enrollment")
    assert m.table.num_rows == 70 and set(m.providers) == {"d1", "d2"}
    assert "person_id" in m.table.column_names
    # a district sees its own rows, every year, and no other district's rows
    m = wh.access(user(wh, "d1.analyst"), "early_warning").rows("enrollment")
    assert m.table.num_rows == 48 and m.providers == ("d1",)
    assert {r.provider for r in m.refusals} == {"d2"}
    # districts see the club's participants among their own students, with consent
    m = wh.access(user(wh, "d1.analyst"), "early_warning").rows("program_participation")
    assert m.table.num_rows == 6 and m.table.column_names[-1] == "pseudonym"
    m = wh.access(user(wh, "d2.analyst"), "early_warning").rows("program_participation")
    assert m.table.num_rows == 2  # c1-7, c1-8; c1-9 was denied, c1-10 never asked
    # the club sees its participants' enrollment, pseudonymously, and no one else's:
    # only participants whose families consented count as its own (not c1-9, c1-10)
    m = wh.access(user(wh, "c1.analyst"), "early_warning").rows("enrollment")
    assert m.table.num_rows == 8
    assert "student_local_id" not in m.table.column_names
    # a researcher sees the population, never an identity
    m = wh.access(user(wh, "r1.researcher"), "research").rows("enrollment")
    assert m.table.num_rows == 70 and "person_id" not in m.table.column_names
    m = wh.access(user(wh, "r1.researcher"), "research").rows("partner_record")
    assert set(m.table.column_names) == {
        "partner_id",
        "school_id",
        "submission_id",
        "pseudonym",
    }


def test_refusals_say_why(wh: Warehouse) -> None:
    with pytest.raises(PolicyDenied, match="may not row level view"):
        wh.access(user(wh, "f1.viewer"), "program_evaluation").rows("enrollment")
    with pytest.raises(PolicyDenied, match="purpose 'marketing' is not permitted"):
        wh.access(user(wh, "steward"), "marketing").rows("enrollment", providers=["d1"])
    with (
        pytest.raises(Forbidden, match="may not upload"),
        wh.session(user(wh, "f1.viewer")) as s,
    ):
        wh.ingest.submit(s, "d1", "records", [Path("x.csv")])
    with (
        pytest.raises(Forbidden, match="acts only for d1"),
        wh.session(user(wh, "d1.uploader")) as s,
    ):
        wh.ingest.submit(s, "d2", "records", [Path("x.csv")])
    with pytest.raises(UserError, match="name the purpose"):
        wh.access(user(wh, "steward"), "  ")


# --- pseudonyms ---------------------------------------------------------------------


def test_pseudonyms_are_stable_per_recipient_and_never_ids(wh: Warehouse) -> None:
    club = wh.access(user(wh, "c1.analyst"), "early_warning")
    a = {
        r["pseudonym"]
        for r in club.rows("enrollment", providers=["d1"]).table.to_pylist()
    }
    b = {
        r["pseudonym"]
        for r in club.rows("partner_record", providers=["d1"]).table.to_pylist()
    }
    assert len(a) == 6 and a == b  # the same six persons, the same pseudonyms
    again = {
        r["pseudonym"]
        for r in club.rows("enrollment", providers=["d1"]).table.to_pylist()
    }
    assert again == a
    lab = wh.access(user(wh, "r1.researcher"), "research").rows(
        "enrollment", providers=["d1"]
    )
    theirs = {r["pseudonym"] for r in lab.table.to_pylist()}
    assert not a & theirs, "each recipient has pseudonyms of its own"
    ids = {str(n) for n in range(200)} | {f"d1-{i:02d}" for i in range(1, 44)}
    assert not (a | theirs) & ids


# --- consent ------------------------------------------------------------------------


def _consent(
    wh: Warehouse, local_id: str, status: str, on: date, **extra: object
) -> None:
    wh._con.execute(
        "INSERT INTO analytic.consent (provider_partner_id, student_local_id, consent_scope, "
        "consent_status, decision_date, school_year, expiration_date, submission_id) "
        "VALUES ('c1', ?, 'all', ?, ?, ?, ?, 9)",
        [local_id, status, on, extra.get("school_year", 2026), extra.get("expires")],
    )


def _club_rows(wh: Warehouse) -> int:
    """The club's rows the district may see: before the extract's protection
    withholds a history too rare to leave (one person's, alone)."""
    read = wh.access(user(wh, "d2.analyst"), "early_warning").rows(
        "program_participation"
    )
    withheld = read.protection.withheld_rows if read.protection else 0
    return read.table.num_rows + withheld


def test_a_denial_or_expiry_stops_the_flow_at_once(wh: Warehouse) -> None:
    assert _club_rows(wh) == 2
    _consent(wh, "c1-7", "denied", NOW.date())  # same day as the read: denial wins
    assert _club_rows(wh) == 1
    _consent(wh, "c1-8", "granted", date(2026, 2, 1), expires=date(2026, 3, 1))
    assert _club_rows(wh) == 0  # its latest grant expired yesterday
    _consent(wh, "c1-10", "granted", date(2026, 2, 1), school_year=2025)
    assert _club_rows(wh) == 0  # last year's grant does not cover this year
    _consent(wh, "c1-10", "granted", date(2026, 2, 2))
    assert _club_rows(wh) == 1


# --- agreement lifecycle ------------------------------------------------------------


def _amend(
    wh: Warehouse, tmp_path: Path, doc: dict[str, object], effective: date
) -> None:
    path = tmp_path / "amend.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with wh.session(user(wh, "steward")) as s:
        wh.agreements.amend(
            s, str(doc["agreement_id"]), path, effective=effective, summary="test"
        )


def test_suspended_expired_and_pending_agreements_deny(
    wh: Warehouse, tmp_path: Path
) -> None:
    doc = club_agreement()
    _amend(
        wh, tmp_path, {**copy.deepcopy(doc), "status": "suspended"}, date(2026, 3, 1)
    )
    with pytest.raises(PolicyDenied, match="suspended"):
        wh.access(user(wh, "d1.analyst"), "early_warning").rows(
            "program_participation", providers=["c1"]
        )
    # another day than today is never the day a read is decided on
    with pytest.raises(UserError, match="as of today"):
        wh.access(user(wh, "steward"), "early_warning", on=date(2027, 7, 1))
    # a widening amendment is pending until every party approves: not in force
    from tests.policy_fixtures import district_agreement

    wider = district_agreement("d1", 10)
    wider["recipients"][4]["purposes"] = ["early_warning", "program_evaluation"]
    _amend(wh, tmp_path, wider, date(2026, 3, 1))
    with pytest.raises(
        PolicyDenied, match="DSA-D1@2 would allow it but awaits approval"
    ):
        wh.access(user(wh, "c1.analyst"), "program_evaluation").rows(
            "enrollment", providers=["d1"]
        )
    # expired: the same read once the districts' agreements have ended
    wh.close()
    with Warehouse.open(wh.path, clock=lambda: datetime(2027, 7, 1)) as later:
        steward = later.access(user(later, "steward"), "early_warning")
        with pytest.raises(PolicyDenied, match="expired on 2027-06-30"):
            steward.rows("enrollment")


def test_lapsed_users_are_refused(wh: Warehouse) -> None:
    steward = user(wh, "steward")
    with wh.session(steward) as s:
        wh.users.add(
            s,
            "temp",
            partner="d1",
            role="partner_analyst",
            expires_on=date(2026, 3, 1),
        )
    with pytest.raises(PolicyDenied, match="expired on 2026-03-01"):
        wh.access(user(wh, "temp"), "early_warning").rows("enrollment")
    with wh.session(steward) as s:
        wh.users.add(
            s,
            "untrained",
            partner="d1",
            role="partner_analyst",
            training_until=date(2026, 1, 31),
        )
    with pytest.raises(PolicyDenied, match="training lapsed"):
        wh.access(user(wh, "untrained"), "early_warning").rows("enrollment")
    with wh.session(steward) as s:
        wh.users.disable(s, "d1.analyst", reason="left the district")
    with pytest.raises(PolicyDenied, match="disabled"):
        wh.access(user(wh, "d1.analyst"), "early_warning").rows("enrollment")


# --- hostile strings ----------------------------------------------------------------

HOSTILE = (
    "enrollment; DROP TABLE analytic.enrollment",
    "x' OR '1'='1",
    '"; SELECT * FROM identity.partner_record; --',
    "../../etc/passwd",
    "read_csv('/etc/passwd')",
    "\x00\n\t",
    "é" * 500,
)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_in_every_parameter_leak_nothing(
    wh: Warehouse, text: str
) -> None:
    steward = user(wh, "steward")
    before = wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchall()[0][
        0
    ]
    attempts = [
        lambda: wh.access(steward, text).rows("enrollment"),
        lambda: wh.access(steward, "early_warning").rows(text),
        lambda: wh.access(steward, "early_warning").rows("enrollment", fields=[text]),
        lambda: wh.access(steward, "early_warning").rows(
            "enrollment", providers=[text]
        ),
        lambda: wh.access(steward, "shared_measurement").count("enrollment", [text]),
        lambda: wh.access(steward, "shared_measurement").count(
            "enrollment", [], where={text: ["S1"]}
        ),
        lambda: wh.sign_in(text, text),
        lambda: wh.sign_in_token(text),
    ]
    for attempt in attempts:
        with pytest.raises(
            (PolicyDenied, UserError, NotFoundError, AuthenticationFailed)
        ):
            attempt()
    # a hostile value is only ever a value: it matches nothing
    release = wh.access(steward, "shared_measurement").count(
        "enrollment", ["school_id"], where={"school_id": [text]}
    )
    assert release.cells == 0
    after = wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchall()[0][0]
    assert before == after


def test_the_permitted_rows_query_is_built_from_the_model_only() -> None:
    from backbone.governance.policy import Grant, RowScope
    from backbone.partners.agreements.document import AccessLevel

    grant = Grant(
        "c1",
        "program_participation",
        AccessLevel.pseudonymous,
        ("provider_partner_id", "program_id"),
        "DSA-C1@1",
        "allowed",
        RowScope("d1", (2026,), "early_warning"),
        10,
    )
    sql, params = permitted_rows_sql(
        grant,
        on=date(2026, 3, 2),
        school_year=2026,
        pseudonym_key="k",
        school_year_start_month=7,
    )
    assert sql.startswith(
        "SELECT t.provider_partner_id, t.program_id, substr(sha256(? || sha256(?"
    )
    assert (
        "FROM analytic.program_participation t LEFT JOIN identity.record_person rp"
        in sql
    )
    assert "WHERE partner_id = ?" in sql and "consent_scope IN (?, 'all')" in sql
    # the agreement's school years, by the participation's begin date (July starts one)
    assert f"list_contains(?, {school_year_sql('t.begin_date', 7)})" in sql
    # d1's records count only where d1's own facts corroborate them (a false
    # roster line opens nothing), or a steward admin confirmed them: one parameter
    # for each fact table, and one for the confirmations
    from backbone.governance.policy import CORROBORATING

    assert (
        "SELECT student_local_id FROM analytic.enrollment WHERE provider_partner_id = ?"
        in sql
    )
    assert "FROM gov.held_confirmation hc JOIN identity.record_person cr" in sql
    assert "cr.person_id = hc.person_id WHERE hc.partner_id = ?" in sql
    assert params == [
        "k",
        "k",
        "c1",
        [2026],
        "d1",
        *["d1"] * (len(CORROBORATING) + 1),
        "c1",
        "early_warning",
        date(2026, 3, 2),
        date(2026, 3, 2),
        2026,
    ]


# --- the locked session -------------------------------------------------------------


def test_a_session_holds_only_permitted_rows_and_cannot_escape(
    wh: Warehouse, tmp_path: Path
) -> None:
    con = wh.access(user(wh, "c1.analyst"), "early_warning").session(
        ["enrollment", "program_participation"]
    )
    assert con.execute("SELECT count(*) FROM enrollment").fetchall()[0][0] == 8
    assert (
        con.execute("SELECT count(*) FROM program_participation").fetchall()[0][0] == 10
    )
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n", encoding="utf-8")
    for escape in (
        f"SELECT * FROM read_csv('{secret}')",
        f"COPY enrollment TO '{tmp_path / 'out.csv'}'",
        "SET enable_external_access = true",
        f"ATTACH '{wh.path / 'backbone.duckdb'}' AS w",
        "SELECT * FROM analytic.enrollment",
    ):
        with pytest.raises(duckdb.Error):
            con.execute(escape)
    assert not (tmp_path / "out.csv").exists()


def test_errors_are_backbone_errors_for_the_doors(wh: Warehouse) -> None:
    with pytest.raises(BackboneError):
        wh.access(user(wh, "steward"), "early_warning").rows("no_such_entity")
    assert datetime(2026, 3, 2, 9) == NOW


def test_a_persons_view_shows_only_records_and_evidence_one_may_see(
    wh: Warehouse,
) -> None:
    wh._con.execute(
        "INSERT INTO identity.person_event VALUES (1, 'merge', 1, 101, 1, ?, ?)",
        [
            '[{"left": "c1:c1-1", "right": "d1:d1-01", "method": "model"}, '
            '{"left": "d1:d1-01", "right": "d2:d2-05", "method": "model"}]',
            NOW,
        ],
    )
    district = wh.access(user(wh, "d1.analyst"), "early_warning")
    view = wh.linkage.person(district, 1)
    assert [(r.partner_id, r.local_id) for r in view.records] == [("d1", "d1-01")]
    assert [e.evidence for e in view.events] == [()]  # other providers' ids stay out
    with pytest.raises(NotFoundError, match="No person 101"):
        wh.linkage.person(district, 101)  # d2's student: as if there were none
    steward = wh.access(user(wh, "steward"), "identity_resolution")
    full = wh.linkage.person(steward, 1)
    assert {r.partner_id for r in full.records} == {"c1", "d1"}
    assert len(full.events[0].evidence) == 2  # the steward sees every side
    # nothing in the log names another provider's local id
    assert "c1-1" not in str(wh.audit.entries(limit=10**6))


def test_a_csv_export_never_hands_a_spreadsheet_a_formula() -> None:
    table = pa.table(
        {
            "note": ['=HYPERLINK("http://x")', "fine", None, "-2+3", "@SUM(A1)"],
            "days": [1, -2, 3, 4, 5],
        }
    )
    back = pacsv.read_csv(pa.BufferReader(export_bytes(table, ExportFormat.csv)))
    assert back.column("note").to_pylist() == [
        "'=HYPERLINK(\"http://x\")", "fine", "", "'-2+3", "'@SUM(A1)"
    ]  # fmt: skip
    assert back.column("days").to_pylist() == [1, -2, 3, 4, 5]  # numbers stay


def test_pages_of_rows_cover_every_row_once_and_record_only_their_own(
    wh: Warehouse,
) -> None:
    """The steward's 70 enrollment rows of both districts in pages of 30: the
    same order from one page of a release to the next (its seed), every row once,
    and each page's audit entry counts that page's rows per provider, even without
    the provider column; another release, another order."""
    access = wh.access(user(wh, "steward"), "early_warning")
    read = access.rows("enrollment")
    whole = read.table
    assert set(read.rows_by_provider) == {"d1", "d2"}
    for fields in (None, ["school_year", "entry_grade_level"]):
        pages = [
            access.rows("enrollment", fields=fields, page=(start, 30), order_seed=7)
            for start in (0, 30, 60)
        ]
        assert [p.table.num_rows for p in pages] == [30, 30, 10]
        assert all(p.total_rows == 70 for p in pages)
        if fields is not None:
            assert "provider_partner_id" not in pages[0].table.column_names
        again = access.rows("enrollment", fields=fields, page=(30, 30), order_seed=7)
        assert again.table.equals(pages[1].table)  # the same order each read
        other = access.rows("enrollment", fields=fields, page=(30, 30), order_seed=8)
        assert not other.table.equals(pages[1].table)  # another release's order
        counted = [p.rows_by_provider for p in pages]
        assert sum(sum(c.values()) for c in counted) == 70
        for provider, n in read.rows_by_provider.items():
            assert sum(c.get(provider, 0) for c in counted) == n
        entries = wh.audit.page_for(
            wh.access(user(wh, "steward"), "stewardship"), before=None, limit=10
        )
        assert any(
            e.what == "rows of enrollment (rows 61 to 70 of 70)" and e.rows == 10
            for e in entries.entries
        ), [e.what for e in entries.entries]
    rows = sorted(str(r) for r in whole.to_pylist())
    paged = [
        str(r)
        for start in (0, 30, 60)
        for r in access.rows(
            "enrollment", page=(start, 30), order_seed=3
        ).table.to_pylist()
    ]
    assert sorted(paged) == rows
