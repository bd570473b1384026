"""Structured logs for every process: console-friendly key=value in the embedded mode,
one JSON object per line in the fleet (KARTABL_LOG_FORMAT=json), and the one place that
keeps secrets out of them.

The standard library's loggers (ours, dramatiq's, uvicorn's) all go through structlog's
ProcessorFormatter, so every line has the same shape whoever wrote it.

Secrets: :data:`SECRETS` is the one masking filter. An adapter that holds a secret which a
library may log (a bot token or an API key in request URLs, a secret path segment in access
lines) registers it with :func:`hide_secret` or :func:`hide_pattern`, naming the loggers
that may print it; :func:`redact` cleans the error texts we build ourselves. Structured
fields named like a credential (``password``, ``token``, ...) are masked whatever they hold.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from config.settings import Settings

# Keys that must never reach a log line (secrets and credentials).
_REDACT = {"password", "secret", "secret_key", "token", "api_key", "apikey", "authorization"}


MASK = "***"


class SecretFilter(logging.Filter):
    """Replaces every registered secret in a record's message by its mask. A logger's
    filters see only its own records, not its children's: each logger that may print a
    secret is named when the secret is registered (see :func:`hide_secret`)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}  # secret -> its mask
        self._patterns: list[tuple[re.Pattern[str], str]] = []

    def add_value(self, value: str, mask: str) -> None:
        if value:  # an empty secret would mask every gap between characters
            with self._lock:
                self._values[value] = mask

    def add_pattern(self, pattern: re.Pattern[str], replacement: str) -> None:
        with self._lock:
            if (pattern, replacement) not in self._patterns:
                self._patterns.append((pattern, replacement))

    def redact(self, text: str) -> str:
        for value, mask in list(self._values.items()):
            text = text.replace(value, mask)
        for pattern, replacement in list(self._patterns):
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        # Clean the arguments in place first: a formatter may unpack them (uvicorn's
        # AccessFormatter reads (client, method, path, version, status) from record.args).
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a
                                for a in record.args)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = self.redact(message)
        if clean != message:  # the secret is in the format string, or spans an argument
            record.msg, record.args = clean, None
        return True

    def install(self, loggers: Iterable[str]) -> None:
        with self._lock:
            for name in loggers:
                logger = logging.getLogger(name)
                if self not in logger.filters:
                    logger.addFilter(self)


SECRETS = SecretFilter()


def hide_secret(value: str, mask: str = MASK, *, loggers: Iterable[str] = ()) -> None:
    """Mask ``value`` in what ``loggers`` (and our own root handler) log, and in
    :func:`redact`."""
    SECRETS.add_value(value, mask)
    SECRETS.install(loggers)


def hide_pattern(pattern: re.Pattern[str], replacement: str, *,
                 loggers: Iterable[str] = ()) -> None:
    """Rewrite what ``pattern`` matches (a secret path segment, say) in those loggers."""
    SECRETS.add_pattern(pattern, replacement)
    SECRETS.install(loggers)


def redact(text: str) -> str:
    """``text`` with every registered secret masked: for error texts we build or show."""
    return SECRETS.redact(text)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _REDACT:
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = SECRETS.redact(value)
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


def configure(settings: Settings) -> None:
    """Install the process's logging; ``settings`` are the process's, read at its start."""
    s = settings
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
    handler.addFilter(SECRETS)  # whichever logger wrote it, nothing leaves with a secret
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
