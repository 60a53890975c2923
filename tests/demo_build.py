"""One `backbone demo run` shared by the tests that need a whole demo (see the
``demo_build`` fixture in conftest.py): the slowest thing the suite does, so it is
done once per session and xdist worker. Tests that read it use it as it is; tests
that write to it take a private copy (:func:`copy_demo`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from backbone.cli import app

# big enough for the risk model's validation and the evaluations' intervals: at
# 3,000 a program's matched groups (~85 participants) meet WWC baseline equivalence
# (0.25 SD on every covariate) about as often as not, whichever records link
DEMO_ARGS = ("--students", "4000", "--seed", "5")


@dataclass(frozen=True)
class DemoBuild:
    out: Path  # community/, warehouse/, charts/, steward.token
    output: str  # what `backbone demo run` printed


def build_demo(out: Path) -> DemoBuild:
    result = CliRunner().invoke(
        app, ["demo", "run", "--out", str(out), *DEMO_ARGS], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return DemoBuild(out, result.output)


def copy_demo(build: DemoBuild, to: Path) -> Path:
    """A private copy of the demo folder, for a test that changes it."""
    shutil.copytree(build.out, to)
    return to


def kept_demo(folder: Path) -> DemoBuild:
    """The demo in ``folder`` (``BACKBONE_TEST_DEMO``), built there on first use:
    for a developer rerunning a few demo tests; the suite builds its own."""
    output = folder / "demo-output.txt"
    if not output.is_file():
        built = build_demo(folder / "demo")
        output.write_text(built.output, encoding="utf-8")
    return DemoBuild(folder / "demo", output.read_text(encoding="utf-8"))
