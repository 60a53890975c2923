"""The README and ARCHITECTURE.md stay true to the code."""

from pathlib import Path

import backbone
from backbone.settings import SETTINGS, toml_value

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_exactly_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [
        line.split("#")[0].strip() for line in block.splitlines() if line.strip()
    ]
    assert commands == ["make demo", "make test"]
    assert text.index("```sh") < text.index("Backbone is a")


def test_readme_settings_table_matches_the_settings() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- settings-table", 1)[1].split("<!-- /settings-table -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{s.name}` | `{toml_value(s.default)}` | {s.help} |" for s in SETTINGS
    ]
    assert rows == expected


def test_architecture_names_every_package_and_module_in_its_layer() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    layers = text.split("```", 3)[3]  # the layer picture, after the flow line
    package = ROOT / "src" / "backbone"
    for child in package.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            assert f"{child.name}/" in layers, child.name
        elif child.suffix == ".py" and child.stem not in ("__init__", "__main__"):
            assert child.name in layers, child.name


def test_ci_runs_the_readme_test_command_and_nothing_else() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]


def test_public_api_is_small_and_exact() -> None:
    assert sorted(backbone.__all__) == ["BackboneError", "Warehouse", "__version__"]
