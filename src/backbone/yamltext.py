"""Reading YAML: agreements, mappings, definitions and requests are read on every
command that uses them, so with libyaml's parser where PyYAML was built with it (ten
times the pure-Python one's speed; same constructors, same errors)."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["read_yaml"]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str) -> Any:
    """``yaml.safe_load``, faster; raises ``yaml.YAMLError`` as it does."""
    return yaml.load(text, Loader=_LOADER)  # a safe loader (C or Python)
