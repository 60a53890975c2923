"""Users, passwords and tokens; the hash-chained audit log and its tampering."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import AuthenticationFailed, Forbidden, NotFoundError, UserError
from backbone.governance.audit import (
    GENESIS,
    AuditHead,
    LoggedEntry,
    canonical_json,
    chain_hash,
    disclosure_csv,
)
from tests.policy_fixtures import NOW, Clock, build, user


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "wh"
    build(path)
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def wh(built: Path, tmp_path: Path, clock: Clock) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh", clock=clock) as w:
        yield w


# --- users ---------------------------------------------------------------------------


def test_only_the_first_user_needs_no_sign_in_and_must_be_the_steward(
    tmp_path: Path,
) -> None:
    with Warehouse.init(tmp_path / "w", clock=lambda: NOW) as wh:
        from tests.policy_fixtures import PARTNERS

        with wh.session() as s:
            for p in PARTNERS:
                wh.partners.add(s, p)
        with pytest.raises(UserError, match="first user"), wh.session() as setup:
            wh.users.add(setup, "xx", partner="d1", role="partner_analyst")
        with wh.session() as setup:
            admin = wh.users.add(setup, "admin", partner="b0", role="steward_admin")
        with (
            pytest.raises(AuthenticationFailed, match="sign in first"),
            wh.session() as unsigned,
        ):
            wh.users.add(unsigned, "yy", partner="d1", role="partner_analyst")
        with wh.session(admin) as s:
            analyst = wh.users.add(s, "ann", partner="d1", role="partner_analyst")
        with (
            pytest.raises(Forbidden, match=r"add user zz: .* may not administer"),
            wh.session(analyst) as s,
        ):
            wh.users.add(s, "zz", partner="d1", role="partner_analyst")
        with (
            pytest.raises(UserError, match="does not fit a funder"),
            wh.session(admin) as s,
        ):
            wh.users.add(s, "ff", partner="f1", role="partner_analyst")
        with pytest.raises(NotFoundError), wh.session(admin) as s:
            wh.users.add(s, "gg", partner="nobody", role="partner_analyst")


def test_passwords_are_argon2_and_every_sign_in_is_audited(wh: Warehouse) -> None:
    steward = user(wh, "steward")
    with wh.session(steward) as s:
        wh.users.set_password(s, "d1.analyst", "correct horse battery")
    stored = wh._con.execute(
        "SELECT password_hash FROM gov.principal WHERE user_id = 'd1.analyst'"
    ).fetchall()[0][0]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert wh.sign_in("d1.analyst", "correct horse battery").partner_id == "d1"
    with pytest.raises(AuthenticationFailed, match="unknown user or wrong password"):
        wh.sign_in("d1.analyst", "wrong")
    with pytest.raises(AuthenticationFailed, match="unknown user or wrong password"):
        wh.sign_in("nobody", "whatever")
    logins = wh.audit.entries(action="login")
    assert [e.decision for e in logins[-3:]] == ["allow", "deny", "deny"]
    with pytest.raises(UserError, match="at least 12"), wh.session(steward) as s:
        wh.users.set_password(s, "d1.analyst", "short")


def test_a_second_factor_is_kept_once_a_code_shows_it_works_and_every_code_audited(
    wh: Warehouse,
) -> None:
    import pyotp

    analyst = user(wh, "d1.analyst")
    secret = wh.users.new_second_factor_secret()
    app = pyotp.TOTP(secret)
    wrong = f"{(int(app.now()) + 1) % 1_000_000:06d}"
    assert not wh.users.has_second_factor("d1.analyst")
    with pytest.raises(UserError, match="does not match"), wh.session(analyst) as s:
        wh.users.set_second_factor(s, "d1.analyst", secret, wrong)
    assert not wh.users.has_second_factor("d1.analyst")
    with wh.session(analyst) as s:  # one's own
        wh.users.set_second_factor(s, "d1.analyst", secret, app.now())
    assert wh.users.has_second_factor("d1.analyst")
    with pytest.raises(Forbidden), wh.session(analyst) as s:  # not someone else's
        wh.users.set_second_factor(s, "steward", secret, app.now())
    assert wh.users.check_second_factor("d1.analyst", app.now()).partner_id == "d1"
    with pytest.raises(AuthenticationFailed, match="does not match"):
        wh.users.check_second_factor("d1.analyst", wrong)
    with pytest.raises(AuthenticationFailed, match="no second factor"):
        wh.users.check_second_factor("steward", app.now())
    logins = wh.audit.entries(action="login")
    assert [e.decision for e in logins[-3:]] == ["allow", "deny", "deny"]
    assert "second factor" in (logins[-3].what or "")


def test_tokens_are_stored_hashed_and_expire_or_get_revoked(
    wh: Warehouse, clock: Clock
) -> None:
    steward = user(wh, "steward")
    with wh.session(steward) as s:
        issued = wh.users.issue_token(s, "d2.analyst", days=30)
    secret = issued.token.split("_", 2)[2]
    dump = str(wh._con.execute("SELECT * FROM gov.api_token").fetchall())
    assert secret not in dump
    assert wh.sign_in_token(issued.token).user_id == "d2.analyst"
    with pytest.raises(AuthenticationFailed):
        wh.sign_in_token(issued.token[:-2] + "xx")
    clock.now = NOW + timedelta(days=31)
    with pytest.raises(AuthenticationFailed, match="expired"):
        wh.sign_in_token(issued.token)
    clock.now = NOW
    with wh.session(user(wh, "d2.analyst")) as s:
        again = wh.users.issue_token(s, "d2.analyst")
    with wh.session(steward) as s:
        wh.users.disable(s, "d2.analyst", reason="left")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        wh.sign_in_token(again.token)
    with (
        pytest.raises(Forbidden, match=r"issue a token for steward: .* may not"),
        wh.session(user(wh, "d1.analyst")) as s,
    ):
        wh.users.issue_token(s, "steward")


# --- the audit log --------------------------------------------------------------------


def _reads(wh: Warehouse, n: int) -> None:
    access = wh.access(user(wh, "steward"), "early_warning")
    for _ in range(n):
        access.rows("enrollment", providers=["d1"])


def test_the_chain_verifies_and_every_entry_says_who_what_why(wh: Warehouse) -> None:
    _reads(wh, 3)
    result = wh.audit.verify()
    assert result.ok and result.entries == wh.audit.head().seq
    [last] = wh.audit.entries(since_seq=result.entries - 1)
    assert isinstance(last, LoggedEntry) and last.seq == result.entries
    assert last.actor == "steward" and last.purpose == "early_warning"
    assert last.agreements == ("DSA-D1@1",) and last.providers == ("d1",)
    assert last.rows == 40 and last.decision == "allow" and last.at == NOW
    assert last.detail["rows_by_provider"] == {"d1": 40}
    # read as stored, too: the canonical JSON the chain hashes
    stored = wh._con.execute(
        "SELECT entry FROM gov.audit_log WHERE seq = ?", [last.seq]
    ).fetchall()[0][0]
    assert canonical_json(last.as_json()) == stored
    assert last["providers"] == ["d1"] and last["at"] == NOW.isoformat(
        timespec="microseconds"
    )
    first = wh._con.execute(
        "SELECT prev_hash, entry, row_hash FROM gov.audit_log WHERE seq = 1"
    ).fetchall()[0]
    assert first[0] == GENESIS and chain_hash(first[0], first[1]) == first[2]


def test_an_edited_entry_is_found(wh: Warehouse) -> None:
    _reads(wh, 3)
    n = wh.audit.head().seq
    wh._con.execute(
        "UPDATE gov.audit_log SET entry = replace(entry, '\"rows\":40', '\"rows\":4') WHERE seq = ?",
        [n - 1],
    )
    result = wh.audit.verify()
    assert not result.ok and result.first_bad == n - 1 and "edited" in result.problem


def test_a_deleted_entry_is_found(wh: Warehouse) -> None:
    _reads(wh, 3)
    n = wh.audit.head().seq
    wh._con.execute("DELETE FROM gov.audit_log WHERE seq = ?", [n - 2])
    result = wh.audit.verify()
    assert not result.ok and result.first_bad == n - 2


def test_reordered_entries_are_found_even_when_renumbered(wh: Warehouse) -> None:
    _reads(wh, 3)
    n = wh.audit.head().seq
    wh._con.execute("UPDATE gov.audit_log SET seq = -1 WHERE seq = ?", [n - 1])
    wh._con.execute("UPDATE gov.audit_log SET seq = ? WHERE seq = ?", [n - 1, n])
    wh._con.execute("UPDATE gov.audit_log SET seq = ? WHERE seq = -1", [n])
    result = wh.audit.verify()
    assert not result.ok and result.first_bad == n - 1


def test_a_rewritten_chain_is_caught_by_the_anchor_handed_out(wh: Warehouse) -> None:
    _reads(wh, 2)
    anchor = wh.audit.head()
    # an insider deletes the last entry and re-hashes: the chain itself verifies...
    wh._con.execute("DELETE FROM gov.audit_log WHERE seq = ?", [anchor.seq])
    wh.access(user(wh, "steward"), "early_warning").rows("enrollment", providers=["d2"])
    assert wh.audit.verify().ok
    # ...but not against the head a partner kept
    result = wh.audit.verify(anchor=anchor)
    assert (
        not result.ok
        and result.first_bad == anchor.seq
        and "rewritten" in result.problem
    )


def test_the_anchor_is_handed_out_as_seq_colon_hash_and_read_back(
    wh: Warehouse,
) -> None:
    _reads(wh, 1)
    head = wh.audit.head()
    assert head.seq > 0 and len(head.hash) == 64
    assert AuditHead.parse(str(head)) == head
    assert str(head) == f"{head.seq}:{head.hash}"
    for bad in (str(head.seq), f"x:{head.hash}", f"{head.seq}:{head.hash[:12]}"):
        with pytest.raises(ValueError):
            AuditHead.parse(bad)


def test_the_disclosure_report_lists_every_disclosure_of_a_partners_data(
    wh: Warehouse,
) -> None:
    wh.access(user(wh, "c1.analyst"), "early_warning").rows("enrollment")
    wh.access(user(wh, "steward"), "shared_measurement").count(
        "enrollment", ["school_id"]
    )
    with pytest.raises(Exception, match="may not"):
        wh.access(user(wh, "f1.viewer"), "program_evaluation").rows("enrollment")
    with wh.session(user(wh, "d2.analyst")) as s:
        report = wh.audit.report(s, "d2").disclosures
    assert [(d.action, d.actor) for d in report] == [
        ("read", "c1.analyst"),
        ("release", "steward"),
    ]
    # the club read 8 rows: 6 of d1's and 2 of d2's; d2's report counts its own
    assert report[0].agreements == ("DSA-D1@1", "DSA-D2@1") and report[0].rows == 2
    assert report[0].at == NOW
    assert report[1].cells == 4
    assert all(d.actor != "f1.viewer" for d in report), "refusals disclose nothing"
    with wh.session(user(wh, "steward")) as s:
        later = wh.audit.report(s, "d2", since=datetime(2030, 1, 1))
    assert later.disclosures == ()


def test_the_disclosure_report_as_a_csv_file(wh: Warehouse) -> None:
    wh.access(user(wh, "c1.analyst"), "early_warning").rows("enrollment")
    with wh.session(user(wh, "d2.analyst")) as s:
        report = wh.audit.report(s, "d2")
    text = disclosure_csv(report).decode("utf-8")
    assert text.endswith("\r\n")  # csv's own line ends, as spreadsheets expect
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == [
        "seq",
        "at",
        "action",
        "what",
        "who",
        "partner",
        "purpose",
        "agreements",
        "rows",
        "cells",
        "suppressed",
        "destination",
    ]
    [read] = report.disclosures
    assert rows[1:] == [
        [
            str(read.seq),
            NOW.isoformat(timespec="microseconds"),
            "read",
            "rows of enrollment",
            "c1.analyst",
            "c1",
            "early_warning",
            "DSA-D1@1 DSA-D2@1",
            "2",
            "",
            "",
            "",
        ]
    ]
