"""The governance doors: users and tokens, governed reads, releases, the audit log
and retention from the command line, as people would type them."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from backbone import Warehouse
from backbone.cli import app
from tests.policy_fixtures import build

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-gov") / "wh"
    build(path)
    return path


@pytest.fixture
def w(built: Path, tmp_path: Path) -> str:
    shutil.copytree(built, tmp_path / "wh")
    return str(tmp_path / "wh")


def _token(w: str, user_id: str) -> dict[str, str]:
    with Warehouse.open(w) as wh, wh.session(wh.users.get("steward")) as s:
        return {**WIDE, "BACKBONE_TOKEN": wh.users.issue_token(s, user_id).token}


def test_the_first_admin_then_users_tokens_and_passwords(tmp_path: Path) -> None:
    w = str(tmp_path / "new")
    assert runner.invoke(app, ["init", w]).exit_code == 0
    with Warehouse.open(w) as wh:
        from tests.policy_fixtures import PARTNERS

        with wh.session() as s:
            for p in PARTNERS:
                wh.partners.add(s, p)
    first = runner.invoke(
        app,
        [
            "user",
            "add",
            "admin",
            "--partner",
            "b0",
            "--role",
            "steward_admin",
            "--password",
            "-w",
            w,
        ],
        env={**WIDE, "BACKBONE_NEW_PASSWORD": "a long admin passphrase"},
    )
    assert first.exit_code == 0, first.output
    unsigned = runner.invoke(
        app,
        ["user", "add", "ann", "--partner", "d1", "--role", "partner_analyst", "-w", w],
        env=WIDE,
    )
    assert unsigned.exit_code == 1 and "sign in first" in unsigned.output
    admin = {
        **WIDE,
        "BACKBONE_USER": "admin",
        "BACKBONE_PASSWORD": "a long admin passphrase",
    }
    added = runner.invoke(
        app,
        [
            "user",
            "add",
            "ann",
            "--partner",
            "d1",
            "--role",
            "partner_analyst",
            "--training-until",
            "2099-01-01",
            "-w",
            w,
        ],
        env=admin,
    )
    assert added.exit_code == 0 and "partner_analyst of d1" in added.output
    token = runner.invoke(
        app, ["user", "token", "ann", "--days", "7", "-w", w], env=admin
    )
    assert token.exit_code == 0 and token.stdout.startswith("bbt_")
    listed = runner.invoke(app, ["user", "list", "-w", w], env=admin)
    assert "ann" in listed.output and "active" in listed.output
    # the list of users is the steward's: nobody else's, and not without signing in
    unsigned = runner.invoke(app, ["user", "list", "-w", w], env=WIDE)
    assert unsigned.exit_code == 1 and "sign in first" in unsigned.output
    bad = runner.invoke(
        app,
        ["rows", "enrollment", "--purpose", "early_warning", "-w", w],
        env={**WIDE, "BACKBONE_USER": "admin", "BACKBONE_PASSWORD": "not it"},
    )
    assert bad.exit_code == 1 and "unknown user or wrong password" in bad.output
    assert "Traceback" not in bad.output
    off = runner.invoke(
        app, ["user", "disable", "ann", "--reason", "left", "-w", w], env=admin
    )
    assert off.exit_code == 0
    refused = runner.invoke(
        app,
        ["rows", "enrollment", "--purpose", "early_warning", "-w", w],
        env={**WIDE, "BACKBONE_TOKEN": token.stdout.strip()},
    )
    assert refused.exit_code == 1 and "revoked" in refused.output


def test_rows_exports_and_counts_through_the_policy(w: str, tmp_path: Path) -> None:
    club = _token(w, "c1.analyst")
    shown = runner.invoke(
        app, ["rows", "enrollment", "--purpose", "early_warning", "-w", w], env=club
    )
    assert shown.exit_code == 0, shown.output
    assert "8 rows of enrollment" in shown.output and "pseudonymous" in shown.output
    assert "d1-0" not in shown.output  # no district ids reach the club
    denied = runner.invoke(
        app, ["rows", "enrollment", "--purpose", "marketing", "-w", w], env=club
    )
    assert (
        denied.exit_code == 1
        and "purpose 'marketing' is not permitted" in denied.output
    )
    lab = _token(w, "r1.researcher")
    out = tmp_path / "extract.parquet"
    exported_args = ["export", "rows", "enrollment", "--purpose", "research"]
    exported = runner.invoke(app, [*exported_args, "--out", str(out), "-w", w], env=lab)
    assert exported.exit_code == 0 and "Wrote 70 rows" in exported.output
    assert pq.read_table(out).num_rows == 70
    with Warehouse.open(w, read_only=True) as wh:
        [entry] = wh.audit.entries(action="export")[-1:]
    assert (entry.actor, entry.destination) == ("r1.researcher", str(out))
    # the file's kind is known before anything is read: nothing read, nothing logged
    odd = runner.invoke(
        app,
        [*exported_args[:5], "--out", str(tmp_path / "extract.json"), "-w", w],
        env=lab,
    )
    assert odd.exit_code == 1 and ".csv, .xlsx or .parquet" in odd.output
    with Warehouse.open(w, read_only=True) as wh:
        assert wh.audit.entries(action="export")[-1].seq == entry.seq
    fund = _token(w, "f1.viewer")
    counted = runner.invoke(
        app,
        [
            "count",
            "demographics",
            "--by",
            "english_learner",
            "--purpose",
            "program_evaluation",
            "-w",
            w,
        ],
        env=fund,
    )
    assert counted.exit_code == 0, counted.output
    assert "2 of 3 cells suppressed" in counted.output and "40" in counted.output
    rates = runner.invoke(
        app,
        [
            "count",
            "enrollment",
            "--by",
            "school_id",
            "--matching",
            "entry_grade_level=Ninth grade",
            "--purpose",
            "program_evaluation",
            "-w",
            w,
        ],
        env=fund,
    )
    assert rates.exit_code == 0, rates.output
    # audited with the first release of the same students: most cells are held back
    assert "cells suppressed" in rates.output and "100.0%" not in rates.output
    hostile = runner.invoke(
        app,
        [
            "count",
            "enrollment",
            "--by",
            "school_id; DROP TABLE x",
            "--purpose",
            "program_evaluation",
            "-w",
            w,
        ],
        env=fund,
    )
    assert hostile.exit_code == 1 and "has no field" in hostile.output
    malformed = runner.invoke(
        app,
        [
            "count",
            "enrollment",
            "--where",
            "nonsense",
            "--purpose",
            "program_evaluation",
            "-w",
            w,
        ],
        env=fund,
    )
    assert malformed.exit_code == 1 and "COLUMN=VALUE" in malformed.output


def test_audit_verify_report_and_a_broken_chain(w: str, tmp_path: Path) -> None:
    club = _token(w, "c1.analyst")
    runner.invoke(
        app, ["rows", "enrollment", "--purpose", "early_warning", "-w", w], env=club
    )
    ok = runner.invoke(app, ["audit", "verify", "-w", w], env=WIDE)
    assert ok.exit_code == 0 and "Audit log intact" in ok.output
    head = runner.invoke(app, ["audit", "head", "-w", w]).stdout.strip()
    anchored = runner.invoke(
        app, ["audit", "verify", "--anchor", head, "-w", w], env=WIDE
    )
    assert anchored.exit_code == 0
    d1 = _token(w, "d1.analyst")
    report = runner.invoke(app, ["audit", "report", "--partner", "d1", "-w", w], env=d1)
    assert (
        report.exit_code == 0
        and "c1.analyst" in report.output
        and "Chain head" in report.output
    )
    out = tmp_path / "reports" / "d1.csv"
    runner.invoke(
        app, ["audit", "report", "--partner", "d1", "--out", str(out), "-w", w], env=d1
    )
    with out.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["who"] for r in written] == ["c1.analyst"]
    assert written[0]["what"] == "rows of enrollment"
    nosy = runner.invoke(app, ["audit", "report", "--partner", "d2", "-w", w], env=d1)
    assert nosy.exit_code == 1 and "only d1's disclosure report" in nosy.output
    with Warehouse.open(w) as wh:
        wh._con.execute("DELETE FROM gov.audit_log WHERE seq = 3")
    broken = runner.invoke(app, ["audit", "verify", "-w", w], env=WIDE)
    assert broken.exit_code == 1 and "BROKEN at entry 3" in broken.output


def test_retention_due_and_run(w: str) -> None:
    due = runner.invoke(app, ["retention", "due", "-w", w], env=_token(w, "steward"))
    assert due.exit_code == 0 and "Nothing is due" in due.output
    partner = runner.invoke(
        app, ["retention", "due", "-w", w], env=_token(w, "d1.analyst")
    )
    assert partner.exit_code == 1 and "only the steward's" in partner.output
    unsigned = runner.invoke(app, ["retention", "run", "-w", w], env=WIDE)
    assert unsigned.exit_code == 1 and "sign in first" in unsigned.output
    ran = runner.invoke(app, ["retention", "run", "-w", w], env=_token(w, "steward"))
    assert ran.exit_code == 0 and "nothing has been destroyed" in ran.output


def test_uploads_need_a_user_of_the_partner(w: str, tmp_path: Path) -> None:
    data = tmp_path / "students.csv"
    data.write_text("id\n1\n", encoding="utf-8")
    args = ["submit", "--partner", "d2", "--feed", "records", str(data), "-w", w]
    unsigned = runner.invoke(app, args, env=WIDE)
    assert unsigned.exit_code == 1 and "sign in first" in unsigned.output
    other = runner.invoke(app, args, env=_token(w, "d1.uploader"))
    assert other.exit_code == 1 and "d1.uploader acts only for d1" in other.output


def test_only_a_signed_in_steward_admin_changes_agreements(
    w: str, tmp_path: Path
) -> None:
    import yaml

    from tests.policy_fixtures import district_agreement

    evil = district_agreement("d1", 10)
    evil["agreement_id"] = "DSA-EVIL"
    evil["recipients"].append(
        {"partner": "d2", "access": "identified", "operations": ["row_level_view"]}
    )
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(evil), encoding="utf-8")
    unsigned = runner.invoke(app, ["agreement", "add", str(path), "-w", w], env=WIDE)
    assert unsigned.exit_code == 1 and "sign in first" in unsigned.output
    analyst = runner.invoke(
        app, ["agreement", "add", str(path), "-w", w], env=_token(w, "d2.analyst")
    )
    assert analyst.exit_code == 1 and "may not administer" in analyst.output
    with Warehouse.open(w) as wh:
        assert "DSA-EVIL" not in wh.agreements.ids()
    done = runner.invoke(
        app, ["agreement", "add", str(path), "-w", w], env=_token(w, "steward")
    )
    assert done.exit_code == 0, done.output
    with Warehouse.open(w) as wh:
        logged = wh.audit.entries(action="agreement")
        assert logged[-1].actor == "steward" and "DSA-EVIL@1" in logged[-1].what
