"""The REST API door (``/api/v1`` of ``backbone serve``) and its client."""

from backbone.api.app import API_PREFIX, create_api

__all__ = ["API_PREFIX", "create_api"]
