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
WAITING, SNOOZED = ConversationStatus.WAITING, ConversationStatus.SNOOZED
# Not closed: waiting on the customer, or snoozed. Work on the conversation goes on (notes,
# drafts, approval, hand-over, close); only the working queues leave it out.
ON_HOLD: Final = frozenset({WAITING, SNOOZED})
ACTIVE: Final = frozenset({OPEN, WAITING, SNOOZED})

# step -> (states it may start from, states it may lead to). The outbox steps (claim ...
# deliver) are taken by responders.dispatch; keeping them here makes this the whole machine.
REPLY_TRANSITIONS: Final[Mapping[str, tuple[frozenset[ReplyState], frozenset[ReplyState]]]] = {
    "edit": (frozenset({RS.DRAFT, RS.REJECTED}), frozenset({RS.DRAFT})),
    "submit": (frozenset({RS.DRAFT}), frozenset({RS.PENDING_APPROVAL, RS.APPROVED})),
    "approve": (frozenset({RS.PENDING_APPROVAL}), frozenset({RS.APPROVED})),
    "reject": (frozenset({RS.PENDING_APPROVAL}), frozenset({RS.REJECTED})),
    "claim": (frozenset({RS.APPROVED}), frozenset({RS.SENDING})),
    # a scheduled reply not yet claimed back to its author's drafts (kartabl.workflow.schedule)
    "withdraw": (frozenset({RS.APPROVED}), frozenset({RS.DRAFT})),
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
# Waiting and snoozed conversations allow every step an open one does (a hand-over, a note,
# a follow-up drafted and approved, closing it); the steps of kartabl.workflow.waiting move
# between the three, and "resume" brings a held one back to open.
CONVERSATION_STEPS: Final[Mapping[str, frozenset[ConversationStatus]]] = {
    "assign": ACTIVE,
    "refer": ACTIVE,
    "draft": ACTIVE,
    "submit": ACTIVE,
    "close": ACTIVE,
    "reopen": frozenset({CLOSED}),
    "note": frozenset({OPEN, WAITING, SNOOZED, CLOSED}),
    "wait": frozenset({OPEN, SNOOZED}),
    "snooze": frozenset({OPEN, WAITING, SNOOZED}),  # snoozed again: a new time
    "resume": ON_HOLD,
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
    # -- merge --
    # A merged conversation is a closed pointer to the one it joined: no step runs on it.
    if conv.merged_into_id is not None:
        raise IllegalTransition(step, "merged", f"conversation {conv.id} was merged into "
                                f"{conv.merged_into_id}", code="conv_merge.merged",
                                params={"id": conv.id, "into": conv.merged_into_id})
    if conv.status not in CONVERSATION_STEPS[step]:
        detail = f"conversation {conv.id}"
        raise IllegalTransition(step, ConversationStatus(conv.status).value, detail,
                                params={"item": "conversation", "id": conv.id})
