"""The canonical model: tables as data, descriptors, the school calendar, and schema
migrations."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backbone.model.calendar import (
        school_year_bounds,
        school_year_label,
        school_year_of,
        school_year_sql,
    )
    from backbone.model.descriptors import (
        DESCRIPTORS,
        descriptor_uri,
        parse_descriptor_uri,
    )
    from backbone.model.migrations import CURRENT_VERSION, migrate
    from backbone.model.schema import ALL_TABLES, Column, Table, table

# each name loads its module when first used: `backbone.model.outcomes` (a tuple of
# codes) must not bring in the schema and its migrations
_HOME = {
    "school_year_bounds": "calendar",
    "school_year_label": "calendar",
    "school_year_of": "calendar",
    "school_year_sql": "calendar",
    "DESCRIPTORS": "descriptors",
    "descriptor_uri": "descriptors",
    "parse_descriptor_uri": "descriptors",
    "CURRENT_VERSION": "migrations",
    "migrate": "migrations",
    "ALL_TABLES": "schema",
    "Column": "schema",
    "Table": "schema",
    "table": "schema",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'backbone.model' has no attribute {name!r}")
    return getattr(import_module(f"backbone.model.{_HOME[name]}"), name)


__all__ = [
    "ALL_TABLES",
    "CURRENT_VERSION",
    "DESCRIPTORS",
    "Column",
    "Table",
    "descriptor_uri",
    "migrate",
    "parse_descriptor_uri",
    "school_year_bounds",
    "school_year_label",
    "school_year_of",
    "school_year_sql",
    "table",
]
