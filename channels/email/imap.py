"""IMAP connections: connect, select, fetch and acknowledge, over imapclient.

Everything that speaks IMAP is here, so the poller (:mod:`channels.email.poller`) reads as
the reliability story it is. Every connection has a timeout: without one, a network cut can
leave ``idle_done()`` or a fetch blocked forever (imapclient #449).

Library errors are mapped at this edge onto :class:`MailboxUnavailable`: the socket's
``OSError`` (refused, reset, timed out, TLS) and imaplib's ``IMAP4.error`` (which covers
``abort`` and every ``IMAPClientError``, including a failed login). The poller treats them
all alike: record the failure, back off, reconnect. Only the calls made here are mapped:
an ``OSError`` of the caller's own work (a full disk while storing attachments) is not the
mailbox's fault and must surface as itself, with its traceback.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from imapclient import IMAPClient

from config.channels import ImapAccount
from kartabl.inbound import SourceUnavailable

log = logging.getLogger(__name__)

# One FETCH of bodies brings about this much at most (a single larger mail comes alone).
FETCH_BUDGET_BYTES = 64 * 1024 * 1024

# The errors that mean "the mailbox cannot be reached or refuses us right now".
IMAP_ERRORS: tuple[type[BaseException], ...] = (OSError, imaplib.IMAP4.error)


class MailboxUnavailable(SourceUnavailable):
    """The IMAP server is unreachable, refused the login, or broke the connection."""


P = ParamSpec("P")
R = TypeVar("R")


def _mapped(fn: Callable[P, R]) -> Callable[P, R]:
    """Raise the network's and the server's errors of ``fn`` as :class:`MailboxUnavailable`."""

    @wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except IMAP_ERRORS as exc:
            raise MailboxUnavailable(_describe(exc)) from exc

    return call


@dataclass(frozen=True, slots=True)
class Fetched:
    uid: int
    raw: bytes  # the whole mail; only its header when ``oversized`` is set
    oversized: int | None = None  # the mail's size when it was over the limit
    # When the server received it (INTERNALDATE, aware UTC): the message's time, not the
    # sender's Date header. None when the server did not say.
    internal_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Selected:
    uidvalidity: int


@contextmanager
def connect(account: ImapAccount) -> Iterator[IMAPClient]:
    """A logged-in client; logged out (or at worst shut down) when the block ends.

    Errors while connecting come from the network or the server: they are raised as
    :class:`MailboxUnavailable` (chained). Inside the block, the functions of this module
    map their own errors; whatever else the block raises goes through as it is.
    """
    try:
        client = _open(account)
    except IMAP_ERRORS as exc:
        raise MailboxUnavailable(_describe(exc)) from exc
    try:
        yield client
    finally:
        try:
            client.logout()
        except Exception:  # the connection is usually dead already: closing is best effort
            try:
                client.shutdown()
            except Exception as exc:
                log.debug("could not close the IMAP connection cleanly: %s", exc)


def _tls_context(account: ImapAccount) -> ssl.SSLContext | None:
    """Verifying, with the hostname check, always: against the system's CAs, or against
    ``ca_file`` alone when one is set. An untrusted certificate fails the connection
    (``SSLCertVerificationError``, an ``OSError``); it never falls back to clear text."""
    if account.security == "plain":
        return None
    cafile = str(account.ca_file) if account.ca_file is not None else None
    return ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile)


def _open(account: ImapAccount) -> IMAPClient:
    context = _tls_context(account)
    client = IMAPClient(
        account.host,
        port=account.effective_port,
        ssl=account.security == "tls",
        ssl_context=context,
        timeout=account.timeout_s,
        use_uid=True,
    )
    try:
        if account.security == "starttls":
            client.starttls(context)
        client.login(account.username, account.password.get_secret_value())
    except BaseException:
        try:
            client.shutdown()
        except Exception as exc:
            log.debug("could not close the IMAP connection: %s", exc)
        raise
    return client


def _describe(exc: BaseException) -> str:
    # The server's or the socket's words only: never the account's credentials, which no
    # imapclient error carries (LoginError holds the server's reply, not what we sent).
    text = str(exc).strip() or "no detail"
    return f"{type(exc).__name__}: {text}"[:500]


@_mapped
def select(client: IMAPClient, folder: str) -> Selected:
    info = client.select_folder(folder)
    return Selected(int(info[b"UIDVALIDITY"]))


@_mapped
def uids_after(client: IMAPClient, last_uid: int) -> list[int]:
    """UIDs above ``last_uid``, ascending. ``UID n:*`` always matches the highest message,
    even when its UID is below n, hence the filter."""
    return sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)


@_mapped
def uids_since(client: IMAPClient, since: date) -> list[int]:
    """UIDs of the mail the server received on or after ``since`` (its internal date)."""
    return sorted(int(u) for u in client.search(["SINCE", since]))


@_mapped
def fetch(
    client: IMAPClient, uids: Sequence[int], *, max_bytes: int | None = None,
    budget_bytes: int = FETCH_BUDGET_BYTES,
) -> list[Fetched]:
    """The raw bytes of ``uids``, with the server's INTERNALDATE (asked with the sizes).
    ``BODY.PEEK[]`` leaves ``\\Seen`` alone (plain ``BODY[]`` would set it) and the reply
    comes back under ``BODY[]``. The sizes are asked first so
    that one FETCH brings at most about ``budget_bytes`` (a batch of 50 large mails must not
    sit in memory at once), and so that a mail over ``max_bytes`` is not downloaded at all:
    only its header comes (``BODY.PEEK[HEADER]``, enough to say who sent what), with
    ``oversized`` set. A UID expunged meanwhile is absent, with a warning."""
    if not uids:
        return []
    sizes: dict[int, int] = {}
    received: dict[int, datetime | None] = {}
    for uid, item in client.fetch(list(uids), ["RFC822.SIZE", "INTERNALDATE"]).items():
        sizes[int(uid)] = int(item.get(b"RFC822.SIZE", 0))
        received[int(uid)] = _utc(item.get(b"INTERNALDATE"))
    big = sorted(u for u, n in sizes.items() if max_bytes is not None and n > max_bytes)
    out: dict[int, Fetched] = {}
    if big:
        data = client.fetch(big, ["BODY.PEEK[HEADER]"])
        for uid in data:
            header = data[uid].get(b"BODY[HEADER]")
            if header is not None:
                out[int(uid)] = Fetched(int(uid), bytes(header), oversized=sizes[int(uid)],
                                        internal_date=received.get(int(uid)))
    small = sorted(set(sizes) - set(big))
    for group in _groups(small, sizes, budget_bytes):
        data = client.fetch(group, ["BODY.PEEK[]"])
        for uid in data:
            raw = data[uid].get(b"BODY[]")
            if raw is not None:
                out[int(uid)] = Fetched(int(uid), bytes(raw),
                                        internal_date=received.get(int(uid)))
    missing = sorted(set(uids) - set(out))
    if missing:
        # Expunged by another client between the search and the fetch: nothing to ingest,
        # and the pass moves past them, so say which.
        log.warning("UIDs %s vanished before they could be fetched (expunged meanwhile); "
                    "skipped", ", ".join(map(str, missing)))
    return [out[u] for u in sorted(out)]


def _utc(value: Any) -> datetime | None:
    """INTERNALDATE as imapclient gives it: a naive local time (its ``normalise_times``
    default) or an aware one."""
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC)


def _groups(uids: list[int], sizes: dict[int, int], budget: int) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        if group and total + sizes[uid] > budget:
            yield group
            group, total = [], 0
        group.append(uid)
        total += sizes[uid]
    if group:
        yield group


@_mapped
def ensure_folder(client: IMAPClient, folder: str) -> None:
    if folder and not client.folder_exists(folder):
        client.create_folder(folder)
        log.info("created IMAP folder %s for processed mail", folder)


@_mapped
def acknowledge(
    client: IMAPClient, uids: Sequence[int], *, processed_folder: str, processed_flag: str
) -> None:
    """Mark committed mail as processed: move it to ``processed_folder`` when one is set,
    else add the ``processed_flag`` keyword. Called only after the database commit."""
    if not uids:
        return
    if processed_folder:
        if client.has_capability("MOVE"):
            client.move(list(uids), processed_folder)
        else:
            # RFC 6851's fallback. uid_expunge (UIDPLUS) removes only these UIDs; a bare
            # EXPUNGE would also purge whatever another client marked \Deleted.
            client.copy(list(uids), processed_folder)
            client.add_flags(list(uids), [b"\\Deleted"], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(list(uids))
    else:
        client.add_flags(list(uids), [processed_flag], silent=True)


@_mapped
def take_new_mail_notice(client: IMAPClient) -> bool:
    """Whether the server announced a new message count (``* n EXISTS``) since the last
    call. A server may announce new mail in the reply to any command (a SEARCH, the STORE of
    our flags); imaplib keeps such untagged replies aside, imapclient does not look at them,
    and the server does not repeat them when IDLE starts. Missing one would leave that mail
    waiting for the next IDLE renewal, so the watcher asks here before idling."""
    return client._imap.untagged_responses.pop("EXISTS", None) is not None


@_mapped
def supports_idle(client: IMAPClient) -> bool:
    return bool(client.has_capability("IDLE"))


@_mapped
def idle_start(client: IMAPClient) -> None:
    client.idle()


@_mapped
def idle_check(client: IMAPClient, timeout: float) -> list[Any]:
    return list(client.idle_check(timeout=timeout))


@_mapped
def idle_done(client: IMAPClient) -> None:
    client.idle_done()
