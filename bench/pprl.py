"""Benchmark: privacy-preserving linkage against clear text on the demo community.

Builds the default demo (`backbone demo run`, 12,000 students, clear-text linkage),
then plays the demo's linkage project: every partner encodes its records with a
shared secret; c02-eastside sends only encodings (its names are removed). Links
again and prints, last: pairwise F1 with clear text, with encodings, the difference
(target <= 0.02), encoded links and seconds.

    .venv/bin/python bench/pprl.py [--students N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backbone import Warehouse
from backbone.demo.pprl import play_pprl_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=12_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="backbone-bench-pprl-") as tmp:
        out = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "backbone",
                "demo",
                "run",
                "--out",
                str(out / "demo"),
                "--students",
                str(args.students),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        truth = out / "demo" / "community" / "truth"
        with Warehouse.open(out / "demo" / "warehouse") as wh:
            admin = wh.users.get("steward")
            steward = wh.access(admin, "identity_resolution")
            clear = wh.linkage.evaluate(steward, truth)
            start = time.perf_counter()
            play_pprl_project(wh, b"the demo partners' shared secret", out)
            encoded_at = time.perf_counter() - start
            with wh.session(admin, purpose="identity_resolution") as s:
                summary = wh.linkage.run(s)
            pprl = wh.linkage.evaluate(steward, truth)
    print(
        f"pprl: clear-text pairwise F1 {clear.pairwise_f1:.4f}, with c02-eastside known "
        f"only by encodings {pprl.pairwise_f1:.4f} (difference "
        f"{clear.pairwise_f1 - pprl.pairwise_f1:+.4f}); {summary.encoded_links:,} links by "
        f"Dice; encoding every partner took {encoded_at:.1f} s, linking {summary.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
