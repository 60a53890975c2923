"""The exchange: a folder (or object-store URI) both the warehouse and a Spark
cluster reach, where a job's inputs and results pass as Parquet.

Each job has its own folder, ``<exchange>/job-<time>-<host>-<pid>-<random>/``: ``in/<name>/``
holds what the warehouse decided the job may read, partitioned (Hive style) by
provider and school year where a table has them; ``out/<name>/`` what the cluster
sends back. The folder is deleted when the job ends; one left by a process that
died is swept by the next job and by ``backbone retention run``. Written and read
through Arrow's file systems (a local path, ``file://``, ``s3://``, ``gs://``,
``hdfs://``), so the warehouse needs no DuckDB extension to reach object storage.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from backbone.errors import WarehouseError
from backbone.waiting import process_alive

__all__ = ["PARTITION_COLUMNS", "Exchange", "sweep", "this_host"]

# what a table is partitioned by, where it has the column: the provider (under the
# names the warehouse and the gate's tables give it) and the school year
PARTITION_COLUMNS = ("provider_partner_id", "provider", "partner_id", "school_year")
# a job folder of another host (whose process cannot be asked) is swept this old
STALE_SECONDS = 7 * 24 * 3600


def this_host() -> str:
    """This machine's name as a folder name's part (no dashes: they separate)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"


def _unreachable(root: str, exc: BaseException) -> WarehouseError:
    return WarehouseError(
        f"the Spark exchange {root!r} cannot be used ({exc}). Check "
        "engine.spark_exchange: a folder, or an s3://, gs:// or hdfs:// URI both the "
        "warehouse and the cluster can read and write."
    )


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in root:
        return pafs.LocalFileSystem(), str(Path(root).resolve())
    try:
        fs, path = pafs.FileSystem.from_uri(root)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise _unreachable(root, exc) from None
    return fs, str(path)


class Exchange:
    """One job's folder in the exchange."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._fs, self._base = _filesystem(root)
        self.job = (
            f"job-{int(time.time())}-{this_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        )
        self.path = f"{self._base.rstrip('/')}/{self.job}"
        sweep(root)
        try:
            self._fs.create_dir(self.path, recursive=True)
            if isinstance(self._fs, pafs.LocalFileSystem):
                os.chmod(self.path, 0o700)  # person-level rows: the owner's alone
        except OSError as exc:
            raise _unreachable(root, exc) from None

    def uri(self, relative: str) -> str:
        """Where the cluster finds ``relative``: the root as given (its host and
        options kept), Spark's name for the scheme (``s3a``)."""
        if "://" not in self.root:
            return f"file://{self.path}/{relative}"
        scheme, rest = self.root.split("://", 1)
        where, _, _query = rest.partition("?")  # the options are Arrow's, not Spark's
        return (
            f"{'s3a' if scheme == 's3' else scheme}://{where.rstrip('/')}/"
            f"{self.job}/{relative}"
        )

    def put(
        self,
        name: str,
        rows: pa.Table | pa.RecordBatchReader,
        partition_by: Sequence[str] | None = None,
    ) -> str:
        """Write ``rows`` as ``in/<name>`` (partitioned by the columns of
        :data:`PARTITION_COLUMNS` it has, unless ``partition_by`` says); its URI."""
        schema = rows.schema
        keys = [
            c
            for c in (PARTITION_COLUMNS if partition_by is None else partition_by)
            if c in schema.names
        ]
        target = f"{self.path}/in/{name}"
        try:
            self._write(rows, target, keys, schema)
        except (OSError, pa.ArrowException) as exc:
            raise WarehouseError(
                f"could not write {name} to the Spark exchange {self.root!r} ({exc})"
            ) from None
        return self.uri(f"in/{name}")

    def _write(
        self,
        rows: pa.Table | pa.RecordBatchReader,
        target: str,
        keys: list[str],
        schema: pa.Schema,
    ) -> None:
        ds.write_dataset(
            rows,
            target,
            format="parquet",
            filesystem=self._fs,
            partitioning=ds.partitioning(
                pa.schema([schema.field(k) for k in keys]), flavor="hive"
            )
            if keys
            else None,
            existing_data_behavior="error",
            # each partition's rows in as few files as the memory allows
            max_rows_per_group=1 << 20,
            max_partitions=1 << 16,  # providers x school years
        )

    def empty(self, name: str) -> bool:
        """Whether ``in/<name>`` has no rows (Arrow writes no file for none)."""
        info = self._fs.get_file_info(f"{self.path}/in/{name}")
        return bool(info.type == pafs.FileType.NotFound)

    def out(self, name: str) -> str:
        """The URI the cluster writes ``out/<name>`` to."""
        return self.uri(f"out/{name}")

    def take(self, name: str) -> pa.Table:
        """What the cluster wrote to ``out/<name>``."""
        try:
            return ds.dataset(
                f"{self.path}/out/{name}",
                format="parquet",
                filesystem=self._fs,
                exclude_invalid_files=True,  # Spark's _SUCCESS and .crc files
            ).to_table()
        except (OSError, pa.ArrowException) as exc:
            raise WarehouseError(
                f"the cluster's result is not in the exchange {self.root!r} ({exc}): "
                "does the cluster write to the same place the warehouse reads?"
            ) from None

    def remove(self) -> bool:
        """Delete the job's folder; False if it could not be (said by the caller)."""
        try:
            self._fs.delete_dir(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def sweep(root: str) -> int:
    """Delete the job folders of processes of this host that are gone (another
    host's after a week): rows a killed job left in the exchange. How many."""
    fs, base = _filesystem(root)
    try:
        found = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except OSError:
        return 0
    removed = 0
    for info in found:
        parts = info.base_name.split("-")
        if len(parts) != 5 or parts[0] != "job" or not parts[1].isdigit():
            continue  # not a job's folder: never touched
        started, host = int(parts[1]), parts[2]
        pid = int(parts[3]) if parts[3].isdigit() else 0
        if host != this_host():  # another machine's job: its process cannot be asked
            gone = time.time() - started > STALE_SECONDS
        else:
            gone = pid != os.getpid() and not process_alive(pid)
        if gone:
            with suppress(OSError):
                fs.delete_dir(info.path)
                removed += 1
    return removed
