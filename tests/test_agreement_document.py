from pathlib import Path

import pytest

from backbone.errors import InputFileError
from backbone.partners.agreements.document import (
    dump_document,
    load_document,
    parse_document,
)

from .governance_fixtures import agreement, write


def test_a_valid_agreement_loads_and_round_trips(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "a.yaml", agreement()))
    assert doc.agreement_id == "DSA-D1"
    assert doc.dataset("attendance_event") is not None
    assert doc.purpose_ids() == {"early_warning", "program_evaluation"}
    import yaml

    again = parse_document(yaml.safe_load(dump_document(doc)), source="round trip")
    assert again == doc


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"tier": "handshake"}, "tier", "Input should be 'mou', 'dsa' or 'dul'"),
        (
            {"effective_to": "2020-01-01"},
            "(document)",
            "effective_to (2020-01-01) is before",
        ),
        (
            {"datasets": [{"entity": "grades", "fields": []}]},
            "datasets[0]",
            "unknown entity 'grades'",
        ),
        (
            {"datasets": [{"entity": "enrollment", "fields": [{"name": "ssn"}]}]},
            "datasets[0]",
            "enrollment has no field 'ssn'",
        ),
        (
            {
                "recipients": [
                    {
                        "partner": "f1",
                        "access": "aggregate",
                        "operations": ["row_level_view"],
                    }
                ]
            },
            "recipients[0]",
            "aggregate access cannot include row-level operations",
        ),
        (
            {
                "recipients": [
                    {
                        "partner": "f1",
                        "access": "aggregate",
                        "operations": ["aggregate"],
                        "purposes": ["marketing"],
                    }
                ]
            },
            "(document)",
            "names purpose 'marketing'",
        ),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_invalid_documents_name_the_file_and_field(
    tmp_path: Path, changes: dict[str, object], path: str, message: str
) -> None:
    file = write(tmp_path / "bad.yaml", agreement(**changes))
    with pytest.raises(InputFileError) as caught:
        load_document(file)
    text = str(caught.value)
    assert str(file) in text
    assert f"{path}: " in text
    assert message in text


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = agreement(tier="x", status="maybe")
    del doc["title"]
    with pytest.raises(InputFileError) as caught:
        load_document(write(tmp_path / "bad.yaml", doc))
    text = str(caught.value)
    assert "tier:" in text and "status:" in text and "title: Field required" in text


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("agreement_id: X\ntitle: [unclosed\n")
    with pytest.raises(
        InputFileError, match=r"broken\.yaml, row \d+: is not valid YAML"
    ):
        load_document(file)


def test_a_list_instead_of_a_mapping_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "list.yaml"
    file.write_text("- a\n- b\n")
    with pytest.raises(InputFileError, match="must be a YAML mapping"):
        load_document(file)
