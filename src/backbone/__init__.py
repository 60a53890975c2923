"""Backbone: a community data-sharing warehouse for collective-impact partnerships.

The public face is small: open or create a :class:`Warehouse` and use its stages.
"""

__version__ = "0.1.0"

from backbone.errors import BackboneError
from backbone.warehouse import Warehouse

__all__ = ["BackboneError", "Warehouse", "__version__"]
