"""The site's pages, one module per area; each registers its routes on the app
with the :class:`~backbone.web.door.Door` they share."""

from backbone.web.pages import common, funder, jobs, partner, requests, steward

PAGE_MODULES = (
    common,
    jobs,
    requests,
    steward,
    partner,
    funder,
)
