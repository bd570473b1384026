"""The email channel: IMAP in (:mod:`channels.email.imap`), parsing
(:mod:`channels.email.parse`). Replies leave through :mod:`responders.email` (SMTP)."""

from channels.email.parse import parse

__all__ = ["parse"]
