"""The mistakes a steward at the terminal must not be able to make: a demo that replaces a
warehouse, an export over an existing file, a token that silently never expires, a
draft mapping's open questions taken as answers, a decided raw file still said to
await a decision."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from backbone import Warehouse
from backbone.cli import app

from .demo_build import DemoBuild, copy_demo

runner = CliRunner()


def test_demo_run_refuses_to_replace_a_warehouse_without_force(tmp_path: Path) -> None:
    with Warehouse.init(tmp_path / "demo" / "warehouse", name="Ours"):
        pass
    kept = (tmp_path / "demo" / "warehouse" / "backbone.toml").read_text()
    result = runner.invoke(app, ["demo", "run", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 1
    assert "already holds a warehouse" in result.output
    assert "--force" in result.output
    assert (tmp_path / "demo" / "warehouse" / "backbone.toml").read_text() == kept
    assert not (tmp_path / "demo" / "community").exists()  # nothing was generated


def test_demo_generate_refuses_to_replace_an_earlier_community(tmp_path: Path) -> None:
    out = tmp_path / "community"
    args = ["demo", "generate", "--out", str(out), "--students", "100", "--years", "2"]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def _first_steward(path: Path) -> dict[str, str]:
    for args in (
        ["partner", "add", "b00-backbone", "--name", "Backbone", "--kind", "backbone"],
        [
            "user",
            "add",
            "steward",
            "--partner",
            "b00-backbone",
            "--role",
            "steward_admin",
        ],
    ):
        done = runner.invoke(app, [*args, "-w", str(path)])
        assert done.exit_code == 0, done.output
    issued = runner.invoke(app, ["user", "token", "steward", "-w", str(path)])
    assert issued.exit_code == 0, issued.output
    return {"BACKBONE_TOKEN": issued.stdout.splitlines()[0].strip()}


def test_a_token_that_never_expires_only_when_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "wh"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    env = _first_steward(path)
    zero = runner.invoke(
        app, ["user", "token", "steward", "--days", "0", "-w", str(path)], env=env
    )
    assert zero.exit_code == 1
    assert "at least one day" in zero.output and "--no-expiry" in zero.output
    forever = runner.invoke(
        app, ["user", "token", "steward", "--no-expiry", "-w", str(path)], env=env
    )
    assert forever.exit_code == 0, forever.output
    assert " until " not in forever.output
    with Warehouse.open(path, read_only=True) as wh:
        issued = [e for e in wh.audit.entries(action="token")]
    assert issued[-1]["detail"]["expires_at"] is None  # recorded as never expiring


def test_mapping_check_refuses_the_questions_a_draft_left(tmp_path: Path) -> None:
    data = tmp_path / "attendance.csv"
    data.write_text(
        "student id,date,code,school\n1,2025-09-02,A,HS01\n2,2025-09-03,P,HS01\n"
    )
    draft = tmp_path / "draft.yaml"
    suggest = ["mapping", "suggest", str(data), "--entity", "attendance_event"]
    made = runner.invoke(app, [*suggest, "--out", str(draft)])
    assert made.exit_code == 0, made.output
    text = draft.read_text()
    # 'A' is not taken for anything; one letter is only ever a guess
    assert "A: '?'" in text and "P: '? Partial (guess)'" in text
    again = runner.invoke(app, [*suggest, "--out", str(draft)])
    assert again.exit_code == 1 and "--force" in again.output  # the draft is kept
    path = tmp_path / "wh"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    (path / "mappings" / "p1").mkdir(parents=True)
    answered = re.sub(r"(A|P): '.*'", r"\1: Unexcused Absence", text)
    (path / "mappings" / "p1" / "f1.yaml").write_text(answered)
    check = runner.invoke(app, ["mapping", "check", "p1", "f1", "-w", str(path)])
    assert check.exit_code == 1
    assert "school_year: '?' is a question the draft left open" in check.output


def _on_a_copy(
    demo_build: DemoBuild, tmp_path: Path, *, columns: str
) -> tuple[Path, dict[str, str]]:
    """A private copy of the test demo and the steward's environment on it
    (``columns`` empty: standard output is not a terminal, nothing is cut)."""
    demo = copy_demo(demo_build, tmp_path / "demo")
    return demo, {
        "BACKBONE_WAREHOUSE": str(demo / "warehouse"),
        "BACKBONE_TOKEN": (demo / "steward.token").read_text().strip(),
        "COLUMNS": columns,
    }


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_decide_raw_settles_what_submissions_show_says(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    _, env = _on_a_copy(demo_build, tmp_path, columns="250")
    refused = re.search(
        r"Submission (\d+): refused and never stored", demo_build.output
    )
    assert refused, demo_build.output
    sid = refused.group(1)
    before = runner.invoke(app, ["submissions", "show", sid], env=env)
    assert "awaits a decision" in before.output
    decided = runner.invoke(
        app,
        [
            "submissions",
            "decide-raw",
            sid,
            "--purge",
            "--reason",
            "SSNs are not shared",
        ],
        env=env,
    )
    assert decided.exit_code == 0, decided.output
    after = runner.invoke(app, ["submissions", "show", sid], env=env)
    assert "awaits a decision" not in after.output
    assert "the raw file was purged by" in after.output


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_listings_for_pipes_whole_and_in_csv_or_json(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    _, env = _on_a_copy(demo_build, tmp_path, columns="")
    listed = runner.invoke(app, ["submissions", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "…" not in listed.output
    assert "studentEducationOrganizationAssociations.json" in listed.output
    as_json = runner.invoke(app, ["submissions", "list", "--format", "json"], env=env)
    rows = json.loads(as_json.stdout)
    assert rows and {"#", "partner", "feed", "file", "status"} <= set(rows[0])
    assert all(r["read"].isdigit() for r in rows)  # 6600, not "6,600"
    as_csv = runner.invoke(app, ["user", "list", "--format", "csv"], env=env)
    header, *users = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert users and len({len(header), *map(len, users)}) == 1
    wrong = runner.invoke(app, ["user", "list", "--format", "xml"], env=env)
    assert wrong.exit_code == 2 and "'xml' is not one of" in wrong.output
    shown = runner.invoke(
        app, ["agreement", "show", "DSA-A01"], env={**env, "COLUMNS": "40"}
    )
    document = yaml.safe_load(shown.stdout)  # valid YAML even at a narrow width
    assert document["agreement_id"] == "DSA-A01"


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_a_roster_schools_can_use_names_school_names_words_and_a_spreadsheet(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    import fastexcel

    demo, env = _on_a_copy(demo_build, tmp_path, columns="")
    sheet = tmp_path / "high-risk.xlsx"
    shown = runner.invoke(
        app,
        [
            "indicators",
            "roster",
            "--tier",
            "high risk",
            "--limit",
            "5",
            "--out",
            str(sheet),
        ],
        env=env,
    )
    assert shown.exit_code == 0, shown.output
    assert "Saved all" in shown.output
    rows = fastexcel.read_excel(sheet).load_sheet(0).to_arrow().to_pylist()
    assert rows and {"person", "name", "school", "tier", "top factors"} <= set(rows[0])
    assert all(r["tier"] == "high risk" for r in rows)
    # the steward's access to the districts is identified: names, in words
    assert all(re.fullmatch(r"[^,]+, [^,]+", r["name"] or "") for r in rows)
    assert all("School" in r["school"] for r in rows)  # a name, not an id
    assert not any("_" in (r["top factors"] or "") for r in rows)  # words
    with Warehouse.open(demo / "warehouse", read_only=True) as wh:
        exports = wh.audit.entries(action="export")
    assert {e["destination"] for e in exports} == {str(sheet)}
    again = runner.invoke(app, ["indicators", "roster", "--out", str(sheet)], env=env)
    assert again.exit_code == 1 and "--force" in again.output


def test_no_wait_fails_at_once_while_another_process_holds_the_warehouse(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    with Warehouse.open(path):  # this process holds it for writing
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "backbone", "--no-wait", "info", "-w", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        took = time.monotonic() - started
    assert done.returncode == 1
    assert "gave up at once" in done.stderr and "Traceback" not in done.stderr
    assert took < 10


def _stderr_in_a_terminal(args: list[str], stdout: Path | None = None) -> str:
    """What a command writes on stderr when stderr is a terminal (a pseudo-terminal);
    its standard output goes to ``stdout`` (a file), if given."""
    import pty
    import select

    leader, follower = pty.openpty()
    sink = stdout.open("wb") if stdout else subprocess.DEVNULL
    child = subprocess.Popen(args, stdout=sink, stderr=follower)
    os.close(follower)
    said = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            said += chunk
        elif child.poll() is not None:
            break
    child.wait(timeout=60)
    os.close(leader)
    if stdout:
        sink.close()  # type: ignore[union-attr]
    return re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", said).decode(errors="replace")


def test_a_command_says_it_is_at_work_in_a_terminal_and_not_in_a_pipe(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    command = [sys.executable, "-m", "backbone", "info", "-w", str(path)]
    assert "backbone info …" in _stderr_in_a_terminal(command)
    piped = subprocess.run(command, capture_output=True, text=True, check=True)
    assert piped.stderr == ""  # a log gets the answer, not a spinner
    # `> file.csv` at a terminal: the CSV goes to the file, the spinner to the screen
    listed = tmp_path / "partners.csv"
    said = _stderr_in_a_terminal(
        [*command[:3], "partner", "list", "--format", "csv", "-w", str(path)], listed
    )
    assert listed.read_text().startswith("id,") and "id," not in said
