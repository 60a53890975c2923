"""The web door (``backbone serve``): a site for every role on the governed core."""

from backbone.web.app import create_app

__all__ = ["create_app"]
