"""The inbound contract: what a polled channel adapter provides, and nothing more.

An adapter knows its protocol: how to fetch raw input, how to turn it into
:class:`~kartabl.messages.InboundMessage` s, and how to acknowledge a batch once it is
committed (flag or move the mail on IMAP, advance a Telegram offset; Kavenegar's receive
marks what it returns read, so SMS acknowledges nothing). One runner
(:mod:`channels.runner`) owns the rest for every polled channel: the leader lock per
source, the commit and its retries, acknowledging only after the commit, backoff on
errors, and the source's status for ``kartabl status`` and ``/readyz``.

The order is the whole guarantee::

    batch = next(feed.batches())   # fetch + parse, nothing stored yet
    batch.stage(session); commit   # the runner (retried on database errors)
    feed.acknowledge(batch)        # only now may the source forget the input

A crash before the commit loses nothing (the source still has the input); a crash
between the commit and the acknowledgement re-delivers the batch, which ingest's unique
(channel, external id) turns into duplicates, never into second rows.

Webhooks have a contract of their own, beside the FastAPI routes
(:mod:`channels.webhooks`): verify, size limit, parse, store, answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from kartabl import ingest
from kartabl.errors import KartablError
from kartabl.ingest import Stored
from kartabl.messages import InboundMessage


class SourceUnavailable(KartablError):
    """The source cannot be reached or refused us (a network error, a login refused, the
    provider's 5xx). Adapters raise it (``raise ... from exc``) for their protocol's errors:
    the runner reports it as an outage, not as a bug of ours."""


@dataclass(slots=True)
class Batch:
    """One fetch's worth of input, turned into messages, not stored yet."""

    messages: Sequence[InboundMessage]
    fetched: int  # raw items fetched (mails, updates, SMS), usable or not
    skipped: int = 0  # input dropped as unusable or not ours (the adapter logged why)
    ack: Any = None  # what :meth:`Feed.acknowledge` needs: UIDs, the next offset ...
    more: bool = False  # the source has more right now: the pass asks again at once
    quarantined: int = 0  # input kept aside with its bytes for a re-import (set by stage)
    stored: list[Stored] = field(default_factory=list)  # set by the runner after the commit

    def stage(self, session: Session) -> list[Stored]:
        """Add the batch's rows to ``session``, uncommitted (the runner commits). An adapter
        with rows of its own to commit with the messages (email's quarantine) overrides
        this. Called again on a fresh session when the commit is retried."""
        return ingest.add_many(session, self.messages)


class Feed(Protocol):
    """A source while it is open (an IMAP connection; for HTTP APIs, the source itself)."""

    def batches(self) -> Iterator[Batch]:
        """One pass: the batches of what is new, fetched lazily. The runner commits and
        acknowledges each before asking for the next, so a pass may end early (stopping,
        a lost lock) without leaving anything half done."""
        ...

    def acknowledge(self, batch: Batch) -> None:
        """Tell the source that ``batch`` is committed (its input may be forgotten)."""
        ...

    def wait(self, stop: threading.Event) -> None:
        """Until the next pass is due: IMAP IDLE, a poll interval, or nothing for a long
        poll (getUpdates waits on the server). Returns early when ``stop`` is set."""
        ...


class PolledSource(Protocol):
    """A source read by polling: one mailbox, one bot, one SMS line."""

    @property
    def name(self) -> str:
        """Unique among all sources, e.g. ``email:support``: names its lock and status."""
        ...

    def open(self) -> AbstractContextManager[Feed]:
        """Connect (and log in); closed when the runner leaves the block."""
        ...
