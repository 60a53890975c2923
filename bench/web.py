"""Benchmark: the web site under 20 signed-in users at once, on the loopback address.

Builds a demo warehouse (`backbone demo run`, 4,000 students), or takes one a demo
built (--demo DIR: the folder `backbone demo run --out DIR` wrote, with the
sign-ins it printed saved as DIR/sign-ins.txt), starts `backbone serve` on a free
loopback port and signs in 20 clients, as people would (password and second
factor), in four roles: the steward reads the dashboard, a district's analyst its
early-warning roster, the funder its initiatives' outcomes, and a community
organization's uploader the scorecard. Each client fetches its page a bounded
number of rounds. Prints, last, p50 and p95 per page in ms and the requests per
second. Target: p95 < 200 ms for pages that read stored results.

    .venv/bin/python bench/web.py [--demo DIR] [--clients 20] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pyotp

from backbone import Warehouse

# who reads what: each role's main page
ROLES = {
    "steward": "/dashboard",
    "d01-northfield.analyst": "/roster",
    "f01-unitedfund.viewer": "/outcomes",
    "c02-eastside.uploader": "/scorecard",
}
SIGN_IN = re.compile(r"^\s+(\S+) / (\S+)\s+\((.+)\)$", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def sign_in(url: str, user: str, password: str, secret: list[str]) -> httpx.Client:
    """A client signed in as a person would: password, then the app's code (the
    second factor set up on the way, kept in ``secret``)."""
    client = httpx.Client(base_url=url, follow_redirects=True, timeout=120)
    page = client.get("/sign-in")
    page = client.post(
        "/sign-in", data={"csrf": _csrf(page.text), "user": user, "password": password}
    )
    if page.url.path == "/sign-in/setup":
        found = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
        assert found, page.text[:300]
        secret.append(found.group(1))
    if page.url.path in ("/sign-in/setup", "/sign-in/code"):
        page = client.post(
            page.url.path,
            data={"csrf": _csrf(page.text), "code": pyotp.TOTP(secret[0]).now()},
        )
    assert page.url.path == "/home", (page.status_code, page.text[:300])
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="backbone-bench-web-") as tmp:
        if args.demo is None:
            out = Path(tmp) / "demo"
            said = subprocess.run(
                [sys.executable, "-m", "backbone", "demo", "run", "--out", str(out),
                 "--students", "4000"],
                capture_output=True, text=True, check=True,
                env={**os.environ, "COLUMNS": "250"},
            ).stdout  # fmt: skip
        else:
            out = args.demo
            said = (out / "sign-ins.txt").read_text(encoding="utf-8")
        users = {u: pw for u, pw, _ in SIGN_IN.findall(said)}
        times, seconds, students = _run(out / "warehouse", users, args)
    total = sum(len(v) for v in times.values())
    print(f"web: warehouse of {students:,} linked persons")
    for path, took in times.items():
        ms = sorted(t * 1000 for t in took)
        p95 = ms[int(0.95 * (len(ms) - 1))]
        print(
            f"web: {path} p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms "
            f"({len(ms)} requests)"
        )
    print(
        f"web: {total} requests from {args.clients} signed-in clients in {seconds:.1f} s "
        f"({total / seconds:.0f} requests/s)"
    )


def _run(
    warehouse: Path, users: dict[str, str], args: argparse.Namespace
) -> tuple[dict[str, list[float]], float, int]:
    with Warehouse.open(warehouse, read_only=True) as wh:
        students = next(
            (t.rows for t in wh.table_counts() if t.name == "identity.person"), 0
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "backbone", "serve", "--warehouse", str(warehouse),
         "--port", str(port)],
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/sign-in", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        roles = list(ROLES)
        # each user signs in once (a second-factor code is taken once); its other
        # clients are its other tabs, sharing the session
        first = {user: sign_in(url, user, users[user], []) for user in roles}
        clients = []
        for i in range(args.clients):
            user = roles[i % len(roles)]
            clients.append(
                (
                    user,
                    first[user]
                    if i < len(roles)
                    else httpx.Client(
                        base_url=url,
                        follow_redirects=True,
                        timeout=120,
                        cookies=first[user].cookies,
                    ),
                )
            )
        times: dict[str, list[float]] = {p: [] for p in ROLES.values()}
        lock = threading.Lock()

        def work(user: str, client: httpx.Client) -> None:
            path = ROLES[user]
            for _ in range(args.rounds):
                start = time.perf_counter()
                answer = client.get(path)
                took = time.perf_counter() - start
                # the page itself, not a sign-in page the session was sent to
                assert answer.status_code == 200 and answer.url.path == path, (
                    path,
                    answer.status_code,
                    str(answer.url),
                )
                with lock:
                    times[path].append(took)

        prepared: dict[str, float] = {}
        for user, client in clients:  # each page ready once, so none is cold
            path = ROLES[user]
            start = time.perf_counter()
            while client.get(path).status_code == 202:  # being prepared
                assert time.perf_counter() - start < 3600, path
                time.sleep(1)
            prepared.setdefault(path, time.perf_counter() - start)
        for path, took in prepared.items():
            print(f"web: {path} first view today (prepared if costly) {took:.1f} s")
        started = time.perf_counter()
        threads = [threading.Thread(target=work, args=c) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    return times, seconds, students


if __name__ == "__main__":
    main()
