"""Every command of the CLI, walked: a command that writes takes a principal.

The rule the unit of work enforces (issue 15): every write is authorized and audited
inside the stage, for a signed-in principal. Here the whole Typer command tree is
walked. A command either takes a sign-in (``--user``/``--token``) or is listed below
as one that never writes the warehouse. Then each command is really run, with no one
signed in, against a warehouse that has users: none may change a byte of the
database, whatever it is given.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from backbone.cli import app
from backbone.governance import Role
from backbone.partners import Partner
from backbone.warehouse import Warehouse

# Commands that never write a warehouse (no sign-in needed); each is run below to
# check that it really does not.
READS = {
    "info",
    "settings",
    "partner list",
    "agreement lint",
    "agreement check",
    "mapping suggest",  # drafts a mapping file from a partner's file
    "mapping check",
    "audit verify",
    "audit head",
    "indicators definitions show",
    "indicators definitions history",
    "outcomes initiative list",
    "outcomes initiative show",
}
# Commands that set a new warehouse up, or work on files outside any warehouse.
OUTSIDE = {
    "init",  # creates a new, empty warehouse
    "migrate",  # the explicit schema step; whoever holds the folder
    "demo generate",  # writes a synthetic community's files, no warehouse
    "demo run",  # builds its own new warehouse
    "encode",  # runs on a partner's machine, on its own files
}
# Doors that sign each of their own users in (tests/test_web.py), and run until
# stopped: not run here.
SERVERS = {"serve"}


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(name, command) of every leaf of the tree (Typer's own click objects)."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield " ".join(path), command


COMMANDS = dict(_leaves(typer.main.get_command(app)))


def _signs_in(command: Any) -> bool:
    return {"user", "token"} <= {p.name for p in command.params}


def test_every_command_that_may_write_takes_a_principal() -> None:
    unsigned = {
        name
        for name, command in COMMANDS.items()
        if not _signs_in(command) and name not in READS | OUTSIDE | SERVERS
    }
    assert not unsigned, (
        f"commands without --user/--token that are not known to be read-only: "
        f"{sorted(unsigned)}; a write must take a principal"
    )
    assert not (READS | OUTSIDE | SERVERS) - set(COMMANDS), "stale names in the lists"


def _value(param: Any, files: Path) -> str:
    """A plausible value for a required parameter, so the command gets past parsing."""
    name = (param.name or "").lower()
    if name in ("version", "v1", "v2", "submission_id", "commitment_id", "person_id"):
        return "1"
    if name in ("keep",):
        return "false"
    if any(w in name for w in ("file", "path", "out", "truth", "directory")):
        return str(files / "any.yaml")
    if any(w in name for w in ("date", "since", "due", "effective", "on")):
        return "2026-01-15"
    if "partner" in name or name in ("provider", "recipient", "owner", "funder"):
        return "d1"
    return "x"


def _args(name: str, command: Any, files: Path) -> list[str]:
    args = name.split()
    for param in command.params:
        if not param.required:
            continue
        value = _value(param, files)
        if param.opts[0].startswith("--"):
            args += [param.opts[0], value]
        else:
            args.append(value)
    return args


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tree") / "wh"
    with Warehouse.init(path) as wh:
        with wh.session() as s:
            for p in (
                Partner("b0", "Backbone", "backbone"),
                Partner("d1", "District One", "school_district"),
            ):
                wh.partners.add(s, p)
        with wh.session() as s:
            wh.users.add(s, "steward", partner="b0", role=Role.steward_admin)
    return path


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - OUTSIDE - SERVERS))
def test_no_command_changes_the_warehouse_for_someone_not_signed_in(
    name: str, warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # files a command writes by default land here
    (tmp_path / "any.yaml").write_text("a: 1\n", encoding="utf-8")
    database = warehouse / "backbone.duckdb"
    before = database.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBONE_")}
    result = CliRunner().invoke(
        app,
        [*_args(name, COMMANDS[name], tmp_path), "--warehouse", str(warehouse)]
        if "warehouse" in {p.name for p in COMMANDS[name].params}
        else _args(name, COMMANDS[name], tmp_path),
        env={**env, "BACKBONE_PASSWORD": "", "COLUMNS": "200"},
        input="\n",
    )
    assert database.read_bytes() == before, (
        f"{name} changed the warehouse: {result.output}"
    )
    assert "Traceback" not in result.output
    if name not in READS:
        assert result.exit_code != 0, f"{name} ran without a principal: {result.output}"


# --- every numeric option at its extremes ------------------------------------------

# what a person (or a script gone wrong) may type where a number is asked
INT_EXTREMES = ("-2147483649", "0", "9223372036854775808")
FLOAT_EXTREMES = ("nan", "-inf", "1e-300", "1e308")


def _numeric(command: Any) -> list[tuple[Any, tuple[str, ...]]]:
    found = []
    for param in command.params:
        kinds = set(typing.get_args(param.type_descriptor.annotation)) - {type(None)}
        kinds = kinds or {param.type_descriptor.annotation}
        if kinds == {int} or kinds == {list[int]}:
            found.append((param, INT_EXTREMES))
        elif kinds <= {int, float} and float in kinds:
            found.append((param, FLOAT_EXTREMES))
    return found


NUMERIC = sorted(
    (name, param.name)
    for name, command in COMMANDS.items()
    if name not in SERVERS
    for param, _ in _numeric(command)
)


@pytest.fixture(scope="module")
def steward_token(warehouse: Path) -> str:
    with Warehouse.open(warehouse) as wh, wh.session() as s:
        return wh.users.issue_token(s, "steward").token


@pytest.mark.parametrize(("name", "option"), NUMERIC)
def test_every_numeric_option_at_its_extremes_is_answered_without_a_traceback(
    name: str,
    option: str,
    warehouse: Path,
    steward_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each number a command takes, at the ends of what can be typed (overflowing
    a 64-bit integer, NaN, infinities, the tiniest float): answered with a line
    for a person (or done), never a traceback, a hang or a crash."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "any.yaml").write_text("a: 1\n", encoding="utf-8")
    command = COMMANDS[name]
    param, extremes = next((p, e) for p, e in _numeric(command) if p.name == option)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBONE_")}
    env |= {"BACKBONE_TOKEN": steward_token, "COLUMNS": "200"}
    for extreme in extremes:
        args = _args(name, command, tmp_path)
        if param.opts[0].startswith("--"):
            args += [param.opts[0], extreme]
        else:  # a required argument: put the extreme in its place
            position = [
                p
                for p in command.params
                if p.required and not p.opts[0].startswith("--")
            ].index(param)
            index = len(name.split()) + position
            args[index] = extreme
        if "warehouse" in {p.name for p in command.params}:
            args += ["--warehouse", str(warehouse)]
        if name.startswith("demo "):  # a small community, should an extreme pass
            args += ["--out", str(tmp_path / "demo"), "--force"]
            for small, value in (("--students", "100"), ("--years", "2")):
                if param.opts[0] != small:
                    args += [small, value]
        result = CliRunner().invoke(app, args, env=env, input="\n")
        said = f"{name} --{option} {extreme}: {result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            said + repr(result.exception)
        )
        assert "Traceback" not in result.output, said
        assert result.exit_code in (0, 1, 2), said
