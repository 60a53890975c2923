"""The canonical model: tables as data, descriptors, the school calendar, and schema
migrations."""

from backbone.model.calendar import (
    school_year_bounds,
    school_year_label,
    school_year_of,
    school_year_sql,
)
from backbone.model.descriptors import DESCRIPTORS, descriptor_uri, parse_descriptor_uri
from backbone.model.migrations import CURRENT_VERSION, migrate
from backbone.model.schema import ALL_TABLES, Column, Table, table

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
