import copy
from typing import Any

import pytest

from backbone.partners.agreements import Effect, diff_documents
from backbone.partners.agreements.diff import classify
from backbone.partners.agreements.document import AgreementDocument

from .governance_fixtures import agreement


def _doc(mutate: Any = None) -> AgreementDocument:
    data = agreement()
    if mutate:
        mutate(data)
    return AgreementDocument.model_validate(data)


def _set(path: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        keys = path.split(".")
        target = data
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _append(path: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for k in path.split("."):
            target = target[int(k)] if isinstance(target, list) else target[k]
        target.append(copy.deepcopy(value))

    return mutate


CASES = [
    (
        "new purpose",
        _append("purposes", {"id": "college", "description": "x"}),
        "purposes",
        Effect.widening,
    ),
    (
        "new field",
        _append("datasets.0.fields", {"name": "event_duration"}),
        "datasets[attendance_event].fields",
        Effect.widening,
    ),
    (
        "dropped field",
        _set("datasets.1.fields", [{"name": "school_id"}]),
        "datasets[enrollment].fields",
        Effect.narrowing,
    ),
    (
        "new entity",
        _append(
            "datasets",
            {"entity": "graduation", "fields": [{"name": "graduation_date"}]},
        ),
        "datasets",
        Effect.widening,
    ),
    (
        "new recipient",
        _append(
            "recipients",
            {"partner": "a1", "access": "aggregate", "operations": ["aggregate"]},
        ),
        "recipients",
        Effect.widening,
    ),
    (
        "higher access",
        _set(
            "recipients.2",
            {
                "partner": "f1",
                "access": "pseudonymous",
                "operations": ["aggregate"],
                "purposes": ["program_evaluation"],
            },
        ),
        "recipients[f1].access",
        Effect.widening,
    ),
    (
        "new operation",
        _append("recipients.1.operations", "export_microdata"),
        "recipients[c1].operations",
        Effect.widening,
    ),
    (
        "lower minimum cell",
        _set("publication", {"min_cell_size": 5}),
        "publication.min_cell_size",
        Effect.widening,
    ),
    (
        "higher minimum cell",
        _set("publication", {"min_cell_size": 11}),
        "publication.min_cell_size",
        Effect.narrowing,
    ),
    (
        "longer retention",
        _set("retention", {"destroy_after_days": 730}),
        "retention.destroy_after_days",
        Effect.widening,
    ),
    (
        "shorter retention",
        _set("retention", {"destroy_after_days": 30}),
        "retention.destroy_after_days",
        Effect.narrowing,
    ),
    (
        "longer term",
        _set("effective_to", "2029-06-30"),
        "effective_to",
        Effect.widening,
    ),
    ("open-ended term", _set("effective_to", None), "effective_to", Effect.widening),
    (
        "linkage off",
        _set("linkage", {"allowed": False, "linkable_with": ["c1"]}),
        "linkage.allowed",
        Effect.narrowing,
    ),
    ("suspended", _set("status", "suspended"), "status", Effect.narrowing),
    (
        "weaker security",
        _set("security", {"mfa_required": False}),
        "security.mfa_required",
        Effect.widening,
    ),
    (
        "slower breach notice",
        _set("breach", {"notify_within_hours": 120}),
        "breach.notify_within_hours",
        Effect.widening,
    ),
    (
        "population narrowed",
        _set("population", {"grades": [9, 10, 11, 12]}),
        "population.grades",
        Effect.narrowing,
    ),
    ("new title", _set("title", "Renamed"), "title", Effect.neutral),
]


@pytest.mark.parametrize(
    ("name", "mutate", "path", "effect"), CASES, ids=[c[0] for c in CASES]
)
def test_each_change_is_classed(
    name: str, mutate: Any, path: str, effect: Effect
) -> None:
    changes = diff_documents(_doc(), _doc(mutate))
    assert [(c.path, c.effect) for c in changes] == [(path, effect)], name
    reverse = diff_documents(_doc(mutate), _doc())
    assert len(reverse) == 1
    if effect is not Effect.neutral and name not in ("open-ended term",):
        assert reverse[0].effect is not effect


def test_identical_versions_have_no_changes() -> None:
    assert diff_documents(_doc(), _doc()) == []


def test_a_version_with_any_widening_change_is_widening() -> None:
    def both(data: dict[str, Any]) -> None:
        data["publication"] = {"min_cell_size": 20}
        data["purposes"].append({"id": "college", "description": "x"})

    changes = diff_documents(_doc(), _doc(both))
    assert {c.effect for c in changes} == {Effect.widening, Effect.narrowing}
    assert classify(changes) is Effect.widening
    assert (
        classify([c for c in changes if c.effect is Effect.narrowing])
        is Effect.narrowing
    )
    assert classify([]) is Effect.neutral


@pytest.mark.parametrize(
    ("mutate", "path", "effect"),
    [
        (
            _set(
                "datasets.0.fields.0",
                {"name": "event_date", "classification": "directory"},
            ),
            "datasets[attendance_event].fields[event_date].classification",
            Effect.widening,
        ),
        (
            _set(
                "purposes.0",
                {"id": "early_warning", "description": "Anything about students."},
            ),
            "purposes[early_warning]",
            Effect.widening,
        ),
        (
            _set(
                "publication",
                {"min_cell_size": 10, "top_bottom_coding": {"top_percent": 99.9}},
            ),
            "publication.top_bottom_coding",
            Effect.narrowing,
        ),
        (
            _set("termination", {"notice_days": 90, "destroy_within_days": 365}),
            "termination.destroy_within_days",
            Effect.narrowing,
        ),
        (
            _set("breach", {"notify_within_hours": 72, "incident_contact": "x@y.org"}),
            "breach",
            Effect.neutral,
        ),
        (
            _set(
                "retention", {"destroy_after_days": 365, "certificate_required": False}
            ),
            "retention.certificate_required",
            Effect.widening,
        ),
    ],
)
def test_finer_changes_are_seen_and_classed(
    mutate: Any, path: str, effect: Effect
) -> None:
    changes = diff_documents(_doc(), _doc(mutate))
    assert (path, effect) in [(c.path, c.effect) for c in changes]


def test_loosening_top_coding_widens() -> None:
    coded = _doc(
        _set(
            "publication",
            {"min_cell_size": 10, "top_bottom_coding": {"top_percent": 95}},
        )
    )
    looser = _doc(
        _set(
            "publication",
            {"min_cell_size": 10, "top_bottom_coding": {"top_percent": 99.9}},
        )
    )
    assert [c.effect for c in diff_documents(coded, looser)] == [Effect.widening]
