"""Backbone: a community data-sharing warehouse for collective-impact partnerships.

The public face is small: open or create a :class:`Warehouse` and use its stages.
"""

from backbone.errors import BackboneError
from backbone.version import __version__
from backbone.warehouse import Warehouse

__all__ = ["BackboneError", "Warehouse", "__version__"]
