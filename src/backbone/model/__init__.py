"""The canonical model: tables as data, descriptors, and schema migrations."""

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
    "table",
]
