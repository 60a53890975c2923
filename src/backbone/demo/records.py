"""Partner records: each partner's own id for a person, and how its system spells them.

Every district a student attends gives a new local id and keeps the name slightly
differently (typos, dropped middle names, ASCII-only or upper-case systems);
community organizations type names from sign-up sheets (typos, nicknames, day and
month swapped, missing birth dates, no district ids); the college agency sees
graduates years later (married or hyphenated surnames, missing middle names).
The variants are made in DuckDB from pre-drawn uniforms, so they are vectorized and
reproducible.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS, PROGRAMS
from backbone.engines import Connection, columns, register, registered

__all__ = ["build_partner_records"]

STREETS = (
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Church",
    "River",
    "Spring",
    "Ridge",
    "Highland",
    "Lincoln",
    "Jackson",
    "Franklin",
    "Walnut",
    "Chestnut",
    "Sunset",
    "Meadow",
    "Forest",
    "Valley",
)
STREET_TYPES = ("St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way")

# kind -> probabilities of each kind of variation
PROFILES = {
    "district": dict(
        first_typo=0.03,
        last_typo=0.025,
        nickname=0.02,
        middle_initial=0.10,
        middle_drop=0.08,
        dob_swap=0.002,
        dob_missing=0.0,
        dob_shift=0.004,
        surname_change=0.0,
        hyphenate=0.0,
        moved=0.25,
    ),
    "cbo": dict(
        first_typo=0.08,
        last_typo=0.07,
        nickname=0.25,
        middle_initial=0.05,
        middle_drop=0.85,
        dob_swap=0.05,
        dob_missing=0.12,
        dob_shift=0.01,
        surname_change=0.0,
        hyphenate=0.0,
        moved=0.15,
    ),
    "agency": dict(
        first_typo=0.02,
        last_typo=0.02,
        nickname=0.03,
        middle_initial=0.10,
        middle_drop=0.55,
        dob_swap=0.01,
        dob_missing=0.0,
        dob_shift=0.003,
        surname_change=0.04,
        hyphenate=0.04,
        moved=0.6,
    ),
}

_MACROS = """
CREATE OR REPLACE MACRO typo(s, k, u, c) AS (
    CASE
        WHEN s IS NULL OR length(s) < 3 THEN s
        WHEN k < 0.25 THEN substr(s, 1, 1 + floor(u * (length(s) - 1))::INT)
            || substr(s, 3 + floor(u * (length(s) - 1))::INT)
        WHEN k < 0.5 AND length(s) > 3 THEN
            substr(s, 1, 1 + floor(u * (length(s) - 2))::INT)
            || substr(s, 3 + floor(u * (length(s) - 2))::INT, 1)
            || substr(s, 2 + floor(u * (length(s) - 2))::INT, 1)
            || substr(s, 4 + floor(u * (length(s) - 2))::INT)
        WHEN k < 0.8 THEN substr(s, 1, 1 + floor(u * (length(s) - 1))::INT)
            || chr(97 + floor(c * 26)::INT)
            || substr(s, 3 + floor(u * (length(s) - 1))::INT)
        ELSE substr(s, 1, 2 + floor(u * (length(s) - 1))::INT)
            || substr(s, 2 + floor(u * (length(s) - 1))::INT)
    END
);
"""


def _ids(rng: np.random.Generator, count: int, prefix: str, digits: int) -> np.ndarray:
    """``count`` distinct ids like ``R0012345`` in a random order."""
    lo, hi = 10 ** (digits - 1), 10**digits
    draws = np.unique(rng.integers(lo, hi, size=int(count * 1.3) + 10))
    while len(draws) < count:  # pragma: no cover - only for tiny id spaces
        draws = np.unique(np.concatenate([draws, rng.integers(lo, hi, size=count)]))
    chosen = rng.permutation(draws)[:count]
    return np.char.add(prefix, chosen.astype(str).astype(f"<U{digits}")).astype(object)


def build_partner_records(con: Connection, rng: np.random.Generator) -> None:
    """Create ``partner_record`` (partner_id, local_id, person_key, identity fields)."""
    con.execute(_MACROS)
    path = resources.files("backbone.linkage") / "data" / "nicknames.csv"
    with resources.as_file(path) as p:
        nicknames = pacsv.read_csv(p)
    with registered(con, nicknames_arrow=nicknames):
        con.execute(
            "CREATE OR REPLACE TABLE nick AS SELECT name, "
            "list(nickname ORDER BY nickname) AS nicks FROM nicknames_arrow GROUP BY name"
        )
    parts = []
    # districts: one record per (person, district) ever enrolled
    for di, d in enumerate(DISTRICTS):
        keys = columns(
            con,
            "SELECT DISTINCT person_key FROM segments WHERE district = ? ORDER BY 1",
            [di],
        )["person_key"]
        parts.append(
            (
                d.partner_id,
                "district",
                keys,
                _ids(rng, len(keys), d.id_prefix, d.id_digits),
            )
        )
    for ci, c in enumerate(CBOS):
        prog_ids = [p.program_id for p in PROGRAMS if p.partner_id == c.partner_id]
        keys = columns(
            con,
            "SELECT DISTINCT person_key FROM participation WHERE list_contains(?, program_id) "
            "ORDER BY 1",
            [prog_ids],
        )["person_key"]
        prefix = c.partner_id.split("-")[1][:2].upper() + "-"
        parts.append(
            (c.partner_id, "cbo", keys, _ids(rng, len(keys), prefix, 5 + ci % 2))
        )
    keys = columns(
        con,
        "SELECT DISTINCT person_key FROM college ORDER BY 1",  # enrolled within the data
    )["person_key"]
    parts.append((COLLEGE_AGENCY[0], "agency", keys, _ids(rng, len(keys), "RHE", 8)))

    tables = []
    for partner_id, kind, keys, ids in parts:
        k = len(keys)
        prof = PROFILES[kind]
        cols: dict[str, object] = {
            "partner_id": np.full(k, partner_id, dtype=object),
            "kind": np.full(k, kind, dtype=object),
            "local_id": ids,
            "person_key": np.asarray(keys, dtype=np.int64),
        }
        for name in (
            "u_first",
            "u_last",
            "u_nick",
            "u_mid",
            "u_dob",
            "u_sur",
            "k1",
            "p1",
            "c1",
            "k2",
            "p2",
            "c2",
            "u_pick",
            "u_addr",
            "u_move",
        ):
            cols[name] = rng.random(k)
        for name, value in prof.items():
            cols[f"pr_{name}"] = np.full(k, value)
        cols["street_no"] = rng.integers(10, 9990, size=k)
        cols["street"] = np.asarray(STREETS, dtype=object)[
            rng.integers(0, len(STREETS), k)
        ]
        cols["street_type"] = np.asarray(STREET_TYPES, dtype=object)[
            rng.integers(0, len(STREET_TYPES), k)
        ]
        tables.append(pa.table(cols))
    register(con, "record_draws", pa.concat_tables(tables, promote_options="default"))
    n_persons = con.execute("SELECT count(*) FROM persons").fetchall()[0][0]
    # a home address per person, which partners share unless the family moved
    register(
        con,
        "home_draws",
        pa.table(
            {
                "person_key": np.arange(1, n_persons + 1, dtype=np.int64),
                "home_no": rng.integers(10, 9990, size=n_persons),
                "home_street": np.asarray(STREETS, dtype=object)[
                    rng.integers(0, len(STREETS), n_persons)
                ],
                "home_type": np.asarray(STREET_TYPES, dtype=object)[
                    rng.integers(0, len(STREET_TYPES), n_persons)
                ],
                "u_home_zip": rng.random(n_persons),
            }
        ),
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE partner_record AS
        WITH base AS (
            SELECT r.*, h.home_no, h.home_street, h.home_type, h.u_home_zip,
                   p.first_name AS true_first, p.middle_name AS true_middle,
                   p.last_surname AS true_last, p.generation_code_suffix,
                   p.birth_date AS true_birth, p.sex, p.state_student_id,
                   p.home_district,
                   (SELECT last_surname FROM persons q
                    WHERE q.person_key = 1 + floor(r.u_sur * {n_persons})::BIGINT) AS other_surname,
                   n.nicks
            FROM record_draws r
            JOIN persons p USING (person_key)
            JOIN home_draws h USING (person_key)
            LEFT JOIN nick n ON n.name = p.first_name
        ),
        varied AS (
            SELECT *,
                CASE WHEN u_nick < pr_nickname AND nicks IS NOT NULL
                     THEN nicks[1 + floor(u_pick * len(nicks))::INT]
                     WHEN u_first < pr_first_typo THEN typo(true_first, k1, p1, c1)
                     ELSE true_first END AS first_name,
                CASE WHEN u_mid < pr_middle_drop THEN NULL
                     WHEN u_mid < pr_middle_drop + pr_middle_initial
                     THEN substr(true_middle, 1, 1)
                     ELSE true_middle END AS middle_name,
                CASE WHEN sex = 'Female' AND u_sur < pr_surname_change * 2
                          AND u_last >= 0.5 THEN other_surname
                     WHEN u_last < pr_hyphenate THEN true_last || '-' || other_surname
                     WHEN u_last > 1 - pr_last_typo THEN typo(true_last, k2, p2, c2)
                     ELSE true_last END AS last_surname,
                CASE WHEN u_dob < pr_dob_missing THEN NULL
                     WHEN u_dob < pr_dob_missing + pr_dob_swap
                          AND day(true_birth) <= 12 AND day(true_birth) <> month(true_birth)
                     THEN make_date(year(true_birth), day(true_birth), month(true_birth))
                     WHEN u_dob > 1 - pr_dob_shift
                     THEN (true_birth + INTERVAL (1 + floor(c1 * 3)::INT) DAY)::DATE
                     ELSE true_birth END AS birth_date,
                CASE WHEN u_move < pr_moved
                     THEN street_no || ' ' || street || ' ' || street_type
                     ELSE home_no || ' ' || home_street || ' ' || home_type
                END AS address,
                (55100 + 10 * home_district + floor(
                    CASE WHEN u_move < pr_moved THEN u_addr ELSE u_home_zip END * 9
                )::INT)::VARCHAR AS postal_code
            FROM base
        )
        SELECT partner_id, kind, local_id, person_key, first_name, middle_name,
               last_surname, generation_code_suffix, birth_date, sex,
               state_student_id, address, postal_code
        FROM varied
        ORDER BY partner_id, local_id
        """
    )
