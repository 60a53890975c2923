"""Backbone: a community data-sharing warehouse for collective-impact partnerships.

The public face is small: open or create a :class:`Warehouse` and use its stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backbone.errors import BackboneError
from backbone.version import __version__

if TYPE_CHECKING:
    from backbone.warehouse import Warehouse

__all__ = ["BackboneError", "Warehouse", "__version__"]


def __getattr__(name: str) -> Any:
    # the warehouse loads every stage, so ``import backbone`` (the command's
    # start) does not pay for it until it is asked for (PEP 562)
    if name == "Warehouse":
        from backbone.warehouse import Warehouse

        return Warehouse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
