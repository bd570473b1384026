"""After a merge, what would have gone to the merged conversation goes to the one it joined
(router.threading.merged_target), routed one by one or in a batch."""

from datetime import timedelta

from sqlalchemy import select

from kartabl.models import Conversation, ConversationStatus, Person, Reply, ReplyState, Role, utcnow
from kartabl.workflow import merge as wm
from router.batch import route_batch
from tests.router.conftest import WINDOW


def _two_conversations(session, inbound, route):
    """A (closed an hour ago) and B (open, newer) of one email customer."""
    a = route(inbound(sender="a@example.ir", subject="الف"))
    conv_a = session.get(Conversation, a.conversation_id)
    conv_a.status, conv_a.resolved_at = ConversationStatus.CLOSED, utcnow() - timedelta(hours=1)
    session.add(Conversation(customer_id=a.customer_id, channel="email", subject="ب"))
    session.commit()
    b = route(inbound(sender="a@example.ir", subject="ب"))
    assert b.how == "open" and b.conversation_id != a.conversation_id
    coordinator = Person(username="maryam", role=Role.COORDINATOR)
    session.add(coordinator)
    session.commit()
    wm.merge(session, coordinator, b.conversation_id, a.conversation_id)
    session.commit()
    return a.conversation_id, b.conversation_id


def test_a_message_for_the_merged_conversation_goes_to_the_one_it_joined(
        session, inbound, route):
    a, b = _two_conversations(session, inbound, route)
    # When the customer writes again (B, closed by the merge, is their latest conversation)
    again = route(inbound(sender="a@example.ir", text="باز هم من"))
    # Then A takes it (reopened, as within the window), and B stays merged and closed
    assert (again.conversation_id, again.how) == (a, "reopened")
    conv_b = session.get(Conversation, b)
    assert (conv_b.status, conv_b.merged_into_id) == (ConversationStatus.CLOSED, a)


def test_a_batch_follows_the_merge_too(session, inbound, route, routing):
    a, _ = _two_conversations(session, inbound, route)
    out = route_batch(session, [inbound(sender="a@example.ir", text="دوباره")],
                      routing=routing, reopen_window=WINDOW)
    session.commit()
    assert [o.conversation_id for o in out] == [a]
    assert session.scalars(select(Conversation.id).where(
        Conversation.merged_into_id.is_(None))).all() == [a]


def test_a_reference_to_a_reply_of_the_merged_conversation_goes_to_the_one_it_joined(
        session, inbound, route):
    # Given A and B of one customer, and our sent reply in B
    a = route(inbound(sender="a@example.ir", subject="الف"))
    session.add(Conversation(customer_id=a.customer_id, channel="email", subject="ب"))
    session.commit()
    b = route(inbound(sender="a@example.ir", subject="ب"))
    author = Person(username="ali", role=Role.AGENT)
    session.add(author)
    session.flush()
    session.add(Reply(conversation_id=b.conversation_id, author_id=author.id, body="پاسخ",
                      state=ReplyState.SENT, channel="email", idempotency_key="<rb@kartabl.test>"))
    coordinator = Person(username="maryam", role=Role.COORDINATOR)
    session.add(coordinator)
    session.commit()
    # When B is merged into A and the customer answers that reply
    wm.merge(session, coordinator, b.conversation_id, a.conversation_id)
    session.commit()
    answer = route(inbound(sender="a@example.ir", in_reply_to="rb@kartabl.test"))
    # Then the answer is threaded into A by its reference
    assert (answer.conversation_id, answer.how) == (a.conversation_id, "reference")
