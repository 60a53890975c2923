"""Benchmark: linkage on person sets the demo generator did not make, through the doors.

For each set of :mod:`linkage_sets` (FEBRL 1-3 split into two partners, and the
``households`` set from a generator of its own) a partnership is set up exactly as
one would be, with the ``backbone`` command only: init, partner import, the steward,
an agreement per partner that allows linking the two, a feed and its mapping, submit
each roster, ``link``, ``export crosswalk``, ``link evaluate``. Beside it, in the same
run and on the same files and fields (given name, surname, birth date, street number
and name as one address, postcode — and sex where the set has it): bare Splink with a
plain model (its name, date and postcode comparisons, EM, pairs at probability 0.5
and above) and ``recordlinkage``'s ECM classifier. FEBRL4 is never run: it is the
outside check.

Prints, last, one line per set and linker: pairwise precision, recall and F1 on the
cross-file pairs, seconds, and the product's recall per error type.

    .venv/bin/python bench/linkage_public.py [--sets febrl1,households] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from linkage_sets import SETS, TwoFiles, build

PARTNERS = ("p1-first", "p2-second")
DIRECTORY = """\
partners:
  - {partner_id: b0-backbone, name: The Backbone, kind: backbone}
  - {partner_id: p1-first, name: First Roster, kind: school_district}
  - {partner_id: p2-second, name: Second Roster, kind: community_organization}
"""
FIELDS = ["local_id", "first_name", "last_surname", "birth_date", "address"]
FIELDS += ["postal_code", "birth_sex"]


def _agreement(provider: str, other: str) -> dict[str, Any]:
    return {
        "agreement_id": f"DSA-{provider.upper()}",
        "title": f"{provider} and the Backbone",
        "tier": "dsa",
        "status": "active",
        "effective_from": "2020-07-01",
        "effective_to": "2030-06-30",
        "parties": {"provider": provider, "recipient": "b0-backbone"},
        "legal_basis": {"basis": "ferpa_studies", "citation": "34 CFR 99.31(a)(6)"},
        "purposes": [{"id": "research", "description": "How well the rosters link."}],
        "datasets": [
            {"entity": "partner_record", "fields": [{"name": f} for f in FIELDS]}
        ],
        "recipients": [
            {
                "partner": "b0-backbone",
                "roles": ["steward_admin", "steward_analyst"],
                "access": "identified",
                "operations": [
                    "row_level_view",
                    "link",
                    "aggregate",
                    "export_microdata",
                ],
            }
        ],
        "linkage": {"allowed": True, "linkable_with": [other]},
        "publication": {"min_cell_size": 3},
        "retention": {"destroy_after_days": 365},
        "breach": {"notify_within_hours": 72},
        "termination": {"notice_days": 90},
        "signatories": [
            {"partner": provider, "name": "Director", "signed": "2020-06-01"},
            {"partner": "b0-backbone", "name": "Director", "signed": "2020-06-02"},
        ],
    }


def _mapping(partner: str, with_sex: bool) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "local_id": "id",
        "first_name": "given_name",
        "last_surname": "surname",
        "birth_date": {"column": "date_of_birth", "date_format": "%Y%m%d"},
        "address": {"template": "{street_number} {address_1}"},
        "postal_code": "postcode",
    }
    if with_sex:
        columns["birth_sex"] = {"column": "sex", "codes": {"F": "Female", "M": "Male"}}
    return {
        "partner": partner,
        "feed": "roster",
        "files": [{"match": "*.csv", "entity": "partner_record", "columns": columns}],
    }


class Doors:
    """The ``backbone`` command in a child process, as a partnership runs it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "BACKBONE_WAREHOUSE": str(folder / "wh")}
        self.env.pop("BACKBONE_TOKEN", None)

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "backbone", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or "Traceback" in done.stderr:
            raise SystemExit(f"backbone {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout


def _partnership(files: TwoFiles, work: Path, label: str) -> Doors:
    """A new warehouse, its two partners and the steward, and an agreement for each
    partner that lets its records be linked with the other's."""
    import yaml

    run = Doors(work)
    run("init", str(work / "wh"), "--name", f"bench {label} {files.name}")
    (work / "partnership.yaml").write_text(DIRECTORY, encoding="utf-8")
    run("partner", "import", str(work / "partnership.yaml"))
    run("user", "add", "steward", "--partner", "b0-backbone", "--role", "steward_admin")
    run.env["BACKBONE_TOKEN"] = run("user", "token", "steward").strip()
    for partner, other in (PARTNERS, PARTNERS[::-1]):
        doc = work / f"{partner}-agreement.yaml"
        doc.write_text(yaml.safe_dump(_agreement(partner, other)), encoding="utf-8")
        run("agreement", "add", str(doc))
    return run


def through_doors(files: TwoFiles, work: Path) -> dict[str, Any]:
    import yaml

    run = _partnership(files, work, "clear")
    with_sex = _has(files.a, "sex")
    for partner, roster in zip(PARTNERS, (files.a, files.b), strict=True):
        run(
            "feed", "add", partner, "roster", "--entity", "partner_record",
            "--cadence", "yearly", "--agreement", f"DSA-{partner.upper()}",
            "--since", "2020-07-01",
        )  # fmt: skip
        mapping = work / f"{partner}-mapping.yaml"
        mapping.write_text(
            yaml.safe_dump(_mapping(partner, with_sex)), encoding="utf-8"
        )
        run("mapping", "add", partner, "roster", str(mapping))
        run("submit", "--partner", partner, "--feed", "roster", str(roster))
    started = time.perf_counter()
    said = run("link")
    seconds = time.perf_counter() - started
    found = _linked_pairs(run, work)
    evaluated = run("link", "evaluate", "--truth", str(files.truth))
    # the same warehouse with twins held for review (linkage.twins_to_review)
    toml = work / "wh" / "backbone.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text.replace("twins_to_review = false", "twins_to_review = true"),
        encoding="utf-8",
    )
    started = time.perf_counter()
    run("link", "--retrain")
    twins = _score(files, _linked_pairs(run, work), time.perf_counter() - started)
    return {
        **_score(files, found, seconds),
        **_blocking_recall(files, work / "wh"),
        "twins_to_review": twins,
        "link_said": said,
        "evaluate": evaluated,
    }


def _linked_pairs(run: Doors, work: Path) -> set[tuple[str, str]]:
    """The pairs of the two rosters the warehouse holds as one person, from the
    crosswalks it gives each partner back."""
    person: dict[tuple[str, str], str] = {}
    for partner in PARTNERS:
        out = work / f"{partner}-crosswalk.csv"
        run(
            "export", "crosswalk", "--partner", partner, "--out", str(out),
            "--purpose", "research", "--force",
        )  # fmt: skip
        with out.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                person[(partner, row["local_id"])] = row["person_id"]
    a_of: dict[str, list[str]] = {}
    for (partner, local), pid in person.items():
        if partner == PARTNERS[0]:
            a_of.setdefault(pid, []).append(local)
    return {
        (a, local)
        for (partner, local), pid in person.items()
        if partner == PARTNERS[1]
        for a in a_of.get(pid, [])
    }


def _blocking_recall(files: TwoFiles, warehouse: Path) -> dict[str, float]:
    """The share of true pairs that any blocking rule puts before the model (read
    from the warehouse's records, standardized as a run does), apart from how the
    model then scores them: of all true pairs, and of those whose two records were
    both accepted at upload (what blocking itself can reach)."""
    import duckdb

    from backbone import Warehouse
    from backbone.engines import arrow
    from backbone.linkage import prepare
    from backbone.linkage.link import records_sql
    from backbone.linkage.model import BLOCKING_RULES, DIFFERENT_PARTNERS

    with Warehouse.open(warehouse, read_only=True) as wh:
        records = arrow(wh._con, records_sql("TRUE", 7))
    con = duckdb.connect()
    con.register("clear_records", records)
    prepare.load_nicknames(con)
    con.execute(
        "CREATE TABLE linkage_input AS " + prepare.linkage_input_sql("clear_records")
    )
    blocked = " UNION ".join(
        "SELECT l.partner_id AS pl, l.local_id AS il, r.partner_id AS pr, "
        "r.local_id AS ir FROM linkage_input l JOIN linkage_input r "
        # as Splink pairs records of one table: each pair once, left the lower id
        f"ON ({rule}) AND {DIFFERENT_PARTNERS} AND l.unique_id < r.unique_id"
        for rule in BLOCKING_RULES
    )
    found = {
        (il, ir) if pl == PARTNERS[0] else (ir, il)
        for pl, il, _pr, ir in con.execute(blocked).fetchall()
    }
    truth = _truth_pairs(files)
    held = set(con.execute("SELECT partner_id, local_id FROM linkage_input").fetchall())
    loaded = {
        (a, b)
        for a, b in truth
        if (PARTNERS[0], a) in held and (PARTNERS[1], b) in held
    }
    return {
        "blocking_recall": round(len(found & truth) / len(truth), 4) if truth else 1.0,
        "blocking_recall_of_loaded": (
            round(len(found & loaded) / len(loaded), 4) if loaded else 1.0
        ),
    }


def _has(path: Path, column: str) -> bool:
    with path.open(encoding="utf-8") as f:
        rows = csv.DictReader(f)
        return any(row.get(column) for row in rows)


def _truth_pairs(files: TwoFiles) -> set[tuple[str, str]]:
    keys: dict[str, dict[str, list[str]]] = {}
    with files.truth.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            keys.setdefault(row["person_key"], {}).setdefault(
                row["partner_id"], []
            ).append(row["local_id"])
    return {
        (a, b)
        for held in keys.values()
        for a in held.get(PARTNERS[0], [])
        for b in held.get(PARTNERS[1], [])
    }


def _score(
    files: TwoFiles, found: set[tuple[str, str]], seconds: float
) -> dict[str, Any]:
    truth = _truth_pairs(files)
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    missed_by: Counter[str] = Counter()
    held_by: Counter[str] = Counter()
    for a, b in truth:
        for kind in files.errors.get(b) or ["clean"]:
            held_by[kind] += 1
            if (a, b) not in found:
                missed_by[kind] += 1
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "seconds": round(seconds, 1),
        "found": len(found),
        "true": len(truth),
        "recall_by_error": {
            k: f"{1 - missed_by[k] / n:.3f} of {n}" for k, n in held_by.most_common()
        },
    }


def _frames(files: TwoFiles) -> tuple[Any, Any]:
    import pandas as pd

    frames = []
    for path in (files.a, files.b):
        df = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)
        df["address"] = (
            (df["street_number"].fillna("") + " " + df["address_1"].fillna(""))
            .str.strip()
            .replace("", None)
        )
        df["dob"] = pd.to_datetime(
            df["date_of_birth"], format="%Y%m%d", errors="coerce"
        ).dt.strftime("%Y-%m-%d")
        frames.append(df)
    return frames[0], frames[1]


def bare_splink(files: TwoFiles) -> dict[str, Any]:
    """Splink as its documentation sets it up, on the same fields."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    a, b = _frames(files)
    with_sex = a["sex"].notna().any()
    started = time.perf_counter()
    comparisons = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("dob", input_is_string=True),
        cl.LevenshteinAtThresholds("address", [1, 3]),
        cl.PostcodeComparison("postcode"),
    ]
    if with_sex:
        comparisons.append(cl.ExactMatch("sex"))
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "dob"),
            block_on("given_name", "dob"),
            block_on("postcode", "street_number"),
            block_on("dob", "postcode"),
            block_on("substr(given_name, 1, 2)", "substr(surname, 1, 2)"),
        ],
    )
    db = DuckDBAPI()
    linker = Linker([db.register(a), db.register(b)], settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    for rule in (block_on("dob"), block_on("given_name", "surname")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    found_df = linker.inference.predict(
        threshold_match_probability=0.5
    ).as_pandas_dataframe()
    # link_only: the left is the first file's record (source_dataset order)
    ids_a = set(a["id"])
    found = {
        (left, right) if left in ids_a else (right, left)
        for left, right in zip(found_df["id_l"], found_df["id_r"], strict=True)
    }
    return _score(files, found, time.perf_counter() - started)


def bare_recordlinkage(files: TwoFiles) -> dict[str, Any]:
    """recordlinkage's ECM classifier on binary comparisons of the same fields."""
    import recordlinkage

    a, b = _frames(files)
    a, b = a.set_index("id"), b.set_index("id")
    started = time.perf_counter()
    index = recordlinkage.Index()
    for fields in (
        ["given_name", "surname"],
        ["surname", "dob"],
        ["given_name", "dob"],
        ["postcode", "street_number"],
        ["dob", "postcode"],
    ):
        index.block(fields)
    candidates = index.index(a, b)
    compare = recordlinkage.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85)
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85)
    compare.exact("dob", "dob")
    compare.string("address", "address", method="levenshtein", threshold=0.85)
    compare.exact("postcode", "postcode")
    features = compare.compute(candidates, a, b)
    matches = recordlinkage.ECMClassifier(binarize=0.5).fit_predict(features)
    found = {(str(x), str(y)) for x, y in matches}
    return _score(files, found, time.perf_counter() - started)


CLKHASH_ENV = Path.home() / ".cache" / "backbone-bench-clkhash"


def pprl_through_doors(files: TwoFiles, work: Path) -> dict[str, Any]:
    """Both partners send only encodings (`backbone encode` on their own machine,
    then `encodings submit`); the warehouse links them by Dice similarity."""
    run = _partnership(files, work, "pprl")
    secret = work / "project.key"
    secret.write_bytes(b"the partners' shared secret for the benchmark")
    started = time.perf_counter()
    for partner, roster in zip(PARTNERS, (files.a, files.b), strict=True):
        encoded = work / f"{partner}-encoded.csv"
        run(
            "encode", str(roster), "--secret-file", str(secret), "--out", str(encoded),
            "--id-column", "id", "--first-column", "given_name",
            "--last-column", "surname", "--birth-column", "date_of_birth",
            "--sex-column", "sex", "--date-format", "%Y%m%d",
            "--address-column", "street_number", "--address-column", "address_1",
            "--postcode-column", "postcode",
        )  # fmt: skip
        run("encodings", "submit", str(encoded), "--partner", partner)
    run("link")
    return _score(files, _linked_pairs(run, work), time.perf_counter() - started)


def clkhash_anonlink(files: TwoFiles, work: Path) -> dict[str, Any] | None:
    """clkhash + anonlink in their own environment (created once, as pip can)."""
    python = CLKHASH_ENV / "bin" / "python"
    if not python.exists():
        made = (
            subprocess.run(
                [sys.executable, "-m", "venv", str(CLKHASH_ENV)], check=False
            ).returncode
            == 0
            and subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "clkhash", "anonlink"],
                check=False,
            ).returncode
            == 0
        )
        if not made:
            return None
    out = work / "clkhash-pairs.csv"
    done = subprocess.run(
        [str(python), str(Path(__file__).parent / "pprl_clkhash.py"), str(files.a),
         str(files.b), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    with out.open(encoding="utf-8") as f:
        found = {(a, b) for a, b in csv.reader(f)}
    return _score(files, found, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--keep", type=Path, default=None, help="Keep the work here.")
    parser.add_argument(
        "--pprl",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also link by encodings only, beside clkhash + anonlink.",
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="backbone-bench-public-") as tmp:
        root = args.keep or Path(tmp)
        for name in args.sets.split(","):
            files = build(name, root / name / "files")
            product = through_doors(files, root / name)
            print(product.pop("link_said"), product.pop("evaluate"), flush=True)
            results.append((name, "backbone", product))
            results.append((name, "splink", bare_splink(files)))
            results.append((name, "recordlinkage", bare_recordlinkage(files)))
            if args.pprl:
                work = root / name / "pprl"
                results.append((name, "backbone pprl", pprl_through_doors(files, work)))
                other = clkhash_anonlink(files, work)
                if other is not None:
                    results.append((name, "clkhash+anonlink", other))
    for name, linker, r in results:
        by_error = r.pop("recall_by_error")
        twins = r.pop("twins_to_review", None)
        print(f"linkage_public: {name} {linker} {json.dumps(r)}")
        if twins:
            twins.pop("recall_by_error")
            print(f"  with linkage.twins_to_review: {json.dumps(twins)}")
        if linker.startswith("backbone"):
            print(f"  recall by error type: {json.dumps(by_error)}")


if __name__ == "__main__":
    main()
