"""Every write of the partnership's paperwork is authorized and audited inside its
stage: agreements (add, amend, approve, withdraw), feeds, commitments and data-use
requests.

For each write: with no one signed in it is refused as "who are you" and changes
nothing; a signed-in user whose role or partner may not do it is refused with 403,
changes nothing and leaves exactly one deny entry; the user who may leaves exactly
one audit entry, in the same transaction as the change.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyotp
import pytest

from backbone import Warehouse
from backbone.errors import AuthenticationFailed, Forbidden
from backbone.governance import Principal, Role
from backbone.partners.agreements.document import parse_document
from backbone.partners.feeds import Feed
from backbone.partners.registry import Contact, Partner

from .governance_fixtures import agreement, register_partners, write
from .test_feeds_requests_status import REQUEST
from .write_audit import (
    Case,
    one_entry_per_write,
    refusal_is_audited,
    snapshot,
    unsigned_changes_nothing,
)

USERS = (
    ("d1.analyst", "d1", Role.partner_analyst),
    ("d1.uploader", "d1", Role.partner_uploader),
    ("d2.analyst", "d2", Role.partner_analyst),
    ("b0.analyst", "b0", Role.steward_analyst),
)
# what the warehouse holds of the paperwork, compared whole before and after
TABLES = (
    "gov.sign_in_failure",
    "gov.held_confirmation",
    "gov.agreement_version",
    "gov.agreement_approval",
    "gov.feed",
    "gov.commitment",
    "gov.commitment_update",
    "gov.data_request",
    "gov.request_review",
    "ref.descriptor_map",
    "ref.partner",
    "ref.partner_contact",
    "ref.school",
    "ref.program",
    "gov.principal",
    "gov.api_token",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DSA-D1 in force (signed), DSA-D2 awaiting both parties, a commitment owed by
    d1 and a request asking d1 and c1; a steward admin and a few other users."""
    files = tmp_path_factory.mktemp("docs")
    path = tmp_path_factory.mktemp("audit") / "wh"
    with Warehouse.init(path) as wh:
        register_partners(wh)
        with wh.session() as s:
            admin = wh.users.add(s, "steward", partner="b0", role=Role.steward_admin)
        with wh.session(admin) as s:
            for user_id, partner, role in USERS:
                wh.users.add(s, user_id, partner=partner, role=role)
            wh.agreements.add(s, write(files / "d1.yaml", agreement()))
            wh.agreements.add(s, write(files / "d2.yaml", _unsigned_d2()))
            wh.commitments.add(
                s, "Send rosters", owner="d1", due=date(2026, 11, 1), made_on=DAY
            )
            wh.requests.file(s, write(files / "req.yaml", REQUEST), on=DAY)
            wh.users.issue_token(s, "d1.analyst", label="laptop")
            wh.partners.add_school(s, "d1", "63", "One High")
        # records of d1 and d2 linked to one person: d1's to be confirmed as
        # served, d2's confirmed already (to be withdrawn)
        wh._con.execute(
            "INSERT INTO identity.record_person VALUES ('d1', 's1', 1, "
            "'deterministic', now()), ('d2', 's2', 1, 'deterministic', now())"
        )
        wh._con.execute(
            "INSERT INTO gov.held_confirmation VALUES ('d2', 's2', 1, 'steward', now(), "
            "'signed form')"
        )
        # d2's analyst locked out by failed sign-ins: for the unlock
        wh._con.execute(
            "INSERT INTO gov.sign_in_failure VALUES ('password:d2.analyst', 5, now())"
        )
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh") as w:
        yield w


DAY = date(2026, 10, 1)
DIRECTORY = {
    "partners": [
        {"partner_id": "c9", "name": "Reading Club", "kind": "community_organization"}
    ],
    "schools": [],
    "programs": [{"program_id": "READ", "partner_id": "c9", "program_name": "Reading"}],
}


def _token_of(wh: Warehouse, user_id: str) -> str:
    [(token_id,)] = wh._con.execute(
        "SELECT token_id FROM gov.api_token WHERE user_id = ?", [user_id]
    ).fetchall()
    return str(token_id)


def _unsigned_d2() -> dict[str, Any]:
    return agreement(
        agreement_id="DSA-D2",
        parties={"provider": "d2", "recipient": "b0"},
        signatories=[],
    )


TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # a second factor's key

CASES = [
    Case(
        "code map set",
        "partner",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.descriptor_maps.set(
            s, "d1", "AttendanceEventCategoryDescriptor", {"X": "Tardy"}
        ),
    ),
    Case(
        "agreement add",
        "agreement",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.agreements.add(
            s, write(tmp / "c.yaml", agreement(agreement_id="DSA-C"))
        ),
    ),
    Case(
        "agreement add_document",
        "agreement",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.agreements.add_document(
            s, parse_document(agreement(agreement_id="DSA-C"), source="test")
        ),
    ),
    Case(
        "agreement amend",
        "agreement",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.agreements.amend(
            s,
            "DSA-D1",
            write(tmp / "v2.yaml", agreement(publication={"min_cell_size": 11})),
            effective=date(2025, 1, 1),
            summary="Stricter.",
        ),
    ),
    Case(
        "agreement approve: wrong role",
        "agreement",
        "d2.analyst",
        "b0.analyst",
        lambda wh, s, tmp: wh.agreements.approve(s, "DSA-D2", "d2", on=DAY),
    ),
    Case(
        "agreement approve: another partner",
        "agreement",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.agreements.approve(s, "DSA-D2", "d2", on=DAY),
    ),
    Case(
        "agreement withdraw",
        "agreement",
        "steward",
        "d2.analyst",
        lambda wh, s, tmp: wh.agreements.withdraw(s, "DSA-D2", 1),
    ),
    Case(
        "feed add",
        "feed",
        "steward",
        "d1.uploader",
        lambda wh, s, tmp: wh.feeds.add(
            s,
            Feed("d1", "att", ("attendance_event",), "monthly", "DSA-D1", None, DAY),
        ),
    ),
    Case(
        "commitment add",
        "commitment",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.commitments.add(
            s, "Match the lists", owner="a1", due=date(2026, 12, 1), made_on=DAY
        ),
    ),
    Case(
        "commitment update",
        "commitment",
        "d1.analyst",
        "d1.uploader",
        lambda wh, s, tmp: wh.commitments.update(
            s, 1, on=DAY, status="in_progress", note="Started."
        ),
    ),
    Case(
        "commitment update: another partner",
        "commitment",
        "steward",
        "d2.analyst",
        lambda wh, s, tmp: wh.commitments.update(s, 1, on=DAY, status="done"),
    ),
    Case(
        "request file",
        "request",
        "steward",
        "d1.analyst",  # the requester is f1
        lambda wh, s, tmp: wh.requests.file(
            s, write(tmp / "r.yaml", {**REQUEST, "request_id": "REQ-2"}), on=DAY
        ),
    ),
    Case(
        "request filed from a web form",
        "request",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.requests.file_document(
            s, {**REQUEST, "request_id": "REQ-3"}, on=DAY
        ),
    ),
    Case(
        "request review",
        "request",
        "d1.analyst",
        "d1.uploader",
        lambda wh, s, tmp: wh.requests.review(
            s,
            "REQ-1",
            provider="d1",
            decision="approve",
            fit=3,
            protections=3,
            minimum_necessary=3,
            on=DAY,
        ),
    ),
    Case(
        "request review: another partner",
        "request",
        "steward",
        "d2.analyst",
        lambda wh, s, tmp: wh.requests.review(
            s,
            "REQ-1",
            provider="c1",
            decision="decline",
            fit=1,
            protections=1,
            minimum_necessary=1,
            on=DAY,
        ),
    ),
    Case(
        "partner add",
        "partner",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.partners.add(
            s,
            Partner("c9", "Reading Club", "community_organization"),
            (Contact("Rae", "rae@example.org"),),
            (("R1", "Main site"),),
        ),
    ),
    Case(
        "partner add_contact",
        "partner",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.partners.add_contact(
            s, "d1", Contact("Dee", "dee@example.org", "data lead")
        ),
    ),
    Case(
        "partner add_school",
        "partner",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.partners.add_school(s, "d1", "999", "New High"),
    ),
    Case(
        "partner import_directory",
        "partner",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.partners.import_directory(
            s, _json(tmp / "directory.json", DIRECTORY)
        ),
    ),
    Case(
        "partner register_entries",
        "partner",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.partners.register_entries(
            s,
            {
                "schools": [
                    {"partner_id": "d1", "local_school_code": "70", "name": "Seventy"}
                ]
            },
            "add school d1/70",
        ),
    ),
    Case(
        "partner rename",
        "partner",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.partners.rename(s, "school", "d1/63", "One High School"),
    ),
    Case(
        "partner close",
        "partner",
        "steward",
        "d1.analyst",
        lambda wh, s, tmp: wh.partners.close(s, "school", "d1/63", date(2026, 6, 30)),
    ),
    Case(
        "user disable",
        "user",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.users.disable(s, "d2.analyst", reason="left"),
    ),
    Case(
        "user unlock",
        "user",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.users.unlock(s, "d2.analyst"),
    ),
    Case(
        "linkage confirm_held",
        "holding",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.linkage.confirm_held(s, "d1", "s1", "signed form"),
    ),
    Case(
        "linkage withdraw_held",
        "holding",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.linkage.withdraw_held(s, "d2", "s2", "forged"),
    ),
    Case(
        "user set_password: someone else's",
        "user",
        "steward",
        "d2.analyst",
        lambda wh, s, tmp: wh.users.set_password(s, "d1.analyst", "a long passphrase"),
    ),
    Case(
        "user set_second_factor: someone else's",
        "user",
        "steward",
        "d2.analyst",
        lambda wh, s, tmp: wh.users.set_second_factor(
            s, "d1.analyst", TOTP_SECRET, pyotp.TOTP(TOTP_SECRET).now()
        ),
    ),
    Case(
        "user issue_token: someone else's",
        "token",
        "d1.analyst",
        "d2.analyst",
        lambda wh, s, tmp: wh.users.issue_token(s, "d1.analyst"),
    ),
    Case(
        "user revoke_token: someone else's",
        "token",
        "d1.analyst",
        "d2.analyst",
        lambda wh, s, tmp: wh.users.revoke_token(s, _token_of(wh, "d1.analyst")),
    ),
]


def _json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _state(wh: Warehouse) -> dict[str, object]:
    return snapshot(wh, TABLES, "agreements")


def _user(wh: Warehouse, user_id: str) -> Principal:
    return wh.users.get(user_id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_without_sign_in_nothing_changes(
    wh: Warehouse, tmp_path: Path, case: Case
) -> None:
    unsigned_changes_nothing(wh, tmp_path, case, _state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_who_may_not_is_refused_and_the_refusal_audited(
    wh: Warehouse, tmp_path: Path, case: Case
) -> None:
    refusal_is_audited(wh, tmp_path, case, _state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_write_leaves_exactly_one_entry(
    wh: Warehouse, tmp_path: Path, case: Case
) -> None:
    one_entry_per_write(wh, tmp_path, case, _state)


def test_the_signed_in_user_is_who_approved_reviewed_and_reported(
    wh: Warehouse,
) -> None:
    analyst, admin = _user(wh, "d1.analyst"), _user(wh, "steward")
    seq = wh.audit.head().seq
    with wh.session(analyst) as s:
        wh.commitments.update(s, 1, on=DAY, note="Started.")
        wh.requests.review(
            s,
            "REQ-1",
            provider="d1",
            decision="approve",
            fit=3,
            protections=3,
            minimum_necessary=3,
            on=DAY,
        )
    with wh.session(admin) as s:
        v = wh.agreements.approve(
            s, "DSA-D2", "d2", on=DAY, title="Superintendent of District Two"
        )
    assert v.approvals == (("d2", "steward", DAY),)
    assert wh.commitments.history(1)[-1].by == "d1.analyst"
    assert [(r.provider, r.reviewer) for r in wh.requests.get("REQ-1").reviews] == [
        ("d1", "d1.analyst")
    ]
    entries = wh.audit.entries(since_seq=seq)
    # a steward admin records the approval on the party's behalf; the analyst
    # speaks for its own partner
    assert [e["on_behalf_of"] for e in entries] == [None, None, "d2"]
    assert "signed by Superintendent of District Two" in entries[-1]["what"]


def test_the_unbacked_records_are_the_steward_admins_to_read_and_each_read_audited(
    wh: Warehouse,
) -> None:
    seq = wh.audit.head().seq
    with pytest.raises(AuthenticationFailed), wh.session(None) as s:
        wh.linkage.unbacked(s)
    with pytest.raises(Forbidden), wh.session(_user(wh, "b0.analyst")) as s:
        wh.linkage.unbacked(s, "d1")
    with wh.session(_user(wh, "steward")) as s:
        found = wh.linkage.unbacked(s)
    # d1's record waits; d2's, confirmed, does not
    assert [(u.partner_id, u.local_id, u.others) for u in found.waiting] == [
        ("d1", "s1", ("d2",))
    ]
    assert [(c.partner_id, c.local_id) for c in found.confirmed] == [("d2", "s2")]
    entries = wh.audit.entries(since_seq=seq)
    assert [(e["action"], e["decision"], e["actor"], e["rows"]) for e in entries] == [
        ("read", "deny", "b0.analyst", None),
        ("read", "allow", "steward", 2),
    ]
    # each partner's disclosure report counts what showed its data: d1 its waiting
    # record; d2 its confirmed one and its holding d1's person
    assert entries[-1]["detail"]["rows_by_provider"] == {"d1": 1, "d2": 2}
    with wh.session(_user(wh, "steward")) as s:
        reported = {p: wh.audit.report(s, p).disclosures[-1].rows for p in ("d1", "d2")}
    assert reported == {"d1": 1, "d2": 2}
