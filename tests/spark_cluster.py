"""Real Spark servers on this machine, for the tests, started from the pyspark
installation as separate processes on the loopback address and stopped (their
process groups killed) afterwards: a standalone master and one worker, or a Spark
Connect server (with Splink's similarity jar, as a managed cluster would have it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

START_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _start(
    args: list[str], log: Path, program: str = "spark-class"
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("wb") as out:  # the child has its own copy of the handle
        return subprocess.Popen(
            [str(spark_home() / "bin" / program), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopped whole
        )


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"not ready in {START_SECONDS} s: {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@contextmanager
def standalone_cluster(
    logs: Path,
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A master and a worker (one core, 1 GB); yields the master's URL and both
    processes."""
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    master = _start(
        [
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(_free_port()),
        ],
        logs / "master.log",
    )
    started = [master]
    try:
        _wait_for(logs / "master.log", "I have been elected leader", master)
        url = f"spark://127.0.0.1:{port}"
        worker = _start(
            [
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(_free_port()),
                "--work-dir",
                str(logs / "work"),
                url,
            ],
            logs / "worker.log",
        )
        started.append(worker)
        _wait_for(logs / "worker.log", "Successfully registered with master", worker)
        yield url, started
    finally:
        for process in reversed(started):
            _stop(process)


@contextmanager
def connect_server(logs: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Spark Connect server running ``local[2]``; yields its ``sc://`` URL."""
    from splink.internals.spark.jar_location import similarity_jar_location

    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = _start(
        [
            "--master", "local[2]",
            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--jars", similarity_jar_location(),
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", "spark.ui.enabled=false",
            "spark-internal",
        ],
        logs / "connect.log",
        program="spark-submit",
    )  # fmt: skip
    try:
        _wait_for(logs / "connect.log", "Spark Connect server started", server)
        yield f"sc://127.0.0.1:{port}", server
    finally:
        _stop(server)
