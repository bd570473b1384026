"""Structured logs for every process: console-friendly key=value in the embedded mode,
one JSON object per line in the fleet (KARTABL_LOG_FORMAT=json).

The standard library's loggers (ours, dramatiq's, uvicorn's) all go through structlog's
ProcessorFormatter, so every line has the same shape whoever wrote it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from config.settings import Settings, get_settings

# Keys that must never reach a log line (secrets and credentials).
_REDACT = {"password", "secret", "secret_key", "token", "api_key", "apikey", "authorization"}


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _REDACT:
            event[key] = "***"
    return event


def _extra(
    record_logger: Any, name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Fields passed as logging's extra= (kartabl.audit uses it) become structured keys.
    record = event.get("_record")
    if record is not None:
        for key in ("event_kind", "actor", "conversation", "reply", "data"):
            value = getattr(record, key, None)
            if value not in (None, {}):
                event[key] = value
    return event


def configure(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if s.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                _extra,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(s.log_level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
