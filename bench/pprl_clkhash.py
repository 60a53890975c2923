"""clkhash + anonlink on two rosters, run in an environment of their own (they pin
an old ``cryptography``): ``python bench/pprl_clkhash.py A.csv B.csv OUT.csv``
writes the pairs anonlink's greedy solver matches at Dice 0.8 and above, with the
same fields the product encodes (given name, surname, birth date, sex where the
rosters have it, street address and postcode). Used by ``bench/linkage_public.py``."""

from __future__ import annotations

import csv
import io
import json
import sys
import time

import anonlink
from clkhash import clk, randomnames  # noqa: F401  (clkhash's own imports)
from clkhash.field_formats import FieldHashingProperties  # noqa: F401
from clkhash.schema import from_json_dict

SECRET = "the partners' shared secret for the benchmark"


def _schema(with_sex: bool) -> dict:
    def text(name: str, k: int) -> dict:
        return {
            "identifier": name,
            "format": {"type": "string", "encoding": "utf-8"},
            "hashing": {
                "comparison": {"type": "ngram", "n": 2},
                "strategy": {"bitsPerToken": k},
                "hash": {"type": "blakeHash"},
                "missingValue": {"sentinel": ""},
            },
        }

    features = [
        {"identifier": "id", "ignored": True},
        text("given_name", 24),
        text("surname", 24),
        {
            "identifier": "date_of_birth",
            "format": {"type": "string", "encoding": "utf-8"},
            "hashing": {
                "comparison": {"type": "ngram", "n": 1, "positional": True},
                "strategy": {"bitsPerToken": 20},
                "hash": {"type": "blakeHash"},
                "missingValue": {"sentinel": ""},
            },
        },
    ]
    if with_sex:
        features.append(text("sex", 16))
    features.append(text("address", 16))
    features.append(
        {
            "identifier": "postcode",
            "format": {"type": "string", "encoding": "utf-8"},
            "hashing": {
                "comparison": {"type": "ngram", "n": 1, "positional": True},
                "strategy": {"bitsPerToken": 16},
                "hash": {"type": "blakeHash"},
                "missingValue": {"sentinel": ""},
            },
        }
    )
    return {
        "version": 3,
        "clkConfig": {
            "l": 1024,
            "kdf": {"type": "HKDF", "hash": "SHA256", "keySize": 64},
        },
        "features": features,
    }


def _rows(path: str, with_sex: bool) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = ["id", "given_name", "surname", "date_of_birth"] + (
        ["sex"] if with_sex else []
    )
    return [r["id"] for r in rows], [
        [r[c] or "" for c in columns]
        + [
            f"{r['street_number'] or ''} {r['address_1'] or ''}".strip(),
            r["postcode"] or "",
        ]
        for r in rows
    ]


def main() -> None:
    a_path, b_path, out_path = sys.argv[1:4]
    with open(a_path, encoding="utf-8") as f:
        with_sex = any(r.get("sex") for r in csv.DictReader(f))
    schema = from_json_dict(_schema(with_sex))
    started = time.perf_counter()
    ids_a, rows_a = _rows(a_path, with_sex)
    ids_b, rows_b = _rows(b_path, with_sex)
    clks = [clk.generate_clks(rows, schema, SECRET) for rows in (rows_a, rows_b)]
    results = anonlink.candidate_generation.find_candidate_pairs(
        clks, anonlink.similarities.dice_coefficient, 0.8
    )
    groups = anonlink.solving.greedy_solve(results)
    pairs = []
    for group in groups:
        members = sorted(group)
        if len(members) == 2:
            (da, ra), (_db, rb) = members
            pairs.append((ids_a[ra], ids_b[rb]) if da == 0 else (ids_a[rb], ids_b[ra]))
    seconds = time.perf_counter() - started
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(pairs)
    with open(out_path, "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())
    print(json.dumps({"seconds": round(seconds, 2), "pairs": len(pairs)}))


if __name__ == "__main__":
    main()
