"""The site's pages, one module per area; each registers its routes on the app
with the :class:`~backbone.web.door.Door` they share."""

from backbone.web.pages import common

PAGE_MODULES = (common,)
