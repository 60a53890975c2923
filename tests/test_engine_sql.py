"""The engine seam's quoting and settings: a name or value written into SQL reads back
as itself, whatever it contains; nothing else gets in."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest

from backbone.engines import (
    ident,
    literal,
    next_id,
    next_ids,
    qualified,
    set_option,
)
from backbone.engines.sql import SqlValue

AWKWARD = ["plain", 'with "quotes"', "it's", "semi; DROP TABLE x; --", "ünï", " "]


@pytest.mark.parametrize("name", AWKWARD)
def test_an_identifier_names_exactly_its_column(name: str) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({ident(name)} INTEGER)")
    con.execute(f"INSERT INTO t ({ident(name)}) VALUES (1)")
    assert [d[0] for d in con.execute("SELECT * FROM t").description] == [name]


def test_a_qualified_name_quotes_every_part() -> None:
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {ident('my schema')}")
    con.execute(f"CREATE TABLE {qualified('my schema', 'a.b')} (x INTEGER)")
    assert con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()"
    ).fetchall() == [("my schema", "a.b")]
    assert qualified("ops", "submission") == '"ops"."submission"'


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_an_impossible_identifier_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ident(bad)


@pytest.mark.parametrize(
    ("value", "back"),
    [
        *((text, text) for text in AWKWARD),
        ("", ""),
        (None, None),
        (True, True),
        (False, False),
        (0, 0),
        (-(2**40), -(2**40)),
        (1.5, 1.5),
        (1e-7, 1e-7),
        (date(2024, 2, 29), date(2024, 2, 29)),
        (datetime(2024, 2, 29, 13, 5, 7, 12), datetime(2024, 2, 29, 13, 5, 7, 12)),
    ],
)
def test_a_literal_reads_back_as_its_value(value: SqlValue, back: object) -> None:
    [(read,)] = duckdb.connect().execute(f"SELECT {literal(value)}").fetchall()
    assert read == back
    assert type(read) is type(back)  # a float stays a DOUBLE, not a DECIMAL


@pytest.mark.parametrize("value", [Decimal("1.5"), b"bytes", [1], object()])
def test_a_value_of_another_type_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        literal(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "a\x00b"])
def test_a_value_with_no_literal_is_refused(value: SqlValue) -> None:
    with pytest.raises(ValueError):
        literal(value)


def test_set_option_sets_allowed_options_and_refuses_others() -> None:
    con = duckdb.connect()
    set_option(con, "threads", 1)
    set_option(con, "memory_limit", "512MB")
    set_option(con, "preserve_insertion_order", False)
    assert con.execute(
        "SELECT current_setting('threads'), current_setting('preserve_insertion_order')"
    ).fetchone() == (1, False)
    with pytest.raises(ValueError, match="not an engine option"):
        set_option(con, "threads = 1; SET enable_external_access", True)
    with pytest.raises(ValueError, match="not an engine option"):
        set_option(con, "allow_unsigned_extensions", True)
    # a value is only ever a value
    with pytest.raises(duckdb.Error):
        set_option(con, "memory_limit", "1GB'; SET threads = 7; --")
    assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)


def test_next_id_never_hands_out_a_number_twice_even_after_a_rollback() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ops")
    con.execute("CREATE SEQUENCE ops.thing_id START WITH 7")
    assert next_id(con, "ops.thing_id") == 7
    con.execute("BEGIN TRANSACTION")
    assert next_id(con, "ops.thing_id") == 8
    con.execute("ROLLBACK")
    assert next_id(con, "ops.thing_id") == 9


def test_next_ids_draws_a_block_and_nothing_after_it_repeats() -> None:
    con = duckdb.connect()
    con.execute("CREATE SEQUENCE s START WITH 3")
    assert next_ids(con, "s", 0) == []
    assert next_ids(con, "s", 3) == [3, 4, 5]
    assert next_id(con, "s") == 6
