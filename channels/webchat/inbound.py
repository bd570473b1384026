"""A visitor's message, stored as every channel's is (:mod:`kartabl.ingest`), with its event.

The external id is ``<widget>:<visitor key>:<client id>``: the client id is made by the
widget once per message and sent again with every retry, so a POST retried after a lost
answer (or sent twice by a flaky network) is one message and one event; another visitor's
same client id is another message. The message and its event are committed together, and
routing is enqueued by that commit, as for every channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.webchat import log
from channels.webchat.identity import Contact
from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Channel, Team, WebchatVisitor, Widget
from router.identity import VERIFIED

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(frozen=True, slots=True)
class Posted:
    seq: int
    created: bool
    message_id: int


def external_id(widget: Widget, visitor: WebchatVisitor, client_id: str) -> str:
    return f"{widget.public_id}:{visitor.key}:{client_id}"


def to_message(session: Session, widget: Widget, visitor: WebchatVisitor, client_id: str,
               text: str, name: str = "") -> InboundMessage:
    meta: dict[str, Any] = {"widget": widget.public_id, "client_id": client_id,
                            "locale": visitor.locale}
    if widget.team_id is not None:  # the widget's team, when no routing rule chooses one
        team = session.scalar(select(Team.name).where(Team.id == widget.team_id))
        if team:
            meta["default_team"] = team
    if visitor.identity_kind and visitor.identity_address:
        meta[VERIFIED] = {"kind": visitor.identity_kind, "address": visitor.identity_address}
    if visitor.contact_kind and visitor.contact_address:  # unverified: a hint, never a link
        meta["contact"] = {"kind": visitor.contact_kind, "address": visitor.contact_address,
                           "verified": False}
    return InboundMessage(
        channel=Channel.WEBCHAT, external_id=external_id(widget, visitor, client_id),
        sender=visitor.key, sender_name=name, text=text, recipient=widget.public_id,
        meta=meta)


def store_message(session: Session, widget: Widget, visitor: WebchatVisitor, client_id: str,
                  text: str, name: str = "") -> Posted:
    """Commit the message and its event (or find them: a retry). Raises ValueError for a
    client id that is not one."""
    if not CLIENT_ID.fullmatch(client_id):
        raise ValueError("client_id: 8 to 64 letters, digits, '-' or '_'")
    msg = to_message(session, widget, visitor, client_id, text, name)
    stored = ingest.add_many(session, [msg])[0]
    # A retry of a message stored before finds its event by key, whatever text it carries
    # now: the first text is the message.
    appended = log.append(session, visitor.id, log.MESSAGE, f"m:{client_id}",
                          text=text, message_id=stored.message_id)
    session.commit()
    return Posted(appended.seq, stored.created, stored.message_id)


def set_contact(visitor: WebchatVisitor, contact: Contact | None) -> None:
    if contact is not None:
        visitor.contact_kind, visitor.contact_address = contact.kind, contact.address
