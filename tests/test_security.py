"""Security a district's counsel asks for: throttled sign-in at every door (issue 23).

The throttle is the warehouse's: the command line, the web site and the API count
failures in the same table, so a guesser gains nothing by switching doors or by
running attempts in parallel."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from backbone import Warehouse
from backbone.errors import AuthenticationFailed, Forbidden, NotFoundError, UserError
from backbone.governance.extracts import new_seed, protect_extract, shuffled
from backbone.governance.throttle import delay_seconds, source_subject
from backbone.ingest.mapping import load_mapping
from tests.policy_fixtures import NOW, Clock, build, user


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("security") / "wh"
    build(path)
    with (
        Warehouse.open(path, clock=lambda: NOW) as wh,
        wh.session(user(wh, "steward")) as s,
    ):
        for who in ("d1.analyst", "d2.analyst", "c1.analyst", "steward"):
            wh.users.set_password(s, who, f"right horse {who}")
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def wh(built: Path, tmp_path: Path, clock: Clock) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh", clock=clock) as w:
        yield w


def _logins(wh: Warehouse, who: str) -> list[str]:
    return [
        r[0]
        for r in wh._con.execute(
            "SELECT entry FROM gov.audit_log WHERE "
            "json_extract_string(entry, '$.action') = 'login' AND "
            "json_extract_string(entry, '$.actor') = ? ORDER BY seq",
            [who],
        ).fetchall()
    ]


def test_the_wait_doubles_after_the_free_failures_up_to_its_cap() -> None:
    assert [delay_seconds(n, 60, 2) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert delay_seconds(40, 60, 2) == 60 and delay_seconds(10**9, 60) == 60


def test_wrong_passwords_wait_then_lock_out_until_a_steward_admin_unlocks(
    wh: Warehouse, clock: Clock
) -> None:
    who, right = "d1.analyst", "right horse d1.analyst"
    for _ in range(3):  # two typos are free; the third counts and starts the wait
        with pytest.raises(AuthenticationFailed, match="wrong password"):
            wh.sign_in(who, "guess")
    with pytest.raises(AuthenticationFailed, match=r"try again in 1 s"):
        wh.sign_in(who, right)  # held: not even the right password is looked at
    clock.now += timedelta(seconds=2)
    with pytest.raises(AuthenticationFailed, match="wrong password"):
        wh.sign_in(who, "guess")
    clock.now += timedelta(seconds=3)
    with pytest.raises(AuthenticationFailed, match="wrong password"):
        wh.sign_in(who, "guess")  # the fifth: locked out
    clock.now += timedelta(minutes=5)
    with pytest.raises(AuthenticationFailed, match="locked until"):
        wh.sign_in(who, right)
    listed = {
        u.principal.user_id: u
        for u in wh.users.list_for(wh.access(user(wh, "steward"), "data_quality"))
    }
    assert listed[who].locked and not listed["d2.analyst"].locked
    # only a steward admin unlocks, and the unlock is audited
    with pytest.raises(Forbidden), wh.session(user(wh, "d2.analyst")) as s:
        wh.users.unlock(s, who)
    with wh.session(user(wh, "steward")) as s:
        assert wh.users.unlock(s, who)
    assert wh.sign_in(who, right).user_id == who
    entries = _logins(wh, who)
    assert sum("wrong password" in e for e in entries) == 5
    assert sum('"locked out' in e for e in entries) == 1
    assert sum("throttled" in e for e in entries) == 1
    unlocked = wh._con.execute(
        "SELECT count(*) FROM gov.audit_log WHERE entry LIKE '%unlocked d1.analyst%'"
    ).fetchone()
    assert unlocked == (1,)


def test_a_lockout_ends_by_itself_after_its_minutes(
    wh: Warehouse, clock: Clock
) -> None:
    who = "d2.analyst"
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            wh.sign_in(who, "guess")
        clock.now += timedelta(seconds=10)
    with pytest.raises(AuthenticationFailed, match="locked"):
        wh.sign_in(who, "right horse d2.analyst")
    clock.now += timedelta(minutes=16)
    assert wh.sign_in(who, "right horse d2.analyst").user_id == who


def test_one_source_guessing_across_many_users_is_slowed(wh: Warehouse) -> None:
    users = [
        "d1.analyst",
        "d2.analyst",
        "c1.analyst",
        "steward",
        "f1.viewer",
        "r1.researcher",
        "analyst",
    ]
    said = []
    for who in users:
        try:
            wh.sign_in(who, "Summer2026!", source="ip:10.0.0.9")
        except AuthenticationFailed as exc:
            said.append(str(exc))
    assert said[:6] == ["unknown user or wrong password."] * 6
    assert "try again in" in said[6]
    # another address is not held back by this one
    with pytest.raises(AuthenticationFailed, match="wrong password"):
        wh.sign_in("r1.researcher", "Summer2026!", source="ip:10.0.0.10")


def test_wrong_tokens_from_one_source_are_slowed_and_right_ones_are_not_counted(
    wh: Warehouse,
) -> None:
    with wh.session(user(wh, "steward")) as s:
        good = wh.users.issue_token(s, "d1.analyst").token
    for _ in range(20):
        assert wh.sign_in_token(good, source="ip:10.0.0.7").user_id == "d1.analyst"
    said = []
    for i in range(8):
        try:
            wh.sign_in_token(f"bbt_{i:012x}_nope", source="ip:10.0.0.7")
        except AuthenticationFailed as exc:
            said.append(str(exc))
    assert said[:6] == ["unknown or wrong token."] * 6
    assert "try again in" in said[6]
    # a right token from the same address is never held back by the wrong ones
    assert wh.sign_in_token(good, source="ip:10.0.0.7").user_id == "d1.analyst"


def test_a_source_is_an_ipv6_slash_64_and_is_forgotten_after_a_while(
    wh: Warehouse, clock: Clock
) -> None:
    assert source_subject("ip:2001:db8:1:2::17") == source_subject(
        "ip:2001:db8:1:2:ffff::1"
    )
    assert source_subject("ip:2001:db8:1:3::1") != source_subject("ip:2001:db8:1:2::1")
    # IPv4 clients of a dual-stack server each their own source, not one /64
    assert source_subject("ip:::ffff:1.2.3.4") == source_subject("ip:1.2.3.4")
    assert source_subject("ip:::ffff:1.2.3.4") != source_subject("ip:::ffff:5.6.7.8")
    for i in range(7):  # one /64 walking its addresses is still one source
        with pytest.raises(AuthenticationFailed):
            wh.sign_in(
                "d2.analyst" if i % 2 else "c1.analyst", "x", source=f"ip:2001:db8::{i}"
            )
        clock.now += timedelta(seconds=1)
    with pytest.raises(AuthenticationFailed, match="try again"):
        wh.sign_in("r1.researcher", "x", source="ip:2001:db8::99")
    clock.now += timedelta(minutes=16)
    with pytest.raises(AuthenticationFailed, match="wrong password"):
        wh.sign_in("r1.researcher", "x", source="ip:2001:db8::99")


def test_a_second_factor_code_is_taken_once(wh: Warehouse) -> None:
    """A code seen over a shoulder, or replayed from a log, within its 30
    seconds is refused; the app's next code is taken."""
    from datetime import datetime

    import pyotp

    who = "d1.analyst"
    secret = wh.users.new_second_factor_secret()
    app = pyotp.TOTP(secret)
    with wh.session(user(wh, "steward")) as s:
        wh.users.set_second_factor(s, who, secret, app.now())
    if time.time() % 30 > 27:  # the step below must not end while it is checked
        time.sleep(4)
    step = app.timecode(datetime.now())
    code = app.generate_otp(step)
    assert wh.users.check_second_factor(who, code).user_id == who
    with pytest.raises(AuthenticationFailed, match="used already"):
        wh.users.check_second_factor(who, code)
    # nor an older one still inside the window
    with pytest.raises(AuthenticationFailed, match="used already"):
        wh.users.check_second_factor(who, app.generate_otp(step - 1))
    # the app's next code is taken, once
    following = app.generate_otp(step + 1)
    assert wh.users.check_second_factor(who, following).user_id == who
    with pytest.raises(AuthenticationFailed, match="used already"):
        wh.users.check_second_factor(who, following)
    # a new app (set by a steward admin): its current code is taken at once
    fresh = wh.users.new_second_factor_secret()
    with wh.session(user(wh, "steward")) as s:
        wh.users.set_second_factor(s, who, fresh, pyotp.TOTP(fresh).now())
    assert wh.users.check_second_factor(who, pyotp.TOTP(fresh).now()).user_id == who
    reasons = [json.loads(e)["reason"] for e in _logins(wh, who)]
    assert reasons.count("TOTP code used before") == 3


def test_parallel_command_line_guesses_lock_the_user_out_across_processes(
    built: Path, tmp_path: Path
) -> None:
    """Real processes, each its own `backbone` command with a wrong password, at
    once: they take turns at the file, and the user ends locked out."""
    folder = tmp_path / "wh"
    shutil.copytree(built, folder)
    env = {**os.environ, "BACKBONE_PASSWORD": "guess", "BACKBONE_USER": "d1.analyst"}
    env.pop("BACKBONE_TOKEN", None)
    command = [sys.executable, "-m", "backbone", "user", "token", "d1.analyst",
               "--warehouse", str(folder)]  # fmt: skip
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    said = [run.communicate(timeout=120)[1] for run in runs]
    assert all(run.returncode == 1 for run in runs), said
    assert not any("Traceback" in s for s in said)
    with Warehouse.open(folder, read_only=True) as wh:
        checked = sum("wrong password" in e for e in _logins(wh, "d1.analyst"))
    assert 3 <= checked <= 5, said
    said_last = said[-1]
    for _ in range(5):  # guess on, after the wait each refusal names, until locked
        if "locked until" in said_last:
            break
        wait = re.search(r"try again in (\d+) s", said_last)
        time.sleep(int(wait.group(1)) if wait else 0)
        said_last = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120
        ).stderr
    assert "locked until" in said_last, said_last
    right = subprocess.run(
        command,
        env={**env, "BACKBONE_PASSWORD": "right horse d1.analyst"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert right.returncode == 1 and "locked until" in right.stderr, right.stderr
    with Warehouse.open(folder, read_only=True) as wh:
        checked = sum("wrong password" in e for e in _logins(wh, "d1.analyst"))
    assert checked == 5  # never more passwords checked than the lockout allows


# --- extracts that cannot be joined or singled out -----------------------------------


def _enrollments(rows: list[tuple[str, str, str]]) -> pa.Table:
    return pa.table(
        {
            "school_id": [r[1] for r in rows],
            "entry_date": pa.array([date.fromisoformat(r[2]) for r in rows]),
            "event_duration": [1.0] * len(rows),  # a measure, the same for all
            "incident_identifier": [f"i{n}" for n in range(len(rows))],  # a record's id
            "pseudonym": [r[0] for r in rows],
        }
    )


KEY = "the recipient's key"
HAND_WORKED = [
    ("A", "s1", "2024-09-03"),
    ("B", "s1", "2024-09-04"),
    ("C", "s1", "2024-09-05"),
    ("D", "s2", "2024-09-03"),
    ("E", "s2", "2024-10-01"),
    ("F", "s3", "2024-09-03"),
]


def test_dates_coarsen_to_the_finest_level_where_histories_are_shared_then_rare_ones_are_withheld() -> (
    None
):
    # k=2: by day all six differ; by month D and E still do; by school year only F
    table, done = protect_extract(_enrollments(HAND_WORKED), 2, 7, KEY)
    assert done is not None and done.dates_as == "school year"
    assert (done.persons, done.withheld_persons, done.withheld_rows) == (6, 1, 1)
    assert sorted(table.column("pseudonym").to_pylist()) == list("ABCDE")
    assert set(table.column("entry_date").to_pylist()) == {"2025"}
    assert "incident_identifier" not in done.quasi_identifiers  # never a history
    tokens = table.column("incident_identifier").to_pylist()
    assert not set(tokens) & {f"i{n}" for n in range(6)}  # the recipient's own tokens
    again, _ = protect_extract(_enrollments(HAND_WORKED), 2, 7, "another recipient")
    assert not set(tokens) & set(again.column("incident_identifier").to_pylist())
    assert "fewer than 2" in done.note() and "school year" in done.note()
    # k=3: D and E share a school year, but only two of them
    table, done = protect_extract(_enrollments(HAND_WORKED), 3, 7, KEY)
    assert done is not None and done.withheld_persons == 3
    # k=3 without D, E and F: by month A, B and C are alike, and nothing is withheld
    table, done = protect_extract(_enrollments(HAND_WORKED[:3]), 3, 7, KEY)
    assert done is not None and (done.dates_as, done.withheld_persons) == ("month", 0)
    assert set(table.column("entry_date").to_pylist()) == {"2024-09"}


def test_a_history_counts_its_rows_and_its_measures() -> None:
    """Fifty identical rows are not hidden among people with one; an exact score
    is a fingerprint, rounded until shared."""
    many = [("A", "s1", "2024-09-03")] * 50 + [
        ("B", "s1", "2024-09-03"),
        ("C", "s1", "2024-09-03"),
    ]
    table, done = protect_extract(_enrollments(many), 2, 7, KEY)
    assert done is not None and done.withheld_persons == 1
    assert set(table.column("pseudonym").to_pylist()) == {"B", "C"}
    scores = pa.table(
        {"scale_score": [612.5, 618.0, 604.25], "pseudonym": ["A", "B", "C"]}
    )
    table, done = protect_extract(scores, 3, 7, KEY)
    assert done is not None and (done.dates_as, done.withheld_persons) == (
        "school year",
        0,
    )
    assert set(table.column("scale_score").to_pylist()) == {600.0}


def test_a_measure_that_is_not_a_number_passes_as_it_is() -> None:
    scores = pa.table(
        {
            "scale_score": [612.5, float("nan"), float("inf")],
            "pseudonym": ["A", "B", "C"],
        }
    )
    _, done = protect_extract(scores, 2, 7, KEY)
    assert done is not None and done.withheld_persons == 3  # no two alike, at any level


def test_identified_rows_pass_unprotected() -> None:
    identified = pa.table({"school_id": ["s9"], "person_id": [4]})
    assert protect_extract(identified, 5, 7, KEY) == (identified, None)


def test_two_recipients_extracts_cannot_be_joined_by_position_or_by_history() -> None:
    """The attack replayed: two recipients receive the same persons' enrollment
    histories under their own pseudonyms. Side by side, row i of one is not row i
    of the other; and every history of one matches at least k of the other."""
    rng = np.random.default_rng(20261206)
    persons = 3000
    schools = [f"s{i}" for i in range(12)]
    first = date(2023, 8, 20)
    rows = []
    for person in range(persons):
        for year in range(int(rng.integers(1, 4))):
            day = first + timedelta(days=365 * year + int(rng.integers(0, 40)))
            rows.append((person, str(rng.choice(schools)), day.isoformat()))

    def extract(recipient: str) -> tuple[pa.Table, dict[str, int]]:
        named = {
            p: f"{recipient}-{hash((recipient, p)) & 0xFFFFFFFF:08x}"
            for p in range(persons)
        }
        table = _enrollments([(named[p], s, d) for p, s, d in rows])
        table, done = protect_extract(table, 5, 7, recipient)
        assert done is not None
        return shuffled(table, new_seed()), {v: k for k, v in named.items()}

    a, who_a = extract("r1")
    b, who_b = extract("r2")
    assert a.num_rows == b.num_rows > 0
    same_place = sum(
        who_a[x] == who_b[y]
        for x, y in zip(
            a.column("pseudonym").to_pylist(),
            b.column("pseudonym").to_pylist(),
            strict=True,
        )
    )
    assert same_place < a.num_rows * 0.01  # chance, not a mapping

    def histories(t: pa.Table) -> dict[str, tuple[tuple[str, str], ...]]:
        out: dict[str, set[tuple[str, str]]] = {}
        for r in t.to_pylist():
            out.setdefault(r["pseudonym"], set()).add((r["school_id"], r["entry_date"]))
        return {p: tuple(sorted(h)) for p, h in out.items()}

    shared_b = Counter(histories(b).values())
    shared_a = Counter(histories(a).values())
    assert min(shared_a.values()) >= 5 and min(shared_b.values()) >= 5  # no one unique
    # joining on history: every pseudonym of one matches five or more of the other
    assert all(shared_b[h] >= 5 for h in histories(a).values())


# --- the command line's holes -------------------------------------------------------


def _with_tokens(
    built: Path, tmp_path: Path, *users: str
) -> tuple[Path, dict[str, str]]:
    """A copy of the warehouse, and an API token for each of ``users``."""
    folder = tmp_path / "wh"
    shutil.copytree(built, folder)
    with (
        Warehouse.open(folder, clock=lambda: NOW) as wh,
        wh.session(user(wh, "steward")) as s,
    ):
        return folder, {
            who: wh.users.issue_token(s, who, days=3000).token for who in users
        }


def _cli(args: list[str], **env: str) -> Any:
    from typer.testing import CliRunner

    from backbone.cli import app

    clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKBONE_")}
    return CliRunner().invoke(app, args, env={**clean, **env, "COLUMNS": "200"})


def test_no_output_lands_inside_the_warehouse_even_with_force(
    built: Path, tmp_path: Path
) -> None:
    folder, tokens = _with_tokens(built, tmp_path, "steward")
    token = tokens["steward"]
    settings = (folder / "backbone.toml").read_bytes()
    for out in (
        folder / "backbone.toml",
        folder / "reports" / "x.csv",
        folder / ".." / "wh" / "backbone.duckdb",
    ):
        said = _cli(
            [
                "audit",
                "report",
                "--partner",
                "d1",
                "--out",
                str(out),
                "--force",
                "--warehouse",
                str(folder),
            ],
            BACKBONE_TOKEN=token,
        )
        assert said.exit_code == 1 and "inside the warehouse folder" in said.output, (
            said.output
        )
    assert (folder / "backbone.toml").read_bytes() == settings
    link = tmp_path / "elsewhere"
    link.symlink_to(folder)  # a link into the folder is the folder
    said = _cli(
        [
            "audit",
            "report",
            "--partner",
            "d1",
            "--out",
            str(link / "r.csv"),
            "--warehouse",
            str(folder),
        ],
        BACKBONE_TOKEN=token,
    )
    assert "inside the warehouse folder" in said.output


def test_a_token_is_read_from_a_file_and_one_on_the_command_line_is_warned_of(
    built: Path, tmp_path: Path
) -> None:
    folder, tokens = _with_tokens(built, tmp_path, "steward")
    token = tokens["steward"]
    secret = tmp_path / "token"
    secret.write_text(token + "\n", encoding="utf-8")
    secret.chmod(0o600)
    by_file = _cli(
        [
            "user",
            "token",
            "d1.analyst",
            "--token",
            f"@{secret}",
            "--warehouse",
            str(folder),
        ]
    )
    assert by_file.exit_code == 0 and "visible to other users" not in by_file.output, (
        by_file.output
    )
    by_env = _cli(
        ["user", "token", "d1.analyst", "--warehouse", str(folder)],
        BACKBONE_TOKEN_FILE=str(secret),
    )
    assert by_env.exit_code == 0, by_env.output
    typed = _cli(
        ["user", "token", "d1.analyst", "--token", token, "--warehouse", str(folder)]
    )
    assert typed.exit_code == 0 and "visible to other users" in typed.output
    missing = _cli(
        [
            "user",
            "token",
            "d1.analyst",
            "--token",
            "@/nonexistent/t",
            "--warehouse",
            str(folder),
        ]
    )
    assert missing.exit_code == 2 and "cannot read the token file" in missing.output
    assert "Traceback" not in missing.output


def test_ids_that_would_name_a_path_are_refused_at_every_door(wh: Warehouse) -> None:
    from backbone.partners.feeds import Feed

    with (
        pytest.raises(UserError, match="no spaces or path separators"),
        wh.session(user(wh, "steward")) as s,
    ):
        wh.feeds.add(
            s,
            Feed(
                "d1", "../../etc", ("enrollment",), "annual", "DSA-d1", None, NOW.date()
            ),
        )
    with pytest.raises(UserError, match="path separator"):
        load_mapping(Path("/tmp"), "d1", "../x")


def test_a_token_cannot_outlive_ten_years_and_says_so(wh: Warehouse) -> None:
    with (
        pytest.raises(UserError, match="at most 3,650 days"),
        wh.session(user(wh, "steward")) as s,
    ):
        wh.users.issue_token(s, "d1.analyst", days=3_650_000)


# --- a witnessed audit chain ---------------------------------------------------------


def _rewrite_from(wh: Warehouse, seq: int) -> None:
    """An insider's consistent rewrite: entry ``seq`` edited, every later hash
    recomputed, so that the chain alone verifies."""
    from backbone.governance.audit import GENESIS, chain_hash

    rows = wh._con.execute(
        "SELECT seq, entry, prev_hash, row_hash FROM gov.audit_log ORDER BY seq"
    ).fetchall()
    prev = GENESIS
    for number, text, _, row_hash in rows:
        if number >= seq:
            if number == seq:
                text = text.replace('"login"', '"logout"', 1)
            row_hash = chain_hash(prev, text)
            wh._con.execute(
                "UPDATE gov.audit_log SET entry = ?, prev_hash = ?, row_hash = ? "
                "WHERE seq = ?",
                [text, prev, row_hash, number],
            )
        prev = row_hash


def test_a_signed_checkpoint_catches_truncation_and_a_consistent_rewrite(
    wh: Warehouse, tmp_path: Path
) -> None:
    for _ in range(3):
        wh.sign_in("d1.analyst", "right horse d1.analyst")
    kept = wh.checkpoint("d1")
    assert kept.partner == "d1" and kept.seq == wh.audit.head().seq
    assert wh.verify_audit(checkpoints=[kept]).ok
    wh.sign_in("d2.analyst", "right horse d2.analyst")  # the chain goes on
    assert wh.verify_audit(checkpoints=[kept]).ok

    # the newest entries deleted, back past the checkpoint: the chain alone holds
    copy = tmp_path / "cut"
    shutil.copytree(wh.path, copy)
    with Warehouse.open(copy, clock=lambda: NOW) as cut:
        cut._con.execute("DELETE FROM gov.audit_log WHERE seq >= ?", [kept.seq - 1])
        assert cut.audit.verify().ok
        found = cut.verify_audit(checkpoints=[kept])
        assert not found.ok and "ends before entry" in found.problem

    # rewritten from an entry before the checkpoint, every hash recomputed
    _rewrite_from(wh, kept.seq - 2)
    assert wh.audit.verify().ok
    found = wh.verify_audit(checkpoints=[kept])
    assert not found.ok and "rewritten" in found.problem


def test_a_checkpoint_altered_or_signed_by_another_key_is_refused(
    wh: Warehouse, built: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    kept = wh.checkpoint("d1")
    forged = replace(kept, seq=kept.seq + 5)  # the signature no longer covers it
    found = wh.verify_audit(checkpoints=[forged])
    assert not found.ok and "altered" in found.problem
    other = tmp_path / "other"
    shutil.copytree(built, other)
    (other / "secrets" / "warehouse.key").write_bytes(os.urandom(32))
    with Warehouse.open(other, clock=lambda: NOW) as elsewhere:
        theirs = elsewhere.checkpoint("d1")
    found = wh.verify_audit(checkpoints=[theirs])
    assert not found.ok and "another key" in found.problem


def test_the_disclosure_report_hands_out_a_checkpoint_that_audit_verify_checks(
    built: Path, tmp_path: Path
) -> None:
    folder, tokens = _with_tokens(built, tmp_path, "steward")
    token = tokens["steward"]
    out = tmp_path / "report" / "d1.csv"
    said = _cli(
        [
            "audit",
            "report",
            "--partner",
            "d1",
            "--out",
            str(out),
            "--warehouse",
            str(folder),
        ],
        BACKBONE_TOKEN=token,
    )
    kept = out.with_suffix(".checkpoint.json")
    assert said.exit_code == 0 and kept.is_file(), said.output
    ok = _cli(
        ["audit", "verify", "--checkpoints", str(kept), "--warehouse", str(folder)]
    )
    assert ok.exit_code == 0 and "holds 1 signed checkpoint" in ok.output, ok.output
    with Warehouse.open(folder) as wh:
        wh._con.execute(
            "DELETE FROM gov.audit_log WHERE seq >= (SELECT max(seq) - 1 FROM gov.audit_log)"
        )
    cut = _cli(
        ["audit", "verify", "--checkpoints", str(kept), "--warehouse", str(folder)]
    )
    assert cut.exit_code == 1 and "BROKEN" in cut.output and "deleted" in cut.output
    junk = tmp_path / "junk.json"
    junk.write_text("{}", encoding="utf-8")
    bad = _cli(
        ["audit", "verify", "--checkpoints", str(junk), "--warehouse", str(folder)]
    )
    assert bad.exit_code == 1 and "not a Backbone audit checkpoint" in bad.output


def test_a_cursor_serves_only_the_listing_and_reader_it_was_sealed_for(
    wh: Warehouse,
) -> None:
    import base64

    from backbone.api.questions import BY_NAME, RowsParams

    rows = BY_NAME["rows"]
    steward = user(wh, "steward")
    first = rows.answer(
        wh, steward, RowsParams("enrollment", "early_warning", limit=30)
    )
    assert first.next_cursor
    second = rows.answer(
        wh,
        steward,
        RowsParams("enrollment", "early_warning", limit=30, cursor=first.next_cursor),
    )
    assert second.table.num_rows == 30
    forged = base64.urlsafe_b64encode("page:30:1:7:ü".encode()).decode()
    for other in (
        RowsParams("demographics", "early_warning", limit=30, cursor=first.next_cursor),
        RowsParams("enrollment", "early_warning", limit=10, cursor=first.next_cursor),
        RowsParams("enrollment", "early_warning", limit=30, cursor=forged),
    ):
        with pytest.raises(UserError, match="not one this API gave you"):
            rows.answer(wh, steward, other)
    with pytest.raises(UserError, match="not one this API gave you"):
        rows.answer(
            wh,
            user(wh, "analyst"),
            RowsParams(
                "enrollment", "early_warning", limit=30, cursor=first.next_cursor
            ),
        )


def test_a_checkpoint_file_of_the_wrong_shape_is_said_not_crashed(
    tmp_path: Path,
) -> None:
    from backbone.governance.checkpoints import read_checkpoint

    good = {
        "kind": "backbone audit checkpoint",
        "warehouse": "w",
        "partner": "d1",
        "seq": 4,
        "hash": "ab",
        "at": "2026-01-01T00:00:00Z",
        "public_key": "AAAA",
        "signature": "AAAA",
    }
    assert read_checkpoint(json.dumps(good), "ok.json").seq == 4
    for bad in (
        {"signature": 5},
        {"seq": True},
        {"seq": "4"},
        {"extra": 1},
        {"kind": "x"},
    ):
        with pytest.raises(UserError, match="not a Backbone audit checkpoint"):
            read_checkpoint(json.dumps({**good, **bad}), "bad.json")
    with pytest.raises(UserError, match="not a Backbone audit checkpoint"):
        read_checkpoint("[1, 2]", "list.json")


def test_an_output_path_that_loops_is_said_not_crashed(
    built: Path, tmp_path: Path
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    said = _cli(
        [
            "audit",
            "report",
            "--partner",
            "d1",
            "--out",
            str(loop / "r.csv"),
            "--warehouse",
            str(built),
        ]
    )
    assert said.exit_code == 1 and "Traceback" not in said.output
    assert "cannot tell where this path leads" in said.output


def test_metadata_needs_a_sign_in_and_shows_each_partner_its_own(
    built: Path, tmp_path: Path
) -> None:
    folder, tokens = _with_tokens(built, tmp_path, "steward", "d1.analyst", "f1.viewer")
    with Warehouse.open(folder, read_only=True) as wh:
        everyone = set(wh.agreements.ids())
    w = ["--warehouse", str(folder), "--format", "csv"]
    for command in (
        ["agreement", "list"],
        ["user", "list"],
        ["submissions", "list"],
        ["feed", "list"],
    ):
        unsigned = _cli([*command, *w])
        assert unsigned.exit_code == 1 and "sign in first" in unsigned.output, command

    def listed(who: str) -> set[str]:
        said = _cli(["agreement", "list", *w], BACKBONE_TOKEN=tokens[who])
        assert said.exit_code == 0, said.output
        return {line.split(",")[0] for line in said.output.splitlines()[1:]}

    assert listed("steward") == everyone
    mine = listed("d1.analyst")
    assert mine and mine < everyone  # the agreements d1 is a party to, not d2's own
    other = next(iter(everyone - mine))
    hidden = _cli(
        ["agreement", "show", other, "--warehouse", str(folder)],
        BACKBONE_TOKEN=tokens["d1.analyst"],
    )
    assert hidden.exit_code == 1 and "no agreement" in hidden.output
    users = _cli(["user", "list", *w], BACKBONE_TOKEN=tokens["d1.analyst"])
    assert users.exit_code == 1 and "only the steward" in users.output
    # the agreements' findings and decisions: a partner's own, signed in
    here = ["--warehouse", str(folder)]
    unsigned = _cli(["agreement", "lint", *here])
    assert unsigned.exit_code == 1 and "sign in first" in unsigned.output
    linted = _cli(["agreement", "lint", *here], BACKBONE_TOKEN=tokens["d1.analyst"])
    assert {line.split("@")[0] for line in linted.output.splitlines()} == mine
    theirs = _cli(
        ["agreement", "lint", other, *here], BACKBONE_TOKEN=tokens["d1.analyst"]
    )
    assert theirs.exit_code == 1 and "no agreement" in theirs.output
    use = ["agreement", "check", "--recipient", "b0", "--entity", "enrollment",
           "--purpose", "early_warning", "--operation", "aggregate", *here]  # fmt: skip
    asked = {
        who: _cli([*use, "--provider", provider], BACKBONE_TOKEN=tokens[who]).output
        for who, provider in (("d1.analyst", "d2"), ("steward", "d2"))
    }
    assert "you may ask only about uses" in asked["d1.analyst"]
    assert asked["steward"].startswith(("ALLOW", "DENY"))
    # naming oneself as the other side of a link does not make another use one's own
    sneaked = _cli([*use, "--provider", "d2", "--link-with", "d1"],
                   BACKBONE_TOKEN=tokens["d1.analyst"]).output  # fmt: skip
    assert "you may ask only about uses" in sneaked and "DSA-D2" not in sneaked
    # a partner's own question is answered from its own agreements only
    own = _cli([*use, "--provider", "d1"], BACKBONE_TOKEN=tokens["d1.analyst"]).output
    assert own.startswith(("ALLOW", "DENY")) and "DSA-D2" not in own
    # a funder named as a recipient (not a party) is answered as the steward would be
    funded = ["agreement", "check", "--provider", "d1", "--recipient", "f1",
              "--entity", "enrollment", "--purpose", "program_evaluation",
              "--operation", "aggregate", "--on", "2026-03-02", *here]  # fmt: skip
    theirs_said = _cli(funded, BACKBONE_TOKEN=tokens["f1.viewer"]).output
    assert theirs_said.startswith("ALLOW") and "DSA-D1" in theirs_said, theirs_said
    assert _cli(funded, BACKBONE_TOKEN=tokens["steward"]).output == theirs_said
    assert "sign in first" in _cli([*use, "--provider", "d1"]).output
    # every partner's row counts: the steward's, signed in
    counts = "analytic.enrollment"
    assert counts not in _cli(["info", *here]).output
    steward = _cli(["info", *here], BACKBONE_TOKEN=tokens["steward"])
    assert steward.exit_code == 0 and counts in steward.output
    assert (
        counts not in _cli(["info", *here], BACKBONE_TOKEN=tokens["d1.analyst"]).output
    )


# --- a false roster opens nothing ----------------------------------------------------


def _roster_line_of_a_club_member(wh: Warehouse, local_id: str) -> int:
    """A record of d1's, ``local_id``, linked to a member of c1's club that d1
    holds nothing about (a roster line and nothing else); the member's person id."""
    stranger = wh._con.execute(
        "SELECT rc.person_id FROM identity.record_person rc "
        "JOIN analytic.program_participation pp ON pp.provider_partner_id = 'c1' "
        "AND pp.student_local_id = rc.local_id WHERE rc.partner_id = 'c1' "
        "AND rc.person_id NOT IN (SELECT person_id FROM identity.record_person "
        "WHERE partner_id = 'd1') LIMIT 1"
    ).fetchone()
    assert stranger is not None
    wh._con.execute(
        "INSERT INTO identity.record_person VALUES ('d1', ?, ?, 'deterministic', ?)",
        [local_id, stranger[0], NOW],
    )
    return int(stranger[0])


def test_a_record_grants_sight_of_others_facts_only_when_the_partners_own_facts_back_it(
    wh: Warehouse,
) -> None:
    from backbone.governance.policy import CORROBORATING, ENTITIES

    def club_rows() -> int:
        return (
            wh.access(user(wh, "d1.analyst"), "early_warning")
            .rows("program_participation")
            .table.num_rows
        )

    before = club_rows()
    assert before > 0
    con = wh._con
    # a false roster line: d1 claims a club member it never enrolled, linked to them
    _roster_line_of_a_club_member(wh, "false-roster-1")
    assert club_rows() == before  # the bare roster line opened nothing
    # and a record d1 really holds stops opening anything once its facts are gone
    held = con.execute(
        "SELECT rp.local_id FROM identity.record_person rp JOIN identity.record_person rc "
        "ON rc.person_id = rp.person_id AND rc.partner_id = 'c1' "
        "JOIN analytic.program_participation pp ON pp.provider_partner_id = 'c1' "
        "AND pp.student_local_id = rc.local_id WHERE rp.partner_id = 'd1' LIMIT 1"
    ).fetchone()
    assert held is not None
    for entity in CORROBORATING:
        con.execute(
            f"DELETE FROM {ENTITIES[entity].qualified_name} "
            "WHERE provider_partner_id = 'd1' AND student_local_id = ?",
            [held[0]],
        )
    assert club_rows() < before


def test_a_steward_admin_confirms_a_record_its_partner_serves_and_may_withdraw_it(
    wh: Warehouse,
) -> None:
    """A roster sent before its first facts: the steward admin looks at the
    unbacked records, confirms one with a reason (it then opens the others'
    facts), and withdraws it again; each step audited, and nobody else's."""
    con = wh._con
    person = _roster_line_of_a_club_member(wh, "new-roster-1")

    def club_rows() -> int:
        access = wh.access(user(wh, "d1.analyst"), "early_warning")
        return access.rows("program_participation").table.num_rows

    before = club_rows()
    steward, analyst = user(wh, "steward"), user(wh, "d1.analyst")
    with wh.session(steward, purpose="identity_resolution") as s:
        waiting = wh.linkage.unbacked(s, "d1").waiting
    assert [(u.local_id, u.person_id) for u in waiting] == [("new-roster-1", person)]
    assert "c1" in waiting[0].others and "d1" not in waiting[0].others
    with pytest.raises(Forbidden), wh.session(analyst) as s:
        wh.linkage.confirm_held(s, "d1", "new-roster-1", "trust me")
    with pytest.raises(UserError, match="reason"), wh.session(steward) as s:
        wh.linkage.confirm_held(s, "d1", "new-roster-1", "  ")
    with pytest.raises(UserError, match="at most 500"), wh.session(steward) as s:
        wh.linkage.confirm_held(s, "d1", "new-roster-1", "a pasted letter " * 40)
    with pytest.raises(NotFoundError), wh.session(steward) as s:
        wh.linkage.confirm_held(s, "d1", "no-such-record", "signed form")
    with wh.session(steward) as s:
        wh.linkage.confirm_held(s, "d1", "new-roster-1", "signed enrollment form")
    assert club_rows() > before
    with wh.session(steward, purpose="identity_resolution") as s:
        now = wh.linkage.unbacked(s, "d1")
    assert now.waiting == []
    assert [(c.local_id, c.confirmed_by, c.reason) for c in now.confirmed] == [
        ("new-roster-1", "steward", "signed enrollment form")
    ]
    # the local id linked to someone else later (sent again with another child's
    # name): the confirmation was about the first child and opens nothing now
    other = con.execute(  # another club member d1 holds nothing about
        "SELECT min(rc.person_id) FROM identity.record_person rc "
        "JOIN analytic.program_participation pp ON pp.provider_partner_id = 'c1' "
        "AND pp.student_local_id = rc.local_id WHERE rc.partner_id = 'c1' "
        "AND rc.person_id <> ? AND rc.person_id NOT IN (SELECT person_id FROM "
        "identity.record_person WHERE partner_id = 'd1')",
        [person],
    ).fetchone()
    assert other is not None and other[0] is not None
    con.execute(
        "UPDATE identity.record_person SET person_id = ? WHERE partner_id = 'd1' "
        "AND local_id = 'new-roster-1'",
        [other[0]],
    )
    assert club_rows() == before
    with wh.session(steward, purpose="identity_resolution") as s:
        [lapsed] = wh.linkage.unbacked(s, "d1").confirmed
    assert not lapsed.holds and lapsed.person_id == person
    con.execute(
        "UPDATE identity.record_person SET person_id = ? WHERE partner_id = 'd1' "
        "AND local_id = 'new-roster-1'",
        [person],
    )
    assert club_rows() > before
    with wh.session(steward) as s:
        assert wh.linkage.withdraw_held(s, "d1", "new-roster-1", "form was forged")
    assert club_rows() == before
    entries = wh.audit.entries(since_seq=0)
    steps = [(e["action"], e["decision"], e["actor"]) for e in entries
             if e["action"] == "holding"]  # fmt: skip
    assert steps == [
        ("holding", "deny", "d1.analyst"),
        ("holding", "allow", "steward"),
        ("holding", "allow", "steward"),
    ]
    assert any(e["reason"] == "signed enrollment form" for e in entries)


def test_the_steward_admin_reads_and_confirms_unbacked_records_from_the_command_line(
    built: Path, tmp_path: Path
) -> None:
    folder, tokens = _with_tokens(built, tmp_path, "steward", "d1.analyst")
    with Warehouse.open(folder) as wh:
        person = wh._con.execute(
            "SELECT min(person_id) FROM identity.record_person WHERE partner_id = 'c1'"
        ).fetchone()
        assert person is not None
        wh._con.execute(
            "INSERT INTO identity.record_person VALUES ('d2', 'roster-9', ?, "
            "'deterministic', ?)",
            [person[0], NOW],
        )
    here = ["--warehouse", str(folder)]
    listed = _cli(["link", "unbacked", "--partner", "d2", *here],
                  BACKBONE_TOKEN=tokens["steward"])  # fmt: skip
    assert listed.exit_code == 0 and "roster-9" in listed.output, listed.output
    refused = _cli(["link", "unbacked", *here], BACKBONE_TOKEN=tokens["d1.analyst"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    confirm = ["link", "confirm", "d2", "roster-9", *here]
    no_reason = _cli(confirm, BACKBONE_TOKEN=tokens["steward"])
    assert no_reason.exit_code != 0 and "--reason" in no_reason.output
    done = _cli([*confirm, "--reason", "signed form"], BACKBONE_TOKEN=tokens["steward"])
    assert done.exit_code == 0 and "now counts as held" in done.output, done.output
    after = _cli(["link", "unbacked", "--partner", "d2", *here],
                 BACKBONE_TOKEN=tokens["steward"])  # fmt: skip
    assert (
        "Confirmed by a steward admin" in after.output and "signed form" in after.output
    )
    assert "Unbacked records" not in after.output
    withdrawn = _cli(["link", "withdraw", "d2", "roster-9", "--reason", "a mistake",
                      *here], BACKBONE_TOKEN=tokens["steward"])  # fmt: skip
    assert withdrawn.exit_code == 0 and "no longer counts" in withdrawn.output
    again = _cli(["link", "unbacked", "--partner", "d2", *here],
                 BACKBONE_TOKEN=tokens["steward"])  # fmt: skip
    assert "roster-9" in again.output and "Confirmed" not in again.output
    unknown = _cli(["link", "unbacked", "--partner", "d9", *here],
                   BACKBONE_TOKEN=tokens["steward"])  # fmt: skip
    assert unknown.exit_code == 1 and "no partner 'd9'" in unknown.output


def test_records_no_fact_backs_are_counted_per_partner_for_the_alert(
    wh: Warehouse,
) -> None:
    from backbone.linkage.holdings import unbacked_counts

    before = dict(unbacked_counts(wh._con))
    club = wh._con.execute(
        "SELECT DISTINCT person_id FROM identity.record_person WHERE partner_id = 'c1' "
        "ORDER BY person_id LIMIT 3"
    ).fetchall()
    for n, (person,) in enumerate(club):
        wh._con.execute(
            "INSERT INTO identity.record_person VALUES ('d2', ?, ?, 'model', ?)",
            [f"roster-only-{n}", person, NOW],
        )
    after = dict(unbacked_counts(wh._con))
    assert after.get("d2", 0) == before.get("d2", 0) + len(club)
    assert after.get("d1", 0) == before.get("d1", 0)


# --- noise and exactness never meet on the same persons and attributes ----------------


def test_an_attribute_released_with_noise_is_not_released_exactly_from_another_entity(
    wh: Warehouse,
) -> None:
    """The indicators carry the demographics' attributes: counts of English
    learners made noisy once must not come out exact through another entity."""
    from backbone.errors import PolicyDenied

    wh._con.execute(
        "INSERT INTO gov.release VALUES (9001, ?, 'steward', 'b0', 'early_warning', "
        '\'{"by":["english_learner"],"entity":"student_indicator","where":{}}\', '
        "'DSA-D1@1', '[\"d1\"]', 'dp', 2, 0, 0.5)",
        [NOW],
    )
    with pytest.raises(PolicyDenied, match="differential privacy"):
        wh.access(user(wh, "steward"), "shared_measurement").count(
            "demographics", ["english_learner"]
        )
    # nor as the numerator of a rate (the share of English learners)
    with pytest.raises(PolicyDenied, match="differential privacy"):
        wh.access(user(wh, "steward"), "shared_measurement").rate(
            "demographics", ["as_of_date"], {"english_learner": ["true"]}
        )
    # another attribute of the same entity is another matter
    released = wh.access(user(wh, "steward"), "shared_measurement").count(
        "demographics", ["as_of_date"]
    )
    assert released.mode == "suppression"


def test_a_new_warehouse_and_what_commands_write_are_their_owners_alone(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "wh"
    made = subprocess.run(
        [sys.executable, "-m", "backbone", "init", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BACKBONE_WAREHOUSE": ""},
    )
    assert made.returncode == 0, made.stderr
    assert folder.stat().st_mode & 0o777 == 0o700
    for path in folder.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_a_tiny_epsilon_once_the_budget_is_spent_is_a_sentence_not_a_traceback(
    wh: Warehouse,
) -> None:
    from backbone.errors import PolicyDenied

    access = wh.access(user(wh, "steward"), "shared_measurement")
    spent = access.count("demographics", ["english_learner"], epsilon=1.0)
    assert spent.mode == "dp"
    for tiny in (1e-13, 1e-300, 5e-324):
        with pytest.raises(UserError, match=r"spends at least 0\.001"):
            access.count("demographics", ["english_learner"], epsilon=tiny)
    with pytest.raises(PolicyDenied, match="budget is spent"):
        access.count("demographics", ["english_learner"], epsilon=0.5)


def test_the_stewards_dashboard_shows_the_newest_alerts(wh: Warehouse) -> None:
    with wh.session(user(wh, "steward")) as s:
        s.record("alert", "records linked to persons their partner never served: d2 12")
    board = wh.dashboard(wh.access(user(wh, "steward"), "data_quality"))
    assert [a.what for a in board.alerts] == [
        "records linked to persons their partner never served: d2 12"
    ]


def test_a_partner_reads_only_the_commitments_owed_by_it_or_to_it(
    wh: Warehouse,
) -> None:
    day = NOW.date()
    with wh.session(user(wh, "steward")) as s:
        theirs = wh.commitments.add(s, "Send rosters", owner="d2", due=day, made_on=day)
        mine = wh.commitments.add(
            s, "Share the calendar", owner="c1", counterpart="d1", due=day, made_on=day
        )
    d1 = wh.access(user(wh, "d1.analyst"), "data_quality")
    listed = {c.commitment_id for c in wh.commitments_for(d1, on=day)}
    assert mine.commitment_id in listed and theirs.commitment_id not in listed
    with pytest.raises(NotFoundError, match="of yours"):
        wh.commitment_for(d1, theirs.commitment_id)
    assert wh.commitment_for(d1, mine.commitment_id)[0].title == "Share the calendar"
    steward = wh.access(user(wh, "steward"), "data_quality")
    assert {theirs.commitment_id, mine.commitment_id} <= {
        c.commitment_id for c in wh.commitments_for(steward, on=day)
    }
