"""Linkage on people the demo generator did not make, set up through the doors as a
partnership would (``bench/linkage_public.py``): FEBRL's first set split into two
partners, linked at the product's own thresholds beside bare Splink on the same
files, and the same files with a field nobody sent."""

from __future__ import annotations

import csv
import sys
from dataclasses import replace
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from linkage_public import bare_splink, through_doors  # noqa: E402
from linkage_sets import TwoFiles, build  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_public_set_links_at_least_as_well_as_bare_splink(tmp_path: Path) -> None:
    files = build("febrl1", tmp_path / "files")
    product = through_doors(files, tmp_path / "doors")
    splink = bare_splink(files)
    assert product["precision"] >= 0.999, product
    assert product["f1"] >= splink["f1"], (product, splink)
    # the blocking rules reach the true pairs (3 of 500 have a date that is not a
    # date and are refused at upload: misses, counted)
    assert product["blocking_recall"] >= 0.99
    assert "3 records of the truth are not in the warehouse" in product["evaluate"]


def _without(files: TwoFiles, column: str, folder: Path) -> TwoFiles:
    """The same rosters with ``column`` left empty by both partners."""
    folder.mkdir(parents=True)
    paths = []
    for path in (files.a, files.b):
        with path.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        out = folder / path.name
        with out.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows({**r, column: ""} for r in rows)
        paths.append(out)
    return replace(files, a=paths[0], b=paths[1])


@pytest.mark.parametrize("column", ["date_of_birth", "postcode"])
def test_a_field_nobody_sent_leaves_the_rest_to_link(
    tmp_path: Path, column: str
) -> None:
    """No birth dates (or no postcodes) from either partner: the link runs, says
    what it had nothing to learn from, and still links most pairs, all right."""
    files = _without(build("febrl1", tmp_path / "files"), column, tmp_path / "no")
    product = through_doors(files, tmp_path / "doors")
    assert "Traceback" not in product["link_said"]
    assert product["precision"] >= 0.99, product
    assert product["recall"] >= 0.8, product
