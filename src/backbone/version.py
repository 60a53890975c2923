"""Backbone's version, in the lowest layer so that any module may name it (the
package root re-exports it, but importing the root pulls in the whole warehouse)."""

__version__ = "0.1.0"
