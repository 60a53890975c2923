"""The exchange: a folder (or object-store URI) both the warehouse and a Spark
cluster reach, where a job's inputs and results pass as Parquet.

Each job has its own folder, ``<exchange>/job-<time>-<pid>-<random>/``: ``in/<name>/``
holds what the warehouse decided the job may read, partitioned (Hive style) by
provider and school year where a table has them; ``out/<name>/`` what the cluster
sends back. The folder is deleted when the job ends; one left by a process that
died is swept by the next job and by ``backbone retention run``. Written and read
through Arrow's file systems (a local path, ``file://``, ``s3://``, ``gs://``,
``hdfs://``), so the warehouse needs no DuckDB extension to reach object storage.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from backbone.errors import WarehouseError
from backbone.waiting import process_alive

__all__ = ["PARTITION_COLUMNS", "Exchange", "sweep"]

# what a table is partitioned by, where it has the column: the provider (under the
# names the warehouse and the gate's tables give it) and the school year
PARTITION_COLUMNS = ("provider_partner_id", "provider", "partner_id", "school_year")
# a job folder of another host (whose process cannot be asked) is swept this old
STALE_SECONDS = 24 * 3600


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in root:
        return pafs.LocalFileSystem(), str(Path(root).resolve())
    try:
        fs, path = pafs.FileSystem.from_uri(root)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise WarehouseError(
            f"engine.spark_exchange = {root!r} cannot be reached ({exc}). Give a "
            "folder, or an s3://, gs:// or hdfs:// URI both the warehouse and the "
            "cluster can read and write."
        ) from None
    return fs, str(path)


class Exchange:
    """One job's folder in the exchange."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._fs, self._base = _filesystem(root)
        self.job = f"job-{int(time.time())}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = f"{self._base.rstrip('/')}/{self.job}"
        sweep(root)
        self._fs.create_dir(self.path, recursive=True)
        if isinstance(self._fs, pafs.LocalFileSystem):
            os.chmod(self.path, 0o700)  # person-level rows: the owner's alone

    def uri(self, relative: str) -> str:
        """Where the cluster finds ``relative`` (Spark's names for the schemes)."""
        full = f"{self.path}/{relative}"
        if "://" not in self.root:
            return "file://" + full
        scheme = self.root.split("://", 1)[0]
        return f"{'s3a' if scheme == 's3' else scheme}://{full}"

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
        )
        return self.uri(f"in/{name}")

    def empty(self, name: str) -> bool:
        """Whether ``in/<name>`` has no rows (Arrow writes no file for none)."""
        info = self._fs.get_file_info(f"{self.path}/in/{name}")
        return bool(info.type == pafs.FileType.NotFound)

    def out(self, name: str) -> str:
        """The URI the cluster writes ``out/<name>`` to."""
        return self.uri(f"out/{name}")

    def take(self, name: str) -> pa.Table:
        """What the cluster wrote to ``out/<name>``."""
        return ds.dataset(
            f"{self.path}/out/{name}",
            format="parquet",
            filesystem=self._fs,
            exclude_invalid_files=True,  # Spark's _SUCCESS and .crc files
        ).to_table()

    def remove(self) -> None:
        with suppress(FileNotFoundError, OSError):
            self._fs.delete_dir(self.path)


def sweep(root: str) -> int:
    """Delete the job folders of processes of this host that are gone (and any
    older than a day): rows a killed job left in the exchange. How many."""
    fs, base = _filesystem(root)
    try:
        found = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except OSError:
        return 0
    removed = 0
    for info in found:
        parts = info.base_name.split("-")
        if len(parts) != 4 or parts[0] != "job" or not parts[1].isdigit():
            continue
        started, pid = int(parts[1]), int(parts[2]) if parts[2].isdigit() else 0
        stale = time.time() - started > STALE_SECONDS
        if stale or (pid != os.getpid() and not process_alive(pid)):
            with suppress(OSError):
                fs.delete_dir(info.path)
                removed += 1
    return removed
