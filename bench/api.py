"""Benchmark: the REST API under 20 clients at once, on the loopback address,
while `backbone link` runs, and a client killed in the middle of an upload.

Builds a demo warehouse (`backbone demo run`, 4,000 students) or copies one
(--demo DIR, the folder `backbone demo run --out DIR` wrote), issues API tokens,
starts `backbone serve` on a free loopback port and `backbone link` beside it, then
runs 20 clients a bounded number of rounds: ten district uploaders each submit
files (this year's attendance, each with a different row left out, one in three
with a row whose date cannot be read), ten readers (district analysts, the
steward, the funder) read counts and the list of submissions. Then it checks that
every file was loaded with its rows reconciled (read = loaded + quarantined +
skipped) and recorded once, kills a client with SIGKILL halfway through streaming
a 200 MB upload and checks nothing of it was kept, and serves a bare FastAPI app
(one JSON answer, no warehouse) to the same 20 clients: the floor of HTTP here.
Prints, last, p50 and p95 per route in ms and the requests per second.

    .venv/bin/python bench/api.py [--demo DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from backbone import Warehouse

# districts sending this year's attendance: facts about students, not who they are,
# so `backbone link` beside them has partner records that hold still
UPLOADERS = ("d02-riverside.uploader", "d03-lakeview.uploader")
READERS = {  # who counts what: (entity, purpose, by)
    "d01-northfield.analyst": ("enrollment", "early_warning", "school_year"),
    "d02-riverside.analyst": ("enrollment", "early_warning", "school_year"),
    "steward": ("enrollment", "program_evaluation", "school_year"),
    "c02-eastside.analyst": (
        "program_participation",
        "program_evaluation",
        "program_id",
    ),
}
CLIENTS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str) -> None:
    for _ in range(600):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def _tokens(warehouse: Path) -> dict[str, str]:
    steward = (warehouse.parent / "steward.token").read_text().strip()
    tokens = {"steward": steward}
    with Warehouse.open(warehouse) as wh:
        me = wh.sign_in_token(steward)
        for user in {*UPLOADERS, *READERS} - {"steward"}:
            with wh.session(me) as s:
                tokens[user] = wh.users.issue_token(s, user, days=1).token
    return tokens


def _files(
    community: Path, folder: Path, rounds: int, phase: int
) -> dict[str, list[Path]]:
    """Per uploader client: ``rounds`` new attendance files of its district (each
    leaves out a different row; every third has a date no one can read, to be
    quarantined)."""
    made: dict[str, list[Path]] = {}
    for i in range(CLIENTS // 2):
        user = UPLOADERS[i % len(UPLOADERS)]
        partner = user.split(".")[0]
        latest = community / "partners" / partner / "2026" / "attendance.csv"
        header, *rows = latest.read_text(encoding="utf-8").splitlines()
        for r in range(rounds):
            n = phase * CLIENTS * rounds + i * rounds + r
            kept = [row for k, row in enumerate(rows) if k != n % len(rows)]
            if r % 3 == 2:
                cells = kept[0].split(",")
                dated = [k for k, c in enumerate(cells) if c[:2] == "20" and "-" in c]
                if dated:
                    cells[dated[0]] = "not a date"
                kept[0] = ",".join(cells)
            target = folder / f"phase{phase}-client{i:02d}-{r}" / latest.name
            target.parent.mkdir(parents=True)
            target.write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
            made.setdefault(f"{i}:{user}", []).append(target)
    return made


def _percentiles(took: list[float]) -> str:
    ms = sorted(t * 1000 for t in took)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms ({len(ms)} requests)"


def _load(
    url: str, tokens: dict[str, str], files: dict[str, list[Path]], rounds: int
) -> tuple[dict[str, list[float]], float, list[dict[str, Any]]]:
    times: dict[str, list[float]] = {}
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def timed(route: str, call: Any) -> httpx.Response:
        start = time.perf_counter()
        answer: httpx.Response = call()
        with lock:
            times.setdefault(route, []).append(time.perf_counter() - start)
        return answer

    def upload(key: str) -> None:
        user = key.split(":", 1)[1]
        partner = user.split(".")[0]
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens[user]}"},
            timeout=600,
        ) as c:  # fmt: skip
            for path in files[key]:
                with path.open("rb") as f:
                    r = timed(
                        "POST /submissions",
                        lambda f=f, path=path: c.post(
                            "/submissions",
                            data={"partner": partner, "feed": "attendance"},
                            files={"file": (path.name, f)},
                        ),
                    )
                with lock:
                    if r.status_code != 201:
                        failures.append(
                            f"{user} {path}: {r.status_code} {r.text[:200]}"
                        )
                    else:
                        results.extend(r.json())

    def read(user: str) -> None:
        entity, purpose, by = READERS[user]
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens[user]}"},
            timeout=600,
        ) as c:  # fmt: skip
            for _ in range(rounds * 3):
                r = timed(
                    "GET /counts/{entity}",
                    lambda: c.get(
                        f"/counts/{entity}",
                        params={"purpose": purpose, "by": by},
                    ),
                )
                s = timed("GET /submissions", lambda: c.get("/submissions"))
                with lock:
                    for answer in (r, s):
                        if answer.status_code != 200:
                            failures.append(
                                f"{user}: {answer.status_code} {answer.text[:200]}"
                            )

    readers = [list(READERS)[i % len(READERS)] for i in range(CLIENTS // 2)]
    threads = [threading.Thread(target=upload, args=(k,)) for k in files]
    threads += [threading.Thread(target=read, args=(u,)) for u in readers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit("failed requests:\n" + "\n".join(failures[:20]))
    return times, seconds, results


KILLED_CLIENT = textwrap.dedent(
    """
    import sys, httpx
    url, token = sys.argv[1], sys.argv[2]
    def body():
        yield b"--b\\r\\nContent-Disposition: form-data; name=partner\\r\\n\\r\\nc02-eastside\\r\\n"
        yield b"--b\\r\\nContent-Disposition: form-data; name=feed\\r\\n\\r\\nrosters\\r\\n"
        yield (b"--b\\r\\nContent-Disposition: form-data; name=file; "
               b"filename=roster_2025-26.csv\\r\\nContent-Type: text/csv\\r\\n\\r\\n")
        yield b"program_id,first_name\\r\\n"
        for n in range(200):
            yield b"x,y\\r\\n" * 200_000   # 1 MB a piece, 200 MB in all
            print(f"sent {n + 1}", flush=True)
    httpx.post(url + "/submissions", content=body(), timeout=600,
               headers={"Authorization": "Bearer " + token,
                        "Content-Type": "multipart/form-data; boundary=b"})
    """
)


def _kill_mid_upload(url: str, token: str, warehouse: Path) -> str:
    with Warehouse.open(warehouse, read_only=True) as wh:
        before = len(wh.ingest.list())
    raw_before = sum(1 for _ in (warehouse / "raw").rglob("*") if _.is_file())
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, url, token],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert client.stdout is not None
    # 20 MB sent is more than the sockets hold: the server was reading the file
    for line in client.stdout:
        if line.strip() == "sent 20":
            break
    else:
        raise SystemExit("the killed client's upload was never read by the server")
    client.send_signal(signal.SIGKILL)
    client.wait()
    time.sleep(2)  # the server notices the connection gone
    with Warehouse.open(warehouse, read_only=True) as wh:
        after = len(wh.ingest.list())
    raw_after = sum(1 for _ in (warehouse / "raw").rglob("*") if _.is_file())
    leftovers = list((warehouse / "tmp").glob("upload-*"))
    assert after == before, (before, after)
    assert raw_after == raw_before, (raw_before, raw_after)
    assert not leftovers, leftovers
    return (
        f"api: a client killed (SIGKILL) after sending 20 of 200 MB: no submission "
        f"recorded ({before} before and after), no raw file kept, no upload left in tmp/"
    )


BARE_APP = textwrap.dedent(
    """
    import sys, uvicorn
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/ping")
    def ping():
        return {"ok": True}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def _bare(rounds: int) -> tuple[list[float], float]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    took: list[float] = []
    lock = threading.Lock()
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping")

        def work() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
                for _ in range(rounds * 6):
                    start = time.perf_counter()
                    c.get("/ping").raise_for_status()
                    with lock:
                        took.append(time.perf_counter() - start)

        threads = [threading.Thread(target=work) for _ in range(CLIENTS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return took, time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="backbone-bench-api-") as tmp:
        out = Path(tmp) / "demo"
        if args.demo is None:
            subprocess.run(
                [sys.executable, "-m", "backbone", "demo", "run", "--out", str(out),
                 "--students", "4000"],
                capture_output=True, text=True, check=True,
                env={**os.environ, "COLUMNS": "250"},
            )  # fmt: skip
        else:
            shutil.copytree(args.demo, out)
        warehouse = out / "warehouse"
        tokens = _tokens(warehouse)
        quiet_files = _files(out / "community", Path(tmp) / "files", args.rounds, 0)
        files = _files(out / "community", Path(tmp) / "files", args.rounds, 1)
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api/v1"
        server = subprocess.Popen(
            [sys.executable, "-m", "backbone", "serve", "--warehouse", str(warehouse),
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for(url + "/openapi.json")
            quiet, quiet_seconds, quiet_results = _load(
                url, tokens, quiet_files, args.rounds
            )
            assert all(r["status"] == "loaded" for r in quiet_results)
            link = subprocess.Popen(
                [sys.executable, "-m", "backbone", "link", "--warehouse", str(warehouse)],
                env={**os.environ, "BACKBONE_TOKEN": tokens["steward"]},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            times, seconds, results = _load(url, tokens, files, args.rounds)
            link_out, link_err = link.communicate(timeout=3600)
            assert link.returncode == 0, link_err[-2000:]
            sent = sum(len(v) for v in files.values())
            assert len(results) == sent, (len(results), sent)
            ids = {r["submission_id"] for r in results}
            assert len(ids) == sent, "a file was recorded twice"
            quarantined = 0
            with Warehouse.open(warehouse, read_only=True) as wh:
                recorded = {s.submission_id: s for s in wh.ingest.list()}
            for r in results:
                assert r["status"] == "loaded", r
                assert r["rows_read"] == (
                    r["rows_loaded"] + r["rows_quarantined"] + r["rows_skipped"]
                ), r
                s = recorded[r["submission_id"]]
                assert (s.status, s.rows_read, s.rows_loaded, s.rows_quarantined) == (
                    "loaded", r["rows_read"], r["rows_loaded"], r["rows_quarantined"],
                ), (s, r)  # fmt: skip
                quarantined += r["rows_quarantined"]
            lines.append(
                f"api: {sent} files submitted by 10 clients while `backbone link` ran: "
                f"all loaded, each recorded once, read = loaded + quarantined + "
                f"skipped for every one ({quarantined} rows quarantined)"
            )
            lines.append(
                "api: `backbone link` finished beside them: "
                + (link_out.strip().splitlines() or ["(no output)"])[0][:120]
            )
            lines.append(_kill_mid_upload(url, tokens["steward"], warehouse))
        finally:
            server.terminate()
            _, errors = server.communicate(timeout=60)
        if "Traceback" in errors:
            raise SystemExit("the server logged a traceback:\n" + errors[-3000:])
    bare, bare_seconds = _bare(args.rounds)
    for line in lines:
        print(line)
    quiet_total = sum(len(v) for v in quiet.values())
    for route, took in sorted(quiet.items()):
        print(f"api: alone: {route} {_percentiles(took)}")
    print(
        f"api: alone: {quiet_total} requests from {CLIENTS} clients in "
        f"{quiet_seconds:.1f} s ({quiet_total / quiet_seconds:.1f} requests/s)"
    )
    total = sum(len(v) for v in times.values())
    for route, took in sorted(times.items()):
        print(f"api: beside link: {route} {_percentiles(took)}")
    print(
        f"api: {total} requests from {CLIENTS} clients in {seconds:.1f} s "
        f"({total / seconds:.1f} requests/s), while `backbone link` ran"
    )
    print(
        f"api: bare FastAPI (one JSON answer, no warehouse), the same {CLIENTS} "
        f"clients: {_percentiles(bare)}, {len(bare) / bare_seconds:.0f} requests/s"
    )


if __name__ == "__main__":
    main()
