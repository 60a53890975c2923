"""Starting the command stays cheap: the heavy libraries load only in the stages that
use them (bench/startup.py prints the CPU time; this guards the rule, untimed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# packages that cost a noticeable share of a second to import, and the demo
HEAVY = (
    "sklearn",
    "scipy",
    "statsmodels",
    "matplotlib",
    "opendp",
    "polars",
    "splink",
    "sqlglot",
    "pandas",
    "joblib",
    "fastexcel",
    "xlsxwriter",
    "backbone.demo",
)

_LOADED_AFTER = """
import sys
from typer.testing import CliRunner
from backbone.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, result.output
print(" ".join(sys.modules))
"""


def _heavy_loaded(*args: str) -> set[str]:
    """The heavy packages in ``sys.modules`` after running ``backbone *args``."""
    run = subprocess.run(
        [sys.executable, "-c", _LOADED_AFTER, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        heavy
        for name in run.stdout.split()
        for heavy in HEAVY
        if name == heavy or name.startswith(heavy + ".")
    }


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "wh"
    subprocess.run(
        [sys.executable, "-m", "backbone", "init", str(path)],
        capture_output=True,
        check=True,
    )
    return path


@pytest.mark.parametrize("command", [["--help"], ["info"], ["settings"]])
def test_commands_that_only_look_load_no_heavy_library(
    command: list[str], warehouse_path: Path
) -> None:
    args = (
        [*command, "--warehouse", str(warehouse_path)]
        if command == ["info"]
        else command
    )
    assert _heavy_loaded(*args) == set()


def test_constants_written_out_for_the_command_line_match_their_sources() -> None:
    """The command line spells out two constants so that building it loads neither
    the policy layer nor the measures; they must not drift from the originals."""
    from backbone.cli import linkage, outcomes
    from backbone.governance.policy import IDENTITY_RESOLUTION
    from backbone.measures.initiatives import OUTCOMES

    assert linkage.IDENTITY_RESOLUTION == IDENTITY_RESOLUTION
    assert tuple(OUTCOMES) == outcomes.OUTCOME_CODES


def test_importing_the_package_or_one_governance_module_loads_no_stage() -> None:
    """``import backbone`` and the audit log alone stay light; the public names are
    found all the same."""
    code = (
        "import sys, backbone, backbone.governance.audit\n"
        "light = {'backbone.warehouse', 'backbone.governance.access',"
        " 'backbone.partners.agreements', 'pyarrow'}.isdisjoint(sys.modules)\n"
        "from backbone import Warehouse\n"
        "from backbone.governance import Access, ReleaseGate\n"
        "print(light, Warehouse.__name__, Access.__name__, ReleaseGate.__name__)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["True", "Warehouse", "Access", "ReleaseGate"]
