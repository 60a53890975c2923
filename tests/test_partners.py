import json
from datetime import datetime
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import InputFileError, NotFoundError, UserError
from backbone.partners import Partner
from backbone.partners.registry import DirectoryImport, School

DIRECTORY = {
    "partners": [
        {"partner_id": "d1", "name": "District One", "kind": "school_district"},
        {"partner_id": "c1", "name": "Youth Club", "kind": "community_organization"},
        {"partner_id": "f1", "name": "Fund", "kind": "funder"},
    ],
    "schools": [
        {
            "school_id": "d1/HS01",
            "partner_id": "d1",
            "local_school_code": "HS01",
            "name": "One High",
            "school_level": "High",
        },
        {
            "school_id": "d1/ES01",
            "partner_id": "d1",
            "local_school_code": "ES01",
            "name": "One Elementary",
            "school_level": "Elementary",
        },
    ],
    "programs": [
        {
            "program_id": "P1",
            "partner_id": "c1",
            "program_name": "Clubs",
            "program_type": "Athletics",
        }
    ],
    "initiatives": [
        {
            "initiative_id": "I1",
            "funder_partner_id": "f1",
            "name": "Move",
            "begin_date": "2025-07-01",
            "end_date": "2026-06-30",
            "program_ids": ["P1"],
        }
    ],
    "school_years": [
        {
            "school_year": 2026,
            "description": "2025-26",
            "begin_date": "2025-07-01",
            "end_date": "2026-06-30",
        }
    ],
    "calendars": [
        {
            "school_year": 2026,
            "school_ids": ["d1/HS01", "d1/ES01"],
            "instructional_dates": ["2025-08-25", "2025-08-26", "2025-08-27"],
        }
    ],
}


def test_import_directory_registers_the_community(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "community.json"
    path.write_text(json.dumps(DIRECTORY))
    with warehouse.session() as s:
        done = warehouse.partners.import_directory(s, path)
    assert done == DirectoryImport(
        partners=3,
        schools=2,
        programs=1,
        initiatives=1,
        institutions=0,
        school_years=1,
        calendar_dates=6,
    )
    assert str(done).startswith("3 partners, 2 schools, 1 programs")
    assert warehouse.partners.schools("d1") == [
        School("d1/ES01", "One Elementary", "Elementary"),
        School("d1/HS01", "One High", "High"),
    ]
    assert [p.program_id for p in warehouse.partners.programs("c1")] == ["P1"]
    assert warehouse.partners.get("c1").kind == "community_organization"
    assert warehouse._con.execute(
        "SELECT program_id FROM ref.initiative_program WHERE initiative_id = 'I1'"
    ).fetchall() == [("P1",)]


def test_a_bad_directory_loads_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(DIRECTORY))
    bad["partners"][2]["kind"] = "bank"
    path = tmp_path / "community.json"
    path.write_text(json.dumps(bad))
    with (
        pytest.raises(
            UserError, match=r"partners\[2\]\.kind: kind .bank. is not known"
        ),
        warehouse.session() as s,
    ):
        warehouse.partners.import_directory(s, path)
    assert warehouse.partners.list() == []


def test_unreadable_directory_names_the_file(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "community.json"
    path.write_text("{not json")
    with (
        pytest.raises(InputFileError, match=r"community\.json"),
        warehouse.session() as s,
    ):
        warehouse.partners.import_directory(s, path)


def test_partner_ids_are_unique(warehouse: Warehouse) -> None:
    with warehouse.session() as s:
        warehouse.partners.add(s, Partner("d1", "District One", "school_district"))
    with pytest.raises(UserError, match="already exists"), warehouse.session() as s:
        warehouse.partners.add(s, Partner("d1", "Again", "school_district"))


def test_unknown_partner_is_not_found(warehouse: Warehouse) -> None:
    with pytest.raises(NotFoundError, match="No partner 'zz'"):
        warehouse.partners.get("zz")


@pytest.mark.parametrize("bad", ["", "a b/c", "[/oops]", "-x", "x" * 65])
def test_partner_ids_are_plain(warehouse: Warehouse, bad: str) -> None:
    with pytest.raises(UserError, match="Partner id"), warehouse.session() as s:
        warehouse.partners.add(s, Partner(bad, "Name", "funder"))


def test_partners_are_dated_by_the_sessions_clock(tmp_path: Path) -> None:
    then = datetime(2026, 3, 2, 9, 30)
    directory = tmp_path / "community.json"
    directory.write_text(json.dumps(DIRECTORY))
    with Warehouse.init(tmp_path / "wh", clock=lambda: then) as wh:
        with wh.session() as s:
            wh.partners.add(s, Partner("c9", "Late Club", "community_organization"))
        with wh.session() as s:
            wh.partners.import_directory(s, directory)
        created = wh._con.execute(
            "SELECT DISTINCT created_at FROM ref.partner"
        ).fetchall()
    assert created == [(then,)]
