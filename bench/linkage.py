"""Benchmark: link 1,000,000 partner records from the demo generator, end to end.

Phase 1 (a child process) simulates the community at scale and spells every
partner's records the way its system does (the generator's own partner records:
district typos and dropped middle names, community nicknames and missing birth
dates, the college's married surnames) and saves them with their truth.
Phase 2 (another child process, measured) loads them into a fresh warehouse and
runs ``backbone link``: standardizing, deterministic pass, EM training, scoring
blocked pairs, constraints, person ids, evidence, all written. Prints, last:
records, pairs compared, seconds, peak RSS of the linking process, pairwise F1.
Phase 3 (a third child process) links the same records with bare Splink set up as
its documentation does, on the same fields, and prints the same figures beside.
Target on the 2-core machine: <= 300 s, peak < 8 GB, F1 >= 0.995 within 1.5x the
bare tool's time.

    .venv/bin/python bench/linkage.py [--records N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORDS_PER_STUDENT = 1.72  # measured on the demo community (6 school years)


def simulate(out: Path, students: int, seed: int) -> None:
    import duckdb
    import numpy as np

    from backbone.demo.records import build_partner_records
    from backbone.demo.simulate import simulate as run
    from backbone.engines import literal, set_option

    sim = run(students, 6, seed)
    con = duckdb.connect(str(out / "scratch.duckdb"))
    set_option(con, "memory_limit", "6GB")
    for name in list(sim.tables):
        con.register(f"{name}_arrow", sim.tables[name])
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")
        del sim.tables[name]
    build_partner_records(con, np.random.default_rng([seed, 1]))
    con.execute(
        f"""
        COPY (SELECT partner_id, local_id, person_key, first_name, middle_name,
                     last_surname, birth_date, sex, state_student_id, address, postal_code
              FROM partner_record) TO {literal(str(out / "records.parquet"))}
        """
    )
    con.close()


def link(out: Path, engine: str = "duckdb") -> None:
    from backbone import Warehouse
    from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS
    from backbone.engines import literal
    from backbone.engines.offload import EngineChoice
    from backbone.linkage.link import run_linkage

    wh = Warehouse.init(out / "wh")
    con = wh._con
    con.execute(
        f"""
        INSERT INTO ref.partner (partner_id, name, kind, created_at)
        SELECT DISTINCT partner_id, partner_id,
               CASE WHEN partner_id LIKE 'd%' THEN 'school_district'
                    WHEN partner_id LIKE 'c%' THEN 'community_organization'
                    ELSE 'higher_education_agency' END, now()
        FROM '{out / "records.parquet"}'
        """
    )
    con.execute(
        f"""
        INSERT INTO identity.partner_record (partner_id, local_id, first_name, middle_name,
            last_surname, birth_date, birth_sex, address, postal_code, state_student_id,
            submission_id)
        SELECT partner_id, local_id, first_name, middle_name, last_surname, birth_date, sex,
               CASE WHEN partner_id LIKE 'd%' OR partner_id = 'c02-eastside' THEN address END,
               CASE WHEN partner_id LIKE 'd%' OR partner_id = 'c02-eastside' THEN postal_code END,
               CASE WHEN partner_id IN ('d01-northfield', 'd02-riverside', 'd04-hillcrest',
                    'd05-oakdale', 'd06-pinecrest', 'd08-cedarridge') THEN state_student_id END,
               0
        FROM '{out / "records.parquet"}'
        """
    )
    # the demo agreements: districts link with everyone, the others with districts
    districts = [d.partner_id for d in DISTRICTS]
    others = [c.partner_id for c in CBOS] + [COLLEGE_AGENCY[0]]
    linkable = {(a, b) for a in districts for b in districts if a != b}
    linkable |= {(a, b) for a in districts for b in others}
    linkable |= {(b, a) for a, b in linkable}
    start = time.perf_counter()
    with wh.session() as unit:  # no user: the bench's warehouse is set up bare
        summary = run_linkage(
            unit,
            wh.path,
            wh.settings,
            linkable=linkable,
            engine=EngineChoice.of(wh.settings, wh.path, engine),
        )
    seconds = time.perf_counter() - start
    truth = out / "truth"
    truth.mkdir()
    con.execute(
        "COPY (SELECT partner_id, local_id, person_key "
        f"FROM read_parquet({literal(str(out / 'records.parquet'))})) "
        f"TO {literal(str(truth / 'records.parquet'))}"
    )
    con.execute(
        "INSERT INTO ref.partner (partner_id, name, kind, created_at) "
        "VALUES ('b00-backbone', 'Backbone', 'backbone', now())"
    )
    with wh.session() as setup:
        steward = wh.users.add(
            setup, "steward", partner="b00-backbone", role="steward_admin"
        )
    result = wh.linkage.evaluate(wh.access(steward, "identity_resolution"), truth)
    wh.close()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        json.dumps(
            {
                "records": summary.records,
                "pairs": summary.pairs_scored,
                "seconds": round(seconds, 1),
                "peak_gb": round(peak_gb, 2),
                "f1": round(result.pairwise_f1, 4),
                "precision": round(result.pairwise_precision, 4),
                "recall": round(result.pairwise_recall, 4),
                "persons": summary.persons,
            }
        )
    )


def bare_splink(out: Path) -> None:
    """Splink as its documentation sets it up, on the same records and fields (the
    state id included where a partner sends it), scored the product's way:
    clusters at probability 0.5, pairwise over all pairs of records."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from backbone.engines import literal

    con = duckdb.connect()
    con.execute(f"SET temp_directory = {literal(str(out / 'spill'))}")
    con.execute(
        f"""
        CREATE TABLE records AS
        SELECT partner_id || '|' || local_id AS unique_id, partner_id, person_key,
               lower(first_name) AS first_name, lower(last_surname) AS surname,
               birth_date, sex,
               CASE WHEN partner_id LIKE 'd%' OR partner_id = 'c02-eastside'
                    THEN lower(address) END AS address,
               CASE WHEN partner_id LIKE 'd%' OR partner_id = 'c02-eastside'
                    THEN postal_code END AS postal_code,
               CASE WHEN partner_id IN ('d01-northfield', 'd02-riverside', 'd04-hillcrest',
                    'd05-oakdale', 'd06-pinecrest', 'd08-cedarridge')
                    THEN state_student_id END AS state_student_id
        FROM read_parquet({literal(str(out / "records.parquet"))})
        """
    )
    apart = "l.partner_id <> r.partner_id"

    def rule(*columns: str) -> dict[str, str]:
        same = " AND ".join(f"l.{c} = r.{c}" for c in columns)
        return {"blocking_rule": f"{same} AND {apart}", "sql_dialect": "duckdb"}

    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            cl.ExactMatch("sex"),
            cl.LevenshteinAtThresholds("address", [1, 3]),
            cl.ExactMatch("postal_code"),
            cl.ExactMatch("state_student_id"),
        ],
        blocking_rules_to_generate_predictions=[
            rule("first_name", "surname"),
            rule("surname", "birth_date"),
            rule("first_name", "birth_date"),
            rule("postal_code", "address"),
            rule("state_student_id"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    started = time.perf_counter()
    db = DuckDBAPI(con)
    linker = Linker(db.register("records"), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "birth_date")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6)
    for em in (block_on("birth_date"), block_on("first_name", "surname")):
        linker.training.estimate_parameters_using_expectation_maximisation(em)
    pairs = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.5)
    seconds = time.perf_counter() - started
    con.execute(
        "CREATE TABLE j AS SELECT c.cluster_id, r.person_key FROM "
        f"{clusters.physical_name} c JOIN records r USING (unique_id)"
    )
    true_pairs, found, right = con.execute(
        """
        SELECT (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY person_key)),
               (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY cluster_id)),
               (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j
                                                  GROUP BY cluster_id, person_key))
        """
    ).fetchone()
    precision = right / found if found else 1.0
    recall = right / true_pairs if true_pairs else 1.0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        json.dumps(
            {
                "pairs": con.execute(
                    f"SELECT count(*) FROM {pairs.physical_name}"
                ).fetchall()[0][0],
                "seconds": round(seconds, 1),
                "peak_gb": round(peak_gb, 2),
                "f1": round(2 * precision * recall / (precision + recall), 4),
                "precision": round(precision, 4),
                "recall": round(recall, 4),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--phase", choices=["simulate", "link", "splink"], default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument(
        "--keep", type=Path, default=None, help="Keep the records and warehouse here."
    )
    args = parser.parse_args()
    if args.phase == "simulate":
        simulate(args.out, int(args.records / RECORDS_PER_STUDENT), args.seed)
        return
    if args.phase == "link":
        link(args.out, args.engine)
        return
    if args.phase == "splink":
        bare_splink(args.out)
        return
    with tempfile.TemporaryDirectory(prefix="backbone-bench-link-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        me = [
            sys.executable,
            __file__,
            "--out",
            str(out),
            "--records",
            str(args.records),
        ]
        t0 = time.perf_counter()
        subprocess.run(
            [*me, "--phase", "simulate", "--seed", str(args.seed)], check=True
        )
        print(
            f"simulated the community in {time.perf_counter() - t0:.0f} s", flush=True
        )
        done = subprocess.run(
            [*me, "--phase", "link"], check=True, capture_output=True, text=True
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        done = subprocess.run(
            [*me, "--phase", "splink"], check=True, stdout=subprocess.PIPE, text=True
        )
        bare = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"linkage: {figures['records']:,} partner records, {figures['pairs']:,} pairs "
        f"compared, {figures['seconds']} s, peak RSS {figures['peak_gb']} GB, "
        f"pairwise F1 {figures['f1']} (precision {figures['precision']}, recall "
        f"{figures['recall']}), {figures['persons']:,} persons"
    )
    print(
        f"linkage: bare Splink on the same records and fields, {bare['pairs']:,} pairs "
        f"at 0.5 and above, {bare['seconds']} s ({figures['seconds'] / bare['seconds']:.2f}x "
        f"for backbone), peak RSS {bare['peak_gb']} GB, pairwise F1 {bare['f1']} "
        f"(precision {bare['precision']}, recall {bare['recall']})"
    )


if __name__ == "__main__":
    main()
