"""Privacy-preserving linkage: keyed Bloom-filter encodings and Dice matching.

A partner runs :func:`encode_records` on its own machine with a secret shared
among the partners of a linkage project and never given to the backbone. Each
record becomes one 1024-bit record-level Bloom filter (a CLK, Schnell et al.):
first and last name as padded bigrams, the birth date as positional unigrams, sex
as one token, and where the roster has them the address (house number and street,
letters and digits only) as bigrams and the postal code as positional unigrams. Every feature has its own key, derived from the secret by HKDF
(RFC 5869, SHA-256); each token is hashed by keyed BLAKE2b, whose digest gives the
token's bit positions (random hashing, not the attackable double hashing). Bits per
token are set so about half the bits are on. Salting with the birth year is
optional. Only local ids and encodings leave the partner. The layout follows the
clkhash v3 schema (``schema()``); the values are cleaned first (lower case, accents
off, letters only, or letters and digits for the address and postal code; an
address's parts joined by a space), which the schema does not say.

The warehouse compares encodings by Dice similarity: every pair of records of
two partners while a run's budget lasts (:data:`EXHAUSTIVE_PAIRS`), beyond it the
pairs that locality-sensitive blocking on sampled bit positions (bands) finds. Each
encoded record keeps at most its best match in each other partner (one-to-one),
since a partner holds one record per person, and pairs are linked from a Dice
similarity read off each run's scores (:func:`dice_threshold_sql`).

clkhash itself pins an old ``cryptography``, so the encoder is written here (a few
dozen lines over ``hashlib``/``hmac``) rather than depended on.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbone.errors import InputFileError, UserError

__all__ = [
    "BITS",
    "EXHAUSTIVE_PAIRS",
    "FEATURES",
    "EncodedFile",
    "EncodedRecord",
    "IdentityColumns",
    "dice",
    "dice_edges_sql",
    "dice_scores_sql",
    "dice_threshold_sql",
    "encode_columns",
    "encode_csv",
    "encode_records",
    "encodings_csv",
    "schema",
]

BITS = 1024
BANDS = 24
BAND_WIDTH = 12


@dataclass(frozen=True)
class Feature:
    name: str
    tokens: str  # "bigram" or "positional"
    bits_per_token: int
    keeps: str = "letters"  # the characters a value is reduced to: "letters", "alnum"


FEATURES: tuple[Feature, ...] = (
    Feature("first_name", "bigram", 24),
    Feature("last_name", "bigram", 24),
    Feature("birth_date", "positional", 20),
    Feature("sex", "positional", 16),
    Feature("address", "bigram", 16, keeps="alnum"),
    Feature("postal_code", "positional", 16, keeps="alnum"),
)


@dataclass(frozen=True)
class EncodedRecord:
    local_id: str
    clk: str  # base64 of 128 bytes


def _hkdf(secret: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869): one key per feature from the shared secret."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _clean(value: str | None, keeps: str = "letters") -> str:
    """Lower-case ASCII, accents off, only letters (or letters and digits): a
    space, hyphen or full stop one partner writes and another does not changes
    nothing."""
    if not value:
        return ""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    kept = str.isalnum if keeps == "alnum" else str.isalpha
    return "".join(ch for ch in ascii_text.lower() if kept(ch))


def _tokens(feature: Feature, value: str) -> list[str]:
    if not value:
        return []
    if feature.tokens == "bigram":
        padded = f"_{value}_"
        return [padded[i : i + 2] for i in range(len(padded) - 1)]
    return [f"{i}:{ch}" for i, ch in enumerate(value)]


def encode_records(
    rows: Iterable[tuple[str, str | None, str | None, date | None, str | None]],
    secret: bytes,
    *,
    project: str = "backbone",
    salt_with_birth_year: bool = False,
) -> list[EncodedRecord]:
    """Encode (local_id, first, last, birth date, sex) rows into CLKs."""
    listed = list(rows)
    columns = list(zip(*listed, strict=True)) if listed else [()] * 5
    ids, first, last, born, sex = (list(c) for c in columns)
    table = encode_columns(
        pa.table(
            {
                "local_id": pa.array([str(i) for i in ids], pa.string()),
                "first_name": pa.array(first, pa.string()),
                "last_name": pa.array(last, pa.string()),
                "birth_date": pa.array(born, pa.date32()),
                "sex": pa.array(sex, pa.string()),
            }
        ),
        secret,
        project=project,
        salt_with_birth_year=salt_with_birth_year,
    )
    return [
        EncodedRecord(i, c)
        for i, c in zip(
            table["local_id"].to_pylist(), table["clk"].to_pylist(), strict=True
        )
    ]


def encode_columns(
    people: pa.Table,
    secret: bytes,
    *,
    project: str = "backbone",
    salt_with_birth_year: bool = False,
) -> pa.Table:
    """``local_id, clk`` for a table of ``local_id, first_name, last_name,
    birth_date`` (date) and ``sex`` (any column may be all null: a partner that
    does not hold it). Each distinct value is hashed once; the rows are put
    together from their values' bits with NumPy, a million in seconds."""
    if len(secret) < 16:
        raise ValueError("the linkage secret must be at least 16 bytes")
    salt = hashlib.sha256(f"backbone-pprl:{project}".encode()).digest()
    keys = {f.name: _hkdf(secret, salt, f.name.encode()) for f in FEATURES}
    born = people["birth_date"]
    values = {
        f.name: pc.cast(people[f.name], pa.string())
        if f.name in people.column_names
        else pa.nulls(people.num_rows, pa.string())
        for f in FEATURES
    }
    values["birth_date"] = pc.strftime(born, format="%Y%m%d")
    # with the birth year as salt a value is its year and itself: "2011|ana"
    year = (
        pc.cast(pc.year(born), pa.string())
        if salt_with_birth_year
        else pa.nulls(people.num_rows, pa.string())
    )
    masks: dict[str, np.ndarray] = {}
    wheres: dict[str, np.ndarray] = {}
    for feature in FEATURES:
        cleaned = feature.name not in ("sex", "birth_date")
        value = (
            _clean_column(values[feature.name], feature.keeps)
            if cleaned
            else pc.fill_null(values[feature.name], "")
        )
        keyed = pc.binary_join_element_wise(pc.fill_null(year, ""), value, "|")
        distinct = pc.unique(keyed)
        if cleaned:  # ASCII by now: hashed token by token, put together in NumPy
            bits = _masks_by_token(feature, keys[feature.name], distinct)
            masks[feature.name] = np.vstack(
                [bits, np.zeros(BITS // 8, dtype=np.uint8)]  # last: no rows
            )
        else:
            masks[feature.name] = np.stack(
                [
                    _value_mask(feature, keys[feature.name], v)
                    for v in [*distinct.to_pylist(), "|"]  # "|": nothing (no rows)
                ]
            )
        where = pc.index_in(keyed, value_set=distinct)
        wheres[feature.name] = where.to_numpy(zero_copy_only=False)
    # rows put together a block at a time: a million rows' bits never all at once
    blocks = []
    for start in range(0, people.num_rows, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, people.num_rows)
        clks = np.zeros((stop - start, BITS // 8), dtype=np.uint8)
        for feature in FEATURES:
            np.bitwise_or(
                clks, masks[feature.name][wheres[feature.name][start:stop]], out=clks
            )
        blocks.append(_base64_rows(clks))
    text = (
        pa.chunked_array(blocks, pa.string()) if blocks else pa.array([], pa.string())
    )
    return pa.table({"local_id": people["local_id"], "clk": text})


_BLOCK_ROWS = 65_536


def _clean_column(values: pa.Array, keeps: str) -> pa.Array:
    """:func:`_clean` of every value at once (NULL as empty)."""
    text = pc.utf8_normalize(pc.fill_null(values, ""), "NFKD")
    text = pc.utf8_lower(pc.replace_substring_regex(text, r"[^\x00-\x7f]", ""))
    dropped = "[^a-z0-9]" if keeps == "alnum" else "[^a-z]"
    return pc.replace_substring_regex(text, dropped, "")


_TOKEN_BLOCK = 16_384


def _masks_by_token(feature: Feature, key: bytes, keyed: pa.Array) -> np.ndarray:
    """The packed bits of each ``"year|value"`` of ``keyed`` (values already
    cleaned to ASCII), as hashing each value's tokens in turn would: each distinct token is
    hashed once, and a value's bits are its tokens' bits or-ed together in NumPy,
    so a million different addresses cost no Python loop over addresses. Memory
    follows the tokens there are, not the longest value times the rows."""
    parts = pc.split_pattern(keyed, "|", max_splits=1)
    years = pc.list_element(parts, 0).to_numpy(zero_copy_only=False)
    texts = pc.list_element(parts, 1)
    if feature.tokens == "bigram":  # padded: "_ana_"
        texts = pc.if_else(
            pc.equal(texts, ""), "", pc.binary_join_element_wise("_", texts, "_", "")
        )
    out = np.zeros((len(keyed), BITS // 8), dtype=np.uint8)
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        table: dict[int, int] = {}
        masks: list[np.ndarray] = []
        for start in range(0, len(rows), _TOKEN_BLOCK):
            block = rows[start : start + _TOKEN_BLOCK]
            codes, counts = _token_codes(feature, texts.take(pa.array(block)))
            fresh = np.setdiff1d(np.unique(codes), np.fromiter(table, np.int64))
            for code in fresh.tolist():
                table[code] = len(masks)
                masks.append(
                    _token_mask(feature, key, year + _token_text(feature, code))
                )
            if not len(codes):
                continue
            known = np.fromiter(table, np.int64, len(table))
            slot = np.fromiter(table.values(), np.int64, len(table))
            order = np.argsort(known)
            which = slot[order][np.searchsorted(known[order], codes)]
            # one row of 64-bit words per token, or-ed value by value
            words = np.vstack(masks).view(np.uint64)[which]
            firsts = np.cumsum(counts) - counts
            filled = counts > 0
            out[block[filled]] = np.bitwise_or.reduceat(
                words, firsts[filled], axis=0
            ).view(np.uint8)
    return out


def _token_codes(feature: Feature, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Every token of each ASCII text as an integer (bigram: two bytes;
    positional: position and byte), text after text, and how many each has."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[
        texts.offset : texts.offset + len(texts)
    ].astype(np.int64)
    data = texts.buffers()[2]
    chars = (
        np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        if data is not None
        else np.zeros(1, np.int64)
    )
    bigram = feature.tokens == "bigram"
    counts = np.maximum(lengths - 1, 0) if bigram else lengths
    total = int(counts.sum())
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    at = np.repeat(offsets, counts) + within
    if bigram:
        return chars[at] * 256 + chars[at + 1], counts
    return within * 256 + chars[at], counts


def _token_text(feature: Feature, code: int) -> str:
    if feature.tokens == "bigram":
        return chr(code // 256) + chr(code % 256)
    return f"{code // 256}:{chr(code % 256)}"


def _token_mask(feature: Feature, key: bytes, salted_token: str) -> np.ndarray:
    """The packed bits one (salted) token sets."""
    bits = np.zeros(BITS, dtype=bool)
    digest = hashlib.blake2b(
        salted_token.encode(), key=key, digest_size=2 * feature.bits_per_token
    ).digest()
    bits[np.frombuffer(digest, dtype=">u2") % BITS] = True
    return np.packbits(bits)


def _joined(parts: list[pa.Array]) -> pa.Array:
    """The parts of an address as one text, blanks between, NULL when all empty."""
    text = pc.utf8_trim_whitespace(
        pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], " ")
    )
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _value_mask(feature: Feature, key: bytes, keyed: str) -> np.ndarray:
    """The bits of one (year-salted) value of a feature taken as sent (the birth
    date as YYYYMMDD; sex: its first letter, lower case), packed."""
    year_salt, _, raw = keyed.partition("|")
    value = raw[:1].lower() if feature.name == "sex" else raw
    bits = np.zeros(BITS // 8, dtype=np.uint8)
    for token in _tokens(feature, value):
        bits |= _token_mask(feature, key, year_salt + token)
    return bits


_B64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
)


def _base64_rows(rows: np.ndarray) -> pa.Array:
    """Standard base64 of each row of bytes (as ``base64.b64encode``), for all rows
    at once."""
    n, width = rows.shape
    if not n:
        return pa.array([], pa.string())
    pad = -width % 3
    data = np.concatenate([rows, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    groups = data.reshape(n, -1, 3).astype(np.uint32)
    joined = (groups[:, :, 0] << 16) | (groups[:, :, 1] << 8) | groups[:, :, 2]
    sextets = np.stack(
        [(joined >> shift) & 63 for shift in (18, 12, 6, 0)], axis=2
    ).reshape(n, -1)
    chars = _B64[sextets]
    if pad:
        chars[:, -pad:] = ord("=")
    text = np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel()
    return pa.array(text.astype(str), pa.string())


@dataclass(frozen=True)
class IdentityColumns:
    """The columns of a partner's CSV that hold each identity field."""

    local_id: str = "local_id"
    first_name: str = "first_name"
    last_name: str = "last_surname"
    birth_date: str = "birth_date"
    sex: str = "birth_sex"
    address: tuple[str, ...] = ("address",)
    """one column, or the parts of the address in order (house number, street)"""
    postal_code: str = "postal_code"


@dataclass(frozen=True)
class EncodedFile:
    """What a partner sends: its local ids and encodings as CSV, and the schema;
    and what it keeps to fix: the rows not encoded, with reasons."""

    records: int
    csv: bytes
    """``local_id,clk`` rows, UTF-8; each local id once"""
    schema: bytes
    """:func:`schema` as indented JSON, UTF-8"""
    quarantined: tuple[tuple[int, str, str, str], ...] = ()
    """(row, local id, column, what to fix) of each row not encoded; no names"""
    without: tuple[str, ...] = ()
    """fields the file does not have, encoded as empty (``sex``, ``address``,
    ``postal_code``)"""

    def quarantine_csv(self) -> bytes:
        """The rows not encoded, for the partner to fix (never sent)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["row", "local_id", "column", "problem"])
        writer.writerows(self.quarantined)
        return out.getvalue().encode("utf-8")


def encodings_csv(encoded: Iterable[EncodedRecord]) -> bytes:
    """``local_id,clk`` as CSV bytes (what ``backbone encodings submit`` reads)."""
    listed = list(encoded)
    return _encodings_csv([e.local_id for e in listed], [e.clk for e in listed])


def _encodings_csv(ids: Sequence[str], clks: Sequence[str]) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["local_id", "clk"])
    writer.writerows(zip(ids, clks, strict=True))
    return text.getvalue().encode("utf-8")


# why a row is not encoded (it stays with the partner, to fix)
_NO_ID = "no local id; give every record its id"
_ID_CLASHES = (
    "local id also on another row with other names or birth date; give each "
    "person one id"
)
_ID_TROUBLED = (
    "local id also on another row that is set aside or has other names or birth "
    "date; give each person one id"
)


def encode_csv(
    data: bytes,
    secret: bytes,
    *,
    columns: IdentityColumns = IdentityColumns(),
    date_format: str = "%Y-%m-%d",
    project: str = "backbone",
    salt_with_birth_year: bool = False,
    source: str = "the file",
) -> EncodedFile:
    """Encode a partner's CSV of identity fields (``data``, UTF-8, a BOM allowed);
    ``source`` names it in errors. Names and birth dates never leave this call.
    Read by the csv module, checked as columns in SQL, encoded by distinct values:
    a million rows take seconds.
    A file without a sex, address or postal code column is encoded without it
    (``without``)."""
    from backbone.engines import EngineError, arrow, registered, scratch

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.", path=source
        ) from None
    # read as the csv module reads (rows of text, blank lines skipped, short rows
    # padded): in C, row by row, with no name ever in an error message
    try:
        records = list(filter(None, csv.reader(io.StringIO(text, newline=""))))
    except csv.Error as exc:  # its messages name no cell's content
        raise InputFileError(f"cannot be read as CSV ({exc}).", path=source) from None
    header = records[0] if records else []
    wanted = [
        columns.local_id,
        columns.first_name,
        columns.last_name,
        columns.birth_date,
    ]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputFileError(
            f"has no column {', '.join(missing)}; name the columns with "
            "--id-column, --first-column, --last-column, --birth-column, --sex-column.",
            path=source,
            row=1,
        )
    # a roster without sex, address or postal code is encoded without it, unless
    # its column was named
    default = IdentityColumns()
    optional = {
        "sex": ((columns.sex,), (default.sex,), "--sex-column"),
        "address": (columns.address, default.address, "--address-column"),
        "postal_code": (
            (columns.postal_code,),
            (default.postal_code,),
            "--postcode-column",
        ),
    }
    without_list = []
    for field, (named, by_default, option) in optional.items():
        absent = [c for c in named if c not in header]
        if absent and named != by_default:
            raise InputFileError(
                f"has no column {', '.join(absent)} ({option}); leave the option out "
                f"to encode without {field.replace('_', ' ')}.",
                path=source,
                row=1,
            )
        if absent:
            without_list.append(field)
    without = tuple(without_list)
    rows = records[1:]
    n = len(rows)
    width = len(header)
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n)
    for i in np.flatnonzero(lengths != width):  # only rows that need it: padded
        rows[i] = (rows[i] + [""] * width)[:width]
    cells = list(zip(*rows, strict=True)) if rows else [()] * width

    def column(name: str) -> pa.Array:
        if name not in header:
            return pa.nulls(n, pa.string())
        # a repeated column name: the last one, as a dict of the row would have it
        return pa.array(cells[width - 1 - header[::-1].index(name)], pa.string())

    people = pa.table(
        {
            "row": pa.array(np.arange(2, n + 2), pa.int64()),
            "id": column(columns.local_id),
            "first": column(columns.first_name),
            "last": column(columns.last_name),
            "born_text": column(columns.birth_date),
            "sex": column(columns.sex),
            "address": _joined([column(c) for c in columns.address]),
            "postal": column(columns.postal_code),
        }
    )
    con = scratch()
    try:
        try:
            con.execute("SELECT try_strptime('2000-01-01', ?)", [date_format])
        except EngineError:
            raise UserError(
                f"{date_format!r} is not a date format: give one such as %Y-%m-%d "
                "or %m/%d/%Y (--date-format)."
            ) from None
        with registered(con, people=people):
            checked = arrow(
                con,
                _CHECK_SQL,
                [
                    date_format,
                    date_format,
                    _NO_ID,
                    date_format,
                    columns.local_id,
                    columns.birth_date,
                    _ID_TROUBLED,
                    _ID_CLASHES,
                    columns.local_id,
                ],
            )
    finally:
        con.close()
    set_aside = pc.is_valid(checked["problem"])
    refused = checked.filter(set_aside).sort_by("row")
    kept = checked.filter(pc.invert(set_aside)).sort_by("row")
    quarantined = tuple(
        zip(
            refused["row"].to_pylist(),
            refused["id"].to_pylist(),
            refused["field"].to_pylist(),
            refused["problem"].to_pylist(),
            strict=True,
        )
    )
    if not kept.num_rows and quarantined:
        first_bad = quarantined[0]
        raise InputFileError(
            f"no record could be encoded; the first problem: {first_bad[3]}.",
            path=source,
            row=first_bad[0],
            column=first_bad[2],
        )
    if not kept.num_rows:
        raise UserError(f"{source} has no records to encode.")
    encoded = encode_columns(
        pa.table(
            {
                "local_id": kept["id"],
                "first_name": kept["first"],
                "last_name": kept["last"],
                "birth_date": kept["born"],
                "sex": kept["sex"],
                "address": kept["address"],
                "postal_code": kept["postal"],
            }
        ),
        secret,
        project=project,
        salt_with_birth_year=salt_with_birth_year,
    )
    return EncodedFile(
        encoded.num_rows,
        _encodings_csv(encoded["local_id"].to_pylist(), encoded["clk"].to_pylist()),
        json.dumps(schema(project, salt_with_birth_year, without), indent=2).encode(
            "utf-8"
        ),
        quarantined,
        without,
    )


# Each row once: set aside (no id, or a birth date that is not a date in the
# format), or encoded (the first row of its id), or a repeat of an encoded row.
# An id given to two people, or on a row set aside, is sent from no row: its first
# kept row and every row unlike that one are set aside too.
_CHECK_SQL = r"""
WITH stripped AS (
    -- as Python's str.strip: any white space, not only blanks
    SELECT row, nullif(regexp_replace(id, '^\s+|\s+$', '', 'g'), '') AS id,
           first, last,
           nullif(regexp_replace(born_text, '^\s+|\s+$', '', 'g'), '') AS born_text,
           sex, address, postal
    FROM people
),
typed AS (
    SELECT *,
           -- a year of fewer than four digits ("11-01-05") is no year
           CASE WHEN year(try_strptime(born_text, ?)) >= 1000
                THEN try_strptime(born_text, ?)::DATE END AS born
    FROM stripped
),
refused AS (
    SELECT row, coalesce(id, '') AS id,
           CASE WHEN id IS NULL THEN ?
                ELSE '''' || born_text || ''' is not a date in the format ' || ?
                     || '; fix it (or pass --date-format) and encode again'
           END AS problem,
           CASE WHEN id IS NULL THEN ? ELSE ? END AS field
    FROM typed WHERE id IS NULL OR (born_text IS NOT NULL AND born IS NULL)
),
good AS (SELECT * FROM typed WHERE row NOT IN (SELECT row FROM refused)),
firsts AS (SELECT id, min(row) AS first_row FROM good GROUP BY id),
shaped AS (
    SELECT g.*, f.first_row,
           (g.first, g.last, g.born, g.sex) IS NOT DISTINCT FROM
               (x.first, x.last, x.born, x.sex) AS like_first
    FROM good g JOIN firsts f USING (id) JOIN good x ON x.row = f.first_row
),
troubled AS (
    SELECT id FROM shaped WHERE NOT like_first
    UNION SELECT id FROM refused WHERE id <> ''
)
-- a person listed twice at two addresses (a move) is one person: the first row's
SELECT row, id, first, last, born, sex, address, postal,
       NULL::VARCHAR AS problem, NULL::VARCHAR AS field
FROM shaped WHERE row = first_row AND id NOT IN (SELECT id FROM troubled)
UNION ALL
SELECT row, id, NULL, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN row = first_row THEN ? ELSE ? END, ?
FROM shaped WHERE id IN (SELECT id FROM troubled)
  AND (row = first_row OR NOT like_first)
UNION ALL
SELECT row, id, NULL, NULL, NULL, NULL, NULL, NULL, problem, field FROM refused
"""


def dice(a: str, b: str) -> float:
    """Dice similarity of two base64 CLKs (for tests and explanations)."""
    x = np.unpackbits(np.frombuffer(base64.b64decode(a), dtype=np.uint8))
    y = np.unpackbits(np.frombuffer(base64.b64decode(b), dtype=np.uint8))
    total = int(x.sum() + y.sum())
    return 2 * int((x & y).sum()) / total if total else 0.0


def schema(
    project: str, salt_with_birth_year: bool, without: tuple[str, ...] = ()
) -> dict[str, object]:
    """The encoding as a clkhash v3-style schema document (shared with partners);
    ``without``: features the partner's file has no column for (left empty)."""
    return {
        "version": 3,
        "clkConfig": {
            "l": BITS,
            "kdf": {
                "type": "HKDF",
                "hash": "SHA256",
                "info": "feature name",
                "salt": f"sha256('backbone-pprl:{project}')",
                "keySize": 32,
            },
        },
        "features": [
            {
                "identifier": f.name,
                "hashing": {
                    "comparison": {
                        "type": "ngram",
                        "n": 2 if f.tokens == "bigram" else 1,
                        "positional": f.tokens == "positional",
                    },
                    "strategy": {"bitsPerToken": f.bits_per_token},
                    "hash": {"type": "blakeHash"},
                    **({"salt": "birth year"} if salt_with_birth_year else {}),
                },
            }
            for f in FEATURES
            if f.name not in without
        ],
    }


def band_positions(bands: int = BANDS, width: int = BAND_WIDTH) -> list[Sequence[int]]:
    """Fixed bit positions of each blocking band (public: they reveal nothing)."""
    rng = np.random.default_rng(1024)
    return [
        sorted(rng.choice(BITS, size=width, replace=False).tolist())
        for _ in range(bands)
    ]


EXHAUSTIVE_PAIRS = 50_000_000
"""A run compares partners' encodings pair by pair, the smallest pairs of partners
first, up to this many pairs in all (about 6 s on two cores); beyond it only pairs
that share a band are. Banding misses about one true pair in fifteen on the public
sets (bench/linkage_public.py), comparing all misses none."""


def dice_scores_sql(table: str, exhaustive_pairs: int = EXHAUSTIVE_PAIRS) -> str:
    """SELECT every candidate pair of encodings and its Dice similarity.

    ``table(unique_id, partner_id, clk BLOB, clear BOOLEAN)``: ``clear`` marks
    records the warehouse also holds in clear text; two of those are left to the
    clear-text model, so encodings only speak for records known by nothing else.
    Pairs from the same partner are never compared. Pairs of partners, the
    smallest first, have all their pairs of records compared while the total stays
    within ``exhaustive_pairs``; the others, the pairs that share all bits of at
    least one band.
    """
    band_keys = []
    for b, positions in enumerate(band_positions()):
        bits = " || ".join(f"get_bit(bits, {p})::VARCHAR" for p in positions)
        band_keys.append(
            f"SELECT unique_id, partner_id, clear, {b} AS band, {bits} AS key FROM e"
        )
    bands = "\n        UNION ALL ".join(band_keys)
    return f"""
    WITH e AS (
        SELECT unique_id, partner_id, clear, clk::BIT AS bits, bit_count(clk::BIT) AS ones
        FROM {table}
    ),
    sizes AS (SELECT partner_id, count(*) AS n FROM e GROUP BY partner_id),
    pairs_of AS (
        SELECT a.partner_id AS partner_a, b.partner_id AS partner_b,
               sum(a.n * b.n) OVER (ORDER BY a.n * b.n, a.partner_id, b.partner_id)
                   AS running
        FROM sizes a JOIN sizes b ON a.partner_id < b.partner_id
    ),
    -- the smallest pairs of partners first, until the run's budget is spent
    small AS (
        SELECT partner_a, partner_b FROM pairs_of
        WHERE running <= {int(exhaustive_pairs)}
    ),
    keyed AS ({bands}),
    candidates AS (
        SELECT DISTINCT least(a.unique_id, b.unique_id) AS unique_id_l,
               greatest(a.unique_id, b.unique_id) AS unique_id_r
        FROM keyed a JOIN keyed b
          ON a.band = b.band AND a.key = b.key AND a.unique_id < b.unique_id
         AND a.partner_id <> b.partner_id AND NOT (a.clear AND b.clear)
        WHERE (least(a.partner_id, b.partner_id), greatest(a.partner_id, b.partner_id))
              NOT IN (SELECT (partner_a, partner_b) FROM small)
        UNION ALL
        SELECT least(a.unique_id, b.unique_id), greatest(a.unique_id, b.unique_id)
        FROM small s JOIN e a ON a.partner_id = s.partner_a
        JOIN e b ON b.partner_id = s.partner_b
        WHERE NOT (a.clear AND b.clear)
    )
    SELECT c.unique_id_l, c.unique_id_r, l.partner_id AS partner_l,
           r.partner_id AS partner_r,
           2.0 * bit_count(l.bits & r.bits) / (l.ones + r.ones) AS dice
    FROM candidates c JOIN e l ON l.unique_id = c.unique_id_l
    JOIN e r ON r.unique_id = c.unique_id_r
    """


def dice_edges_sql(scores: str, threshold: float) -> str:
    """SELECT the pairs of ``scores`` (:func:`dice_scores_sql`) with Dice ≥
    ``threshold`` that are each record's best match in the other's partner, both
    ways (one-to-one: a partner holds one record per person)."""
    return f"""
    WITH kept AS (SELECT * FROM {scores} WHERE dice >= {float(threshold)}),
    ranked AS (
        SELECT *,
               row_number() OVER (PARTITION BY unique_id_l, partner_r ORDER BY dice DESC, unique_id_r) AS rank_l,
               row_number() OVER (PARTITION BY unique_id_r, partner_l ORDER BY dice DESC, unique_id_l) AS rank_r
        FROM kept
    )
    SELECT unique_id_l, unique_id_r, dice FROM ranked WHERE rank_l = 1 AND rank_r = 1
    """


def dice_threshold_sql(scores: str, target: float, floor: float, ceiling: float) -> str:
    """The Dice similarity from which one-to-one pairs are linked, read from the
    similarities themselves: the lowest (in hundredths, within ``floor`` and
    ``ceiling``) at which the pairs linked are estimated right at least ``target``
    of the time.

    How high a non-match reaches is read from each record's *second*-best
    candidate in the other partner (its best that is not its match): at t, a
    share q(t) of the n record slots have one that high. A false link needs a
    record without its match and a best non-match without its own. The records
    with their match are counted only from the links no second best reaches
    (where no non-match was seen, so not from links that may be false
    themselves): M of them, leaving u = n - 2M unmatched. Expected false links
    at t: u q(t) (u / n) / 2; precision 1 - that / links(t). Two rosters of
    different people leave u = n, and nothing is linked below the ceiling; two
    of the same people, whose matches stand clear of the rest, are linked down
    to the floor. Where nothing reaches ``target`` the ceiling holds."""
    return f"""
    WITH sides AS (
        SELECT unique_id_l AS unique_id, partner_r AS other, dice FROM {scores}
        UNION ALL
        SELECT unique_id_r, partner_l, dice FROM {scores}
    ),
    ranked AS (
        SELECT dice,
               row_number() OVER (PARTITION BY unique_id, other ORDER BY dice DESC) AS rank
        FROM sides
    ),
    slots AS (SELECT count(*) AS n FROM ranked WHERE rank = 1),
    seconds AS (SELECT dice FROM ranked WHERE rank = 2),
    mutual AS ({dice_edges_sql(scores, floor)}),
    sure AS (
        SELECT count(*) AS m FROM mutual
        WHERE dice > coalesce((SELECT quantile_cont(dice, 0.99) FROM seconds), 0)
    ),
    grid AS (SELECT range / 100.0 AS t FROM range(50, 100)),
    estimated AS (
        SELECT g.t,
               (SELECT count(*) FROM mutual WHERE dice >= g.t) AS links,
               (SELECT count(*) FROM seconds WHERE dice >= g.t) AS seconds_over
        FROM grid g
    ),
    precision AS (
        SELECT e.t,
               1 - greatest(s.n - 2 * m.m, 0) * (e.seconds_over / s.n)
                   * greatest(s.n - 2 * m.m, 0) / s.n / 2 / e.links AS expected
        FROM estimated e, slots s, sure m WHERE e.links > 0
    )
    SELECT greatest({float(floor)}, least({float(ceiling)},
           coalesce(min(t) FILTER (WHERE expected >= {float(target)}), {float(ceiling)})))
    FROM precision
    """
