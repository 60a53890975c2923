"""The parts of the dependency rule import-linter cannot see (it checks modules; the
layers themselves are its contract in pyproject.toml, run by `make lint`):

- no module imports another package's private names (``from backbone.x import _y``);
- only the warehouse and the engines touch another object's connection (``obj._con``);
- outside the engines no code calls what only DuckDB's connection has (``.sql(…)``,
  ``.register``, ``.to_arrow_table()``, ``.df()``, ``.fetchnumpy()``…): a stage asks
  ``backbone.engines`` (``arrow``, ``registered``, ``frame``, ``columns``,
  ``create_table_as``), so a second engine fills those functions, not every stage.
  DB-API ``execute``/``fetchall``/``fetchone`` are common to both and allowed.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "backbone"

# Current offenders against the connection rule, with how often they reach in. The
# test fails when a file reaches in more often (a new offence) or less often (shrink
# this list). The demo plays each partner encoding the records it holds, and reads
# them back from the warehouse instead of the community's files (its only writes
# go through the linkage stage).
CONNECTION_ALLOWED: dict[str, int] = {
    "backbone/demo/pprl.py": 2,
}
# The warehouse owns the connection; the engines are where SQL runs.
CONNECTION_OWNERS = ("backbone/warehouse.py", "backbone/engines/")


# methods of a DuckDB connection or relation that the engine seam wraps
ENGINE_ONLY_METHODS = frozenset(
    {
        "sql",
        "register",
        "unregister",
        "to_arrow_table",
        "fetch_arrow_table",
        "arrow",
        "df",
        "fetchdf",
        "fetchnumpy",
        "from_arrow",
        "pl",
    }
)
# receivers that are not connections although they have such a method: Typer apps
# (``register`` of a command group), Splink's database API, which the linkage model
# hands its tables to (Splink's own seam, not DuckDB's), and the seam itself
# (``engines.arrow``)
NOT_CONNECTIONS = frozenset({"app", "db_api", "engines", "pl", "polars"})


def _modules() -> list[tuple[str, str, ast.Module]]:
    """(path relative to src, dotted module name, syntax tree) of every module."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        parts = relative.removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts.pop()
        found.append((relative, ".".join(parts), ast.parse(path.read_text("utf-8"))))
    return found


def package_of(module: str) -> str:
    """The package a module belongs to: ``backbone.governance.release`` →
    ``backbone.governance``; a top-level module is its own (``backbone.warehouse``)."""
    return ".".join(module.split(".")[:2])


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports_across_packages(module: str, tree: ast.Module) -> list[str]:
    offences = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if not node.module.startswith("backbone."):
            continue
        if package_of(node.module) == package_of(module):
            continue
        offences += [
            f"{module}:{node.lineno} imports {alias.name} from {node.module}"
            for alias in node.names
            if is_private(alias.name)
        ]
    return offences


def foreign_connection_uses(tree: ast.Module) -> int:
    """How often a module reaches for the connection of an object other than itself."""
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "_con"
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    )


def engine_only_calls(module: str, tree: ast.Module) -> list[str]:
    """Calls of a DuckDB-only connection method, as ``module:line .name()``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ENGINE_ONLY_METHODS
        ):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and (
            receiver.id in NOT_CONNECTIONS or receiver.id.endswith("_app")
        ):
            continue
        if isinstance(receiver, ast.Attribute) and receiver.attr.endswith("_app"):
            continue
        if any(isinstance(a, ast.Name) and a.id == "app" for a in node.args):
            continue  # a command group registering itself on the Typer app
        found.append((node.lineno, node.func.attr))
    return [f"{module}:{line} .{name}()" for line, name in sorted(found)]


def test_the_checks_see_what_they_look_for() -> None:
    tree = ast.parse(
        "from backbone.ingest.submit import _helper, public, __all__\n"
        "from backbone.governance.audit import _own\n"
        "def f(wh, self):\n    wh._con.execute('x')\n    self._con.execute('y')\n"
    )
    assert private_imports_across_packages("backbone.governance.access", tree) == [
        "backbone.governance.access:1 imports _helper from backbone.ingest.submit"
    ]
    assert foreign_connection_uses(tree) == 1
    calls = ast.parse(
        "con.sql('x').to_arrow_table()\nself._con.register('t', t)\n"
        "db_api.register(t)\nlinkage.register(app)\ncon.execute('x').fetchall()\n"
    )
    assert engine_only_calls("m", calls) == [
        "m:1 .sql()",
        "m:1 .to_arrow_table()",
        "m:2 .register()",
    ]
    assert package_of("backbone.warehouse") == "backbone.warehouse"


def test_no_module_imports_another_packages_private_names() -> None:
    offences = [
        offence
        for _, module, tree in _modules()
        for offence in private_imports_across_packages(module, tree)
    ]
    assert offences == [], "private names used across packages:\n" + "\n".join(offences)


def test_only_the_warehouse_and_engines_touch_another_objects_connection() -> None:
    uses = Counter(
        {
            relative: count
            for relative, _, tree in _modules()
            if not relative.startswith(CONNECTION_OWNERS)
            and (count := foreign_connection_uses(tree))
        }
    )
    assert uses == Counter(CONNECTION_ALLOWED), (
        "modules reaching for another object's `_con` (beyond the warehouse and "
        "engines) differ from the allow-list; go through the stage's methods, or "
        f"shrink CONNECTION_ALLOWED: found {dict(uses)}"
    )


def test_only_the_engines_call_what_only_duckdb_has() -> None:
    offences = [
        call
        for relative, module, tree in _modules()
        if not relative.startswith("backbone/engines/")
        for call in engine_only_calls(module, tree)
    ]
    assert offences == [], (
        "DuckDB-only calls outside backbone.engines (use engines.arrow, registered, "
        "frame, columns, create_table_as):\n" + "\n".join(offences)
    )
