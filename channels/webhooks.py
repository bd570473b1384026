"""The webhook routes of every channel, found by name: a channel that takes webhooks has a
``channels/<name>/webhook.py`` module with a FastAPI ``router``; the console app mounts each
one under ``/webhooks/<name>``. Nothing to register by hand, so nothing to forget.

A webhook verifies, stores (commits), then answers: the work happens in the workers."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

import channels


def routers() -> dict[str, APIRouter]:
    """``{channel package name: its router}`` for every channel with a webhook module."""
    found: dict[str, APIRouter] = {}
    for info in sorted(pkgutil.iter_modules(channels.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"channels.{info.name}.webhook")
        except ModuleNotFoundError as exc:
            if exc.name != f"channels.{info.name}.webhook":
                raise  # the module exists but something it imports is missing: a real error
            continue
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"channels.{info.name}.webhook.router is not a FastAPI APIRouter")
        found[info.name] = router
    return found
