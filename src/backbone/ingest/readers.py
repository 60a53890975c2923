"""Reading whatever a partner sends into a staging table, one row per record.

Formats are recognised by their bytes, not their names: XLSX (a zip with ``xl/``),
Parquet (``PAR1``), JSON (an array of objects) and JSON lines, else delimited text.
For text, the encoding is detected (UTF-8, with or without BOM, else Latin-1; a file
mixing the two is refused) and so is the delimiter (comma, semicolon, tab, pipe).
Every staged table has ``__row``: the row number as the partner would find it
(spreadsheet rows count the header as row 1; JSON records count from 1). Reading is
done by DuckDB (and fastexcel for workbooks), never row by row in Python.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backbone.engines import Connection, EngineError, registered
from backbone.errors import InputFileError

__all__ = ["SourceInfo", "StagedFile", "sniff", "stage"]

TEXT_SAMPLE = 1 << 16
DELIMITERS = (",", ";", "\t", "|")
MAX_LINE_BYTES = 8 << 20
CORRECTION_COLUMN = "backbone_errors"
"""The reasons column of an exported quarantine: a file holding it is a correction."""
IGNORED_COLUMNS = (CORRECTION_COLUMN,)
"""Columns Backbone itself adds to exported quarantine files; ignored on resubmission."""


@dataclass(frozen=True)
class SourceInfo:
    format: str
    """csv | xlsx | parquet | json | jsonl"""
    encoding: str | None = None
    delimiter: str | None = None


@dataclass(frozen=True)
class StagedFile:
    table: str
    columns: dict[str, str]
    """source column -> DuckDB type"""
    rows: int
    info: SourceInfo
    correction: bool = False
    """an exported quarantine sent back fixed (it has the reasons column): each row
    goes only to the entities that refused it, and nothing is replaced"""


def _encoding(path: Path) -> str:
    """utf-8 when the whole file is valid UTF-8, else latin-1; mixed files are refused."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    saw_multibyte = False
    offset = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            if not saw_multibyte and any(b >= 0x80 for b in chunk[:TEXT_SAMPLE]):
                saw_multibyte = True
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                if _has_utf8_sequences(path, bad):
                    line = _line_of(path, bad)
                    raise InputFileError(
                        f"mixes text encodings (UTF-8 and Latin-1); the first byte that is "
                        f"not UTF-8 is on line {line}. Export the whole file as UTF-8 and "
                        "send it again.",
                        path=path,
                    ) from None
                return "latin-1"
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _has_utf8_sequences(path: Path, before: int) -> bool:
    """Valid multi-byte UTF-8 characters before the first invalid byte?"""
    with path.open("rb") as f:
        head = f.read(min(before, 1 << 24))
    try:
        text = head.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return False
    return any(ord(ch) > 0x7F for ch in text)


def _line_of(path: Path, offset: int) -> int:
    with path.open("rb") as f:
        return f.read(offset).count(b"\n") + 1


def sniff(path: Path) -> SourceInfo:
    """Recognise the format (and for text: encoding and delimiter)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(TEXT_SAMPLE)
    except OSError as exc:
        raise InputFileError(f"cannot be read ({exc.strerror}).", path=path) from None
    if size == 0:
        raise InputFileError("is empty; there is nothing to load.", path=path)
    if head.startswith(b"PK\x03\x04"):
        return SourceInfo("xlsx")
    if head.startswith(b"PAR1"):
        return SourceInfo("parquet")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputFileError(
            "is UTF-16 text (Excel's 'Unicode text'); save it as CSV UTF-8 and send it again.",
            path=path,
        )
    if b"\x00" in head:
        nul = head.index(b"\x00")
        raise InputFileError(
            f"is not a text file (binary content at byte {nul}); send CSV, "
            "Excel (.xlsx), Parquet or JSON.",
            path=path,
        )
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return SourceInfo("json", "utf-8")
    if stripped.startswith(b"{"):
        return SourceInfo("jsonl", "utf-8")
    encoding = _encoding(path)
    first_line = head.split(b"\n", 1)[0]
    if len(first_line) >= TEXT_SAMPLE and b"\n" not in head:
        with path.open("rb") as f:
            line = f.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise InputFileError(
                f"its first line is longer than {MAX_LINE_BYTES >> 20} MB; a file of rows "
                "has one line per row. Check the line endings and export it again.",
                path=path,
                row=1,
            )
        first_line = line
    header = first_line.decode(encoding, errors="replace")
    counts = {d: header.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: counts[d])
    if counts[delimiter] == 0:
        delimiter = ","
    return SourceInfo("csv", encoding, delimiter)


def stage(
    con: Connection,
    path: Path,
    table: str,
    *,
    sheet: str | None = None,
    info: SourceInfo | None = None,
) -> StagedFile:
    """Read ``path`` into the table ``table`` of a scratch database (never the
    warehouse: a partner's file is read and checked away from it), with a ``__row``
    column."""
    info = info or sniff(path)
    params: list[str] = [str(path)]
    try:
        if info.format == "csv":
            relation = (
                "read_csv(?, header = true, all_varchar = true, delim = ?, "
                "quote = '\"', escape = '\"', encoding = ?, "
                f"max_line_size = {MAX_LINE_BYTES}, null_padding = true, "
                "strict_mode = false)"
            )
            params += [info.delimiter or ",", info.encoding or "utf-8"]
            offset = 1  # the header is row 1, as in a spreadsheet
        elif info.format == "parquet":
            relation, offset = "read_parquet(?)", 0
        elif info.format in ("json", "jsonl"):
            relation = (
                "read_json(?, format = ?, sample_size = -1, "
                "maximum_object_size = 67108864)"
            )
            params.append("array" if info.format == "json" else "newline_delimited")
            offset = 0  # records count from 1
        else:
            return _stage_xlsx(con, path, table, sheet, info)
        create = (
            f"CREATE OR REPLACE TABLE {table} AS "
            f"SELECT (row_number() OVER () + {offset})::BIGINT AS __row, * FROM {relation}"
        )
        try:
            con.execute(create, params)
        except EngineError:
            if info.format != "csv":
                raise
            # quoted fields spanning lines need the single-threaded reader
            con.execute(
                create.replace(
                    "strict_mode = false)", "strict_mode = false, parallel = false)"
                ),
                params,
            )
    except EngineError as exc:
        raise InputFileError(_reader_message(exc, info), path=path) from None
    return _describe(con, table, info)


def _reader_message(exc: EngineError, info: SourceInfo) -> str:
    text = str(exc).split("\n")[0]
    if info.format == "csv":
        return (
            f"could not be read as {info.encoding} text delimited by "
            f"{info.delimiter!r} ({text}). Check the delimiter, quoting and encoding."
        )
    return f"could not be read as {info.format.upper()} ({text})."


def _describe(con: Connection, table: str, info: SourceInfo) -> StagedFile:
    described = con.execute(f"DESCRIBE {table}").fetchall()
    columns = {
        name: type_
        for name, type_, *_ in described
        if name != "__row" and name not in IGNORED_COLUMNS
    }
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    correction = any(name == CORRECTION_COLUMN for name, *_ in described)
    return StagedFile(table, columns, int(rows), info, correction)


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what native code writes straight to file descriptor 2."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _stage_xlsx(
    con: Connection,
    path: Path,
    table: str,
    sheet: str | None,
    info: SourceInfo,
) -> StagedFile:
    import fastexcel

    try:
        book = fastexcel.read_excel(str(path))
        names = book.sheet_names
        if sheet is not None and sheet not in names:
            raise InputFileError(
                f"has no sheet {sheet!r}; its sheets are {', '.join(names)}.", path=path
            )
        with _quiet_native_stderr():  # fastexcel prints a note for every empty column
            data = book.load_sheet(sheet if sheet is not None else names[0]).to_arrow()
    except InputFileError:
        raise
    except Exception as exc:  # fastexcel raises its own error types
        raise InputFileError(
            f"could not be read as an Excel workbook ({str(exc).splitlines()[0]}).",
            path=path,
        ) from None
    with registered(con, **{f"{table}__arrow": data}):
        con.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT (row_number() OVER () + 1)::BIGINT "
            f"AS __row, * FROM {table}__arrow"
        )
    return _describe(con, table, info)
