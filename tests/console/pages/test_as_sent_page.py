"""The conversation page shows, under a sent reply, what the customer received."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Person
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from tests.console.pages.conftest import World, sign_in
from tests.console.test_timeline import sandbox  # noqa: F401  (a fixture)


def test_a_sent_sms_shows_its_parts(client: TestClient, world: World,
                                    db: sessionmaker[Session], sandbox: None  # noqa: F811
                                    ) -> None:
    # Given ali's long Persian SMS reply, approved and sent
    with db() as s:
        ali, maryam = s.get(Person, world.ali), s.get(Person, world.coord)
        reply = workflow.draft(s, ali, world.conv_support, "پاسخ " * 40, check=REPLY_CHECK)
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        workflow.approve(s, maryam, reply.id, check=REPLY_CHECK)
        s.commit()
        rid = reply.id
    assert dispatch_reply(db, rid) == "sent"
    # When its conversation is opened (in English)
    sign_in(client, "maryam")
    page = client.get(f"/conversations/{world.conv_support}").text
    # Then the three parts the phone joins are listed under the reply
    assert f'id="reply-sent-{rid}" data-pieces="3"' in page
    assert "What the customer received: 3 SMS part(s)" in page
    assert page.count('class="sent-piece"') == 3
