"""Privacy-preserving linkage: keyed Bloom-filter encodings and Dice matching.

A partner runs :func:`encode_records` on its own machine with a secret shared
among the partners of a linkage project and never given to the backbone. Each
record becomes one 1024-bit record-level Bloom filter (a CLK, Schnell et al.):
first and last name as padded bigrams, the birth date as positional unigrams, sex
as one token. Every feature has its own key, derived from the secret by HKDF
(RFC 5869, SHA-256); each token is hashed by keyed BLAKE2b, whose digest gives the
token's bit positions (random hashing, not the attackable double hashing). Bits per
token are set so about half the bits are on. Salting with the birth year is
optional. Only local ids and encodings leave the partner. The layout follows the
clkhash v3 schema (``schema()``), so other tools can produce the same encodings.

The warehouse compares encodings by Dice similarity. Candidate pairs come from
locality-sensitive blocking on sampled bit positions (bands), and each encoded
record keeps at most its best match in each other partner (one-to-one), since a
partner holds one record per person.

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
from datetime import date, datetime

import numpy as np

from backbone.errors import InputFileError, UserError

__all__ = [
    "BITS",
    "FEATURES",
    "EncodedFile",
    "EncodedRecord",
    "IdentityColumns",
    "dice",
    "dice_edges_sql",
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


FEATURES: tuple[Feature, ...] = (
    Feature("first_name", "bigram", 24),
    Feature("last_name", "bigram", 24),
    Feature("birth_date", "positional", 20),
    Feature("sex", "positional", 16),
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


def _clean(value: str | None) -> str:
    if not value:
        return ""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalpha())


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
    if len(secret) < 16:
        raise ValueError("the linkage secret must be at least 16 bytes")
    salt = hashlib.sha256(f"backbone-pprl:{project}".encode()).digest()
    keys = {f.name: _hkdf(secret, salt, f.name.encode()) for f in FEATURES}
    out = []
    for local_id, first, last, born, sex in rows:
        bits = np.zeros(BITS, dtype=bool)
        year_salt = str(born.year) if (salt_with_birth_year and born) else ""
        values = {
            "first_name": _clean(first),
            "last_name": _clean(last),
            "birth_date": born.strftime("%Y%m%d") if born else "",
            "sex": (sex or "")[:1].lower(),
        }
        for feature in FEATURES:
            for token in _tokens(feature, values[feature.name]):
                digest = hashlib.blake2b(
                    (year_salt + token).encode(),
                    key=keys[feature.name],
                    digest_size=2 * feature.bits_per_token,
                ).digest()
                positions = np.frombuffer(digest, dtype=">u2") % BITS
                bits[positions] = True
        out.append(
            EncodedRecord(
                str(local_id), base64.b64encode(np.packbits(bits).tobytes()).decode()
            )
        )
    return out


@dataclass(frozen=True)
class IdentityColumns:
    """The columns of a partner's CSV that hold each identity field."""

    local_id: str = "local_id"
    first_name: str = "first_name"
    last_name: str = "last_surname"
    birth_date: str = "birth_date"
    sex: str = "birth_sex"


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

    def quarantine_csv(self) -> bytes:
        """The rows not encoded, for the partner to fix (never sent)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["row", "local_id", "column", "problem"])
        writer.writerows(self.quarantined)
        return out.getvalue().encode("utf-8")


def encodings_csv(encoded: Iterable[EncodedRecord]) -> bytes:
    """``local_id,clk`` as CSV bytes (what ``backbone encodings submit`` reads)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["local_id", "clk"])
    writer.writerows((e.local_id, e.clk) for e in encoded)
    return text.getvalue().encode("utf-8")


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
    ``source`` names it in errors. Names and birth dates never leave this call."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.", path=source
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    wanted = [
        columns.local_id,
        columns.first_name,
        columns.last_name,
        columns.birth_date,
        columns.sex,
    ]
    missing = [c for c in wanted if c not in (reader.fieldnames or [])]
    if missing:
        raise InputFileError(
            f"has no column {', '.join(missing)}; name the columns with "
            "--id-column, --first-column, --last-column, --birth-column, --sex-column.",
            path=source,
            row=1,
        )
    Identity = tuple[str, str | None, str | None, date | None, str | None]
    rows: dict[str, tuple[int, Identity]] = {}  # local id -> (first row, identity)
    refused: dict[int, tuple[int, str, str, str]] = {}
    clashing: set[str] = set()
    for number, row in enumerate(reader, start=2):
        local_id = (row[columns.local_id] or "").strip()
        if not local_id:
            refused[number] = (
                number,
                "",
                columns.local_id,
                "no local id; give every record its id",
            )
            continue
        born_text = (row[columns.birth_date] or "").strip()
        born = None
        if born_text:
            try:
                born = datetime.strptime(born_text, date_format).date()
            except ValueError:
                refused[number] = (
                    number,
                    local_id,
                    columns.birth_date,
                    f"'{born_text}' is not a date in the format {date_format}; fix "
                    "it (or pass --date-format) and encode again",
                )
                continue
        identity: Identity = (
            local_id,
            row[columns.first_name],
            row[columns.last_name],
            born,
            row[columns.sex],
        )
        first = rows.get(local_id)
        if local_id in clashing or (first is not None and first[1] != identity):
            # the same id for two people: none of its rows is sent
            clashing.add(local_id)
            refused[number] = (
                number,
                local_id,
                columns.local_id,
                "local id also on another row with other names or birth date; "
                "give each person one id",
            )
        elif first is None:
            rows[local_id] = (number, identity)
        # the same record twice is encoded once
    # an id on a row set aside is not sent from another row either: which of the
    # two is the person cannot be told until the row is fixed
    clashing |= {r[1] for r in refused.values() if r[1] and r[1] in rows}
    for local_id in clashing:
        number, _ = rows.pop(local_id)
        refused[number] = (
            number,
            local_id,
            columns.local_id,
            "local id also on another row that is set aside or has other names or "
            "birth date; give each person one id",
        )
    if not rows and refused:
        first_bad = refused[min(refused)]
        raise InputFileError(
            f"no record could be encoded; the first problem: {first_bad[3]}.",
            path=source,
            row=first_bad[0],
            column=first_bad[2],
        )
    if not rows:
        raise UserError(f"{source} has no records to encode.")
    encoded = encode_records(
        [identity for _, identity in rows.values()],
        secret,
        project=project,
        salt_with_birth_year=salt_with_birth_year,
    )
    return EncodedFile(
        len(encoded),
        encodings_csv(encoded),
        json.dumps(schema(project, salt_with_birth_year), indent=2).encode("utf-8"),
        tuple(refused[n] for n in sorted(refused)),
    )


def dice(a: str, b: str) -> float:
    """Dice similarity of two base64 CLKs (for tests and explanations)."""
    x = np.unpackbits(np.frombuffer(base64.b64decode(a), dtype=np.uint8))
    y = np.unpackbits(np.frombuffer(base64.b64decode(b), dtype=np.uint8))
    total = int(x.sum() + y.sum())
    return 2 * int((x & y).sum()) / total if total else 0.0


def schema(project: str, salt_with_birth_year: bool) -> dict[str, object]:
    """The encoding as a clkhash v3-style schema document (shared with partners)."""
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
        ],
    }


def band_positions(bands: int = BANDS, width: int = BAND_WIDTH) -> list[Sequence[int]]:
    """Fixed bit positions of each blocking band (public: they reveal nothing)."""
    rng = np.random.default_rng(1024)
    return [
        sorted(rng.choice(BITS, size=width, replace=False).tolist())
        for _ in range(bands)
    ]


def dice_edges_sql(table: str, threshold: float) -> str:
    """SELECT candidate pairs of encodings with Dice ≥ ``threshold``.

    ``table(unique_id, partner_id, clk BLOB, clear BOOLEAN)``: ``clear`` marks
    records the warehouse also holds in clear text; two of those are left to the
    clear-text model, so encodings only speak for records known by nothing else.
    Pairs from the same partner are never compared. Each record keeps only its best match per other partner, and a
    pair stays only if it is best for both records (one-to-one).
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
    keyed AS ({bands}),
    candidates AS (
        SELECT DISTINCT least(a.unique_id, b.unique_id) AS unique_id_l,
               greatest(a.unique_id, b.unique_id) AS unique_id_r
        FROM keyed a JOIN keyed b
          ON a.band = b.band AND a.key = b.key AND a.unique_id < b.unique_id
         AND a.partner_id <> b.partner_id AND NOT (a.clear AND b.clear)
    ),
    scored AS (
        SELECT c.unique_id_l, c.unique_id_r, l.partner_id AS partner_l,
               r.partner_id AS partner_r,
               2.0 * bit_count(l.bits & r.bits) / (l.ones + r.ones) AS dice
        FROM candidates c JOIN e l ON l.unique_id = c.unique_id_l
        JOIN e r ON r.unique_id = c.unique_id_r
    ),
    kept AS (SELECT * FROM scored WHERE dice >= {threshold}),
    ranked AS (
        SELECT *,
               row_number() OVER (PARTITION BY unique_id_l, partner_r ORDER BY dice DESC, unique_id_r) AS rank_l,
               row_number() OVER (PARTITION BY unique_id_r, partner_l ORDER BY dice DESC, unique_id_l) AS rank_r
        FROM kept
    )
    SELECT unique_id_l, unique_id_r, dice FROM ranked WHERE rank_l = 1 AND rank_r = 1
    """
