"""How tests/data/v4-warehouse/ was made: a warehouse written by Backbone at schema
version 4 (commit 8a1eeec, the last before migration 5), kept so that today's
migrations are tested on a warehouse an earlier release really wrote.

Run with that commit's source first on the path (it uses that commit's own API and
test fixtures)::

    git archive 8a1eeec | tar -x -C /tmp/oldbb
    cd /tmp/oldbb && PYTHONPATH=src:. python /work/main/tests/data/make_v4_warehouse.py OUT

Never regenerate it with today's code: its worth is that old code wrote it.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date
from pathlib import Path

from tests.ingest_fixtures import (  # the old commit's fixtures
    ATTENDANCE,
    ENROLLMENTS,
    csv_file,
    make_warehouse,
)

STUDENTS = """id,first,last,dob,middle
S1,Ana,Lopez,03/14/2011,
S2,Ben,Okafor,11/02/2010,J
S3,Cy,Nguyen,07/30/2019,
S4,Dee,Smith,01/01/2010,
"""
ON = date(2026, 1, 20)


def main(out: Path) -> None:
    scratch = out.parent / "scratch"
    wh = make_warehouse(scratch)
    wh.ingest.submit(
        "d1",
        "records",
        [
            csv_file(scratch / "files" / "students.csv", STUDENTS),
            csv_file(scratch / "files" / "enroll.csv", ENROLLMENTS),
        ],
        on=ON,
    )
    wh.ingest.submit(
        "d1",
        "attendance",
        [csv_file(scratch / "files" / "attendance.csv", ATTENDANCE)],
        on=ON,
    )
    wh._con.execute("CHECKPOINT")
    wh.close()
    shutil.copytree(scratch / "wh", out)
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
