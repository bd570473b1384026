"""The presence port: who has a conversation open, and who is drafting a reply in it
("collision", issue 14).

A conversation page beats every ``KARTABL_PRESENCE_HEARTBEAT_S`` seconds while it is
visible, saying *viewing* or *drafting*, and says *left* when it is closed
(:mod:`console.pages.presence`). An entry not renewed within ``KARTABL_PRESENCE_EXPIRY_S``
is gone (a closed laptop sends nothing). Presence is fleeting by nature: it is not an event
row (the audit log gets no row per heartbeat) and survives no restart.

A beat that *changes* something (a new entry, another state, a leave) is published with the
conversation's id; the web processes push it to the pages that have that conversation open
(:mod:`console.live`), which fetch who is there. Beats that change nothing publish nothing,
so a room of readers costs no fan-out; an expired entry is noticed by the others at their
own next beat.

Where entries live is not the core's business: ``workers/`` installs the broker's Redis in
the fleet (:mod:`workers.presence`: keys with a TTL, pub/sub), and without it (the embedded
mode, a CLI command, a unit test) they stay in this process (:class:`LocalPresence`), which
is exactly the embedded mode's need: one process serves every page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


class State(StrEnum):
    VIEWING = "viewing"
    DRAFTING = "drafting"


@dataclass(frozen=True, slots=True)
class Entry:
    """One person on one conversation, as of their last beat (``seen_at``: seconds since
    1970). ``drafting_since`` is when they began drafting without a pause (None: viewing):
    what others saved meanwhile is news to them."""

    person_id: int
    state: State
    seen_at: float
    drafting_since: float | None = None

    def encode(self) -> str:
        since = "" if self.drafting_since is None else repr(self.drafting_since)
        return f"{self.state.value}|{self.seen_at!r}|{since}"

    @classmethod
    def decode(cls, person_id: int, text: str) -> Entry | None:
        try:
            state, seen, since = text.split("|")
            return cls(person_id, State(state), float(seen), float(since) if since else None)
        except ValueError:
            return None


def beaten(old: Entry | None, person_id: int, state: State, now: float,
           expiry_s: float) -> Entry:
    """The entry after a beat: drafting keeps its start while it goes on unbroken."""
    if state is State.DRAFTING:
        going_on = (old is not None and old.drafting_since is not None
                    and now - old.seen_at <= expiry_s)
        since = old.drafting_since if going_on and old is not None else now
        return Entry(person_id, state, now, since)
    return Entry(person_id, state, now)


def changed(old: Entry | None, new: Entry, now: float, expiry_s: float) -> bool:
    """Would the others see a difference (someone new, or in another state)?"""
    return old is None or now - old.seen_at > expiry_s or old.state is not new.state


OnChange = Callable[[int, int], None]  # (conversation id, person id who changed)
Stop = Callable[[], None]


class Presence(Protocol):
    def beat(self, conversation_id: int, person_id: int, state: State, *, now: float,
             expiry_s: float) -> bool:
        """Record a beat; True when the others would see a change (then publish it)."""

    def leave(self, conversation_id: int, person_id: int) -> bool:
        """Forget the entry; True when there was one."""

    def present(self, conversation_id: int, *, now: float, expiry_s: float) -> list[Entry]:
        """The entries seen within ``expiry_s``, oldest beat first; older ones are dropped."""

    def publish(self, conversation_id: int, person_id: int) -> None:
        """Tell every listener (in every process) that this conversation's presence changed."""

    def listen(self, on_change: OnChange) -> Stop:
        """Call ``on_change`` (from any thread) on every published change until stopped."""


class LocalPresence:
    """Entries in this process's memory; changes told to this process's listeners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[int, dict[int, Entry]] = {}
        self._listeners: list[OnChange] = []

    def beat(self, conversation_id: int, person_id: int, state: State, *, now: float,
             expiry_s: float) -> bool:
        with self._lock:
            room = self._rooms.setdefault(conversation_id, {})
            old = room.get(person_id)
            new = beaten(old, person_id, state, now, expiry_s)
            room[person_id] = new
            return changed(old, new, now, expiry_s)

    def leave(self, conversation_id: int, person_id: int) -> bool:
        with self._lock:
            room = self._rooms.get(conversation_id, {})
            gone = room.pop(person_id, None) is not None
            if not room:
                self._rooms.pop(conversation_id, None)
            return gone

    def present(self, conversation_id: int, *, now: float, expiry_s: float) -> list[Entry]:
        with self._lock:
            room = self._rooms.get(conversation_id, {})
            for pid in [p for p, e in room.items() if now - e.seen_at > expiry_s]:
                del room[pid]
            if not room:
                self._rooms.pop(conversation_id, None)
            return sorted(room.values(), key=lambda e: e.seen_at)

    def publish(self, conversation_id: int, person_id: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(conversation_id, person_id)
            except Exception:  # one broken listener must not keep the others uninformed
                log.exception("a presence listener failed")

    def listen(self, on_change: OnChange) -> Stop:
        with self._lock:
            self._listeners.append(on_change)

        def stop() -> None:
            with self._lock:
                if on_change in self._listeners:
                    self._listeners.remove(on_change)

        return stop


_store: Presence = LocalPresence()


def set_store(store: Presence | None) -> None:
    """Install ``store`` (``None``: back to this process's memory)."""
    global _store
    _store = store if store is not None else LocalPresence()


def store() -> Presence:
    return _store


def publish(conversation_id: int, person_id: int) -> None:
    try:
        _store.publish(conversation_id, person_id)
    except Exception:  # the others see the change at their own next beat
        log.warning("could not publish a presence change", exc_info=True)
