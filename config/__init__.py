"""Typed settings and the example configuration (teams, routing rules, approval policy)."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
