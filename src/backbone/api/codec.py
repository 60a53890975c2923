"""Results as JSON and back, by their types: the API's answers, the client's
decoding of them (the same records the CLI renders locally) and the OpenAPI
schemas all come from the stage's own result types.

A frozen dataclass becomes an object of its fields; an Arrow table becomes
``{"columns": [{"name", "type"}], "rows": [{column: value}]}``; dates are ISO text.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

__all__ = ["decode", "encode", "schema_of", "type_hints"]

JSON = Any


def encode(value: Any) -> JSON:
    """``value`` as plain JSON data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Enum):
        return encode(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, pa.Table):
        return {
            "columns": [{"name": f.name, "type": str(f.type)} for f in value.schema],
            "rows": [
                {k: encode(v) for k, v in row.items()} for row in value.to_pylist()
            ],
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}")  # a result type to add


def type_hints(cls: type) -> dict[str, Any]:
    """A dataclass's field types, its module's names (and ``pa``) resolving them."""
    import sys

    module = sys.modules.get(cls.__module__)
    namespace = {"pa": pa, **vars(module)} if module else {"pa": pa}
    return typing.get_type_hints(cls, globalns=namespace)


def _arrow_type(text: str) -> pa.DataType | None:
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        pass
    zoned = re.fullmatch(r"timestamp\[(s|ms|us|ns), tz=(.+)\]", text)
    if zoned:
        return pa.timestamp(zoned.group(1), tz=zoned.group(2))
    if text.startswith("dictionary<values=") and " indices=" in text:
        return _arrow_type(text.removeprefix("dictionary<values=").split(",")[0])
    if text.startswith("decimal128(") or text.startswith("decimal("):
        precision, scale = text[text.index("(") + 1 : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    return None


def _column(values: list[Any], kind: pa.DataType | None) -> pa.Array:
    if kind is None:
        return pa.array(values)
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array(values).cast(kind)  # dates and times come as ISO text


def _table(data: JSON) -> pa.Table:
    columns = data.get("columns", [])
    rows = data.get("rows", [])
    arrays = [
        _column([r.get(c["name"]) for r in rows], _arrow_type(c["type"]))
        for c in columns
    ]
    return pa.table(arrays, names=[c["name"] for c in columns])


def decode(data: JSON, hint: Any) -> Any:
    """JSON data back into the type ``hint`` names."""
    if hint is Any or hint is object:
        return data
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        return decode(data, others[0]) if len(others) == 1 else data
    if origin is typing.Literal:
        return data
    if data is None:
        return None
    if hint is pa.Table:
        return _table(data)
    if origin in (list, tuple, set, frozenset, Sequence) or hint in (list, tuple):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(v, args[0]) for v in data)
        if origin is tuple and args:
            return tuple(decode(v, a) for v, a in zip(data, args, strict=False))
        item = args[0] if args else Any
        made = [decode(v, item) for v in data]
        kind = origin or hint
        return made if kind in (list, Sequence) else kind(made)
    if origin in (dict, Mapping) or hint is dict:
        value = args[1] if len(args) == 2 else Any
        return {k: decode(v, value) for k, v in data.items()}
    if isinstance(hint, type):
        if issubclass(hint, BaseModel):
            return hint.model_validate(data)
        if dataclasses.is_dataclass(hint):
            hints = type_hints(hint)
            given = {
                f.name: decode(data[f.name], hints[f.name])
                for f in dataclasses.fields(hint)
                if f.name in data and f.init
            }
            return hint(**given)
        if issubclass(hint, Enum):
            return hint(data)
        if issubclass(hint, datetime):
            return datetime.fromisoformat(data)
        if issubclass(hint, date):
            return date.fromisoformat(data)
        if issubclass(hint, bytes):
            return base64.b64decode(data)
        if issubclass(hint, PurePath):
            return hint(data)
        if issubclass(hint, float) and isinstance(data, int | float):
            return float(data)
    return data


_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    date: {"type": "string", "format": "date"},
    datetime: {"type": "string", "format": "date-time"},
    bytes: {"type": "string", "format": "byte"},
}

_TABLE = {
    "type": "object",
    "description": "A table: its columns (name and Arrow type) and its rows, one "
    "object per row keyed by column name.",
    "properties": {
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "rows": {"type": "array", "items": {"type": "object"}},
    },
}


def schema_of(hint: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``hint``; dataclasses go into ``components`` (OpenAPI's
    ``components/schemas``) and are referred to."""
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    if hint is Any or hint is object:
        return {}
    if hint is pa.Table:
        components.setdefault("Table", _TABLE)
        return {"$ref": "#/components/schemas/Table"}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        inner = (
            schema_of(others[0], components)
            if len(others) == 1
            else {"anyOf": [schema_of(a, components) for a in others]}
        )
        return {"anyOf": [inner, {"type": "null"}]} if type(None) in args else inner
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset, Sequence):
        item = args[0] if args else Any
        return {"type": "array", "items": schema_of(item, components)}
    if origin in (dict, Mapping):
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": schema_of(value, components)}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"type": "string", "enum": [e.value for e in hint]}
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        made = hint.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        for name, part in made.pop("$defs", {}).items():
            components.setdefault(name, part)
        components.setdefault(hint.__name__, made)
        return {"$ref": f"#/components/schemas/{hint.__name__}"}
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return {"type": "string"}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in components:
            components[name] = {}  # a placeholder while its fields are described
            hints = type_hints(hint)
            fields = [f for f in dataclasses.fields(hint) if not f.name.startswith("_")]
            doc = (hint.__doc__ or "").strip().split("\n\n")[0]
            if doc.startswith(f"{name}("):  # the dataclass's own, not a description
                doc = ""
            components[name] = {
                "type": "object",
                "title": name,
                **({"description": " ".join(doc.split())} if doc else {}),
                "properties": {
                    f.name: schema_of(hints[f.name], components) for f in fields
                },
                "required": [f.name for f in fields],
            }
        return {"$ref": f"#/components/schemas/{name}"}
    return {}
