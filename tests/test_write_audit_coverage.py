"""Every stage method that takes a unit of work (a ``Session``) is a write or a
person-level read, and each one has a case in the write-audit tests: refused with
no one signed in, refused (and audited) for whoever may not, one entry when done.
A new such method without a case fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from backbone import Warehouse

TESTS = Path(__file__).parent
# a call with the session as its first argument, as the write-audit cases make it
CALL = re.compile(r"\bwh\.((?:[a-z_]+\.)+[a-z_]+)\(\s*s\s*[,)]")
STAGES_WITHIN_STAGES = ("definitions",)


def _session_methods(wh: Warehouse) -> set[str]:
    found: set[str] = set()

    def visit(prefix: str, obj: object, depth: int) -> None:
        for name in dir(obj):
            if name.startswith("_"):
                continue
            member = inspect.getattr_static(type(obj), name, None)
            if not inspect.isfunction(member):
                if depth == 0 and name in STAGES_WITHIN_STAGES:
                    visit(f"{prefix}.{name}", getattr(obj, name), depth + 1)
                continue
            params = list(inspect.signature(member).parameters.values())[1:]
            if params and params[0].annotation in ("Session", "Session | None"):
                found.add(f"{prefix}.{name}")

    for name in dir(wh):
        if name.startswith("_"):
            continue
        stage = getattr(wh, name)
        # a stage is one of Backbone's objects, not a method or a plain value
        if not inspect.ismethod(stage) and type(stage).__module__.startswith(
            "backbone."
        ):
            visit(name, stage, 0)
    return found


def _covered() -> set[str]:
    return {
        call
        for path in TESTS.glob("test_write_audit*.py")
        for call in CALL.findall(path.read_text(encoding="utf-8"))
    }


def test_every_method_taking_a_session_has_a_write_audit_case(tmp_path: Path) -> None:
    with Warehouse.init(tmp_path / "wh") as wh:
        methods = _session_methods(wh)
    # the walk itself must find the stages' writes, or this test checks nothing
    assert {"agreements.add", "ingest.submit", "indicators.definitions.record"} <= (
        methods
    )
    assert methods - _covered() == set()
