"""The reply and conversation state machines: one table each, used by the workflow
transitions and by the outbox (:mod:`responders.dispatch`), so an illegal step always raises
:class:`~kartabl.errors.IllegalTransition` naming the step and the state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sqlalchemy.orm import object_session

from kartabl import search
from kartabl.errors import IllegalTransition
from kartabl.models import Conversation, ConversationStatus, Reply, ReplyState

RS = ReplyState
OPEN, CLOSED = ConversationStatus.OPEN, ConversationStatus.CLOSED

# step -> (states it may start from, states it may lead to). The outbox steps (claim ...
# deliver) are taken by responders.dispatch; keeping them here makes this the whole machine.
REPLY_TRANSITIONS: Final[Mapping[str, tuple[frozenset[ReplyState], frozenset[ReplyState]]]] = {
    "edit": (frozenset({RS.DRAFT, RS.REJECTED}), frozenset({RS.DRAFT})),
    "submit": (frozenset({RS.DRAFT}), frozenset({RS.PENDING_APPROVAL, RS.APPROVED})),
    "approve": (frozenset({RS.PENDING_APPROVAL}), frozenset({RS.APPROVED})),
    "reject": (frozenset({RS.PENDING_APPROVAL}), frozenset({RS.REJECTED})),
    "claim": (frozenset({RS.APPROVED}), frozenset({RS.SENDING})),
    # back to approved: the sender surely did not deliver (retryable error, lookup found none)
    "release": (frozenset({RS.SENDING}), frozenset({RS.APPROVED})),
    "record_sent": (frozenset({RS.SENDING}), frozenset({RS.SENT})),
    "fail": (frozenset({RS.SENDING, RS.SENT}), frozenset({RS.FAILED})),
    "deliver": (frozenset({RS.SENT}), frozenset({RS.DELIVERED})),
    # a bounce of the reply came back (router.bounces): the provider accepted it, the
    # recipient's server did not, possibly after reporting it delivered to the next hop
    "bounce": (frozenset({RS.SENT, RS.DELIVERED}), frozenset({RS.FAILED})),
}

# step -> the conversation states it is allowed in
CONVERSATION_STEPS: Final[Mapping[str, frozenset[ConversationStatus]]] = {
    "assign": frozenset({OPEN}),
    "refer": frozenset({OPEN}),
    "draft": frozenset({OPEN}),
    "submit": frozenset({OPEN}),
    "close": frozenset({OPEN}),
    "reopen": frozenset({CLOSED}),
    "note": frozenset({OPEN, CLOSED}),
}





def check_reply_transition(step: str, reply: Reply) -> None:
    """Raise :class:`IllegalTransition` unless ``step`` may start from the reply's state."""
    sources, _ = REPLY_TRANSITIONS[step]
    if reply.state not in sources:
        raise IllegalTransition(step, ReplyState(reply.state).value, f"reply {reply.id}",
                                params={"item": "reply", "id": reply.id})


def move_reply(reply: Reply, step: str, to: ReplyState) -> ReplyState:
    """Take ``step`` on ``reply`` to state ``to``; returns the state it left."""
    check_reply_transition(step, reply)
    if to not in REPLY_TRANSITIONS[step][1]:
        raise ValueError(f"step {step!r} cannot lead to {to.value!r}")  # a bug, not input
    before = ReplyState(reply.state)
    reply.state = to
    session = object_session(reply)
    if before in search.SENT_STATES and to not in search.SENT_STATES and session is not None:
        search.forget(session, search.REPLY, reply.id)  # failed after all: not a sent reply
    return before


def check_conversation(step: str, conv: Conversation) -> None:
    if conv.status not in CONVERSATION_STEPS[step]:
        detail = f"conversation {conv.id}"
        raise IllegalTransition(step, ConversationStatus(conv.status).value, detail,
                                params={"item": "conversation", "id": conv.id})
