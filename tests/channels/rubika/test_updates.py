"""A Rubika update as a message: ids kept as the strings they are, the chat kept for the
reply, a shared contact a hint only, and every kind we do not handle ignored."""

from __future__ import annotations

from typing import Any

import pytest

from channels.rubika.standin import text_update
from channels.rubika.updates import to_message
from config.rubika import RubikaBot
from kartabl.errors import InputError
from kartabl.models import Channel

BOT = RubikaBot(name="shop", token="T", team="support")


def test_a_private_text_message() -> None:
    update = text_update("b0chatA", "u0userA", "سلام، سفارشم کجاست؟", message_id="918273",
                         time="1764806400", reply_to_message_id="918000")
    msg = to_message(update, BOT)
    assert msg is not None
    assert (msg.channel, msg.external_id, msg.sender) == (Channel.RUBIKA, "shop:b0chatA:918273",
                                                          "u0userA")
    assert msg.text == "سلام، سفارشم کجاست؟" and msg.recipient == "shop"
    assert msg.meta["chat_id"] == "b0chatA" and msg.meta["default_team"] == "support"
    assert msg.meta["sent_at"] == "2025-12-04T00:00:00+00:00"
    assert msg.in_reply_to == "shop:b0chatA:918000"  # the form of our replies' provider ids


def test_a_numeric_message_id_is_the_same_row_as_its_string() -> None:
    as_int = to_message(text_update("b0c", "u0u", "x", message_id=None) | {
        "new_message": {"message_id": 204215121115944300, "sender_id": "u0u", "text": "x"}}, BOT)
    as_str = to_message(text_update("b0c", "u0u", "x", message_id="204215121115944300"), BOT)
    assert as_int is not None and as_str is not None
    assert as_int.external_id == as_str.external_id


def test_a_shared_contact_is_a_hint_whose_owner_rubika_does_not_name() -> None:
    update = text_update("b0c", "u0u", "", contact_message={
        "phone_number": "۰۹۱۲ ۱۲۳ ۴۵۶۷", "first_name": "Sara", "last_name": ""})
    msg = to_message(update, BOT)
    assert msg is not None
    assert msg.meta["contact"] == {"phone": "+989121234567", "own": None}
    assert msg.text == "[contact: +989121234567]"
    junk = to_message(text_update("b0c", "u0u", "", contact_message={"phone_number": "x"}),
                      BOT)
    assert junk is not None and "contact" not in junk.meta and junk.text == "[contact]"


def test_a_file_is_an_attachment_with_its_id_kept() -> None:
    msg = to_message(text_update("b0c", "u0u", "", file={
        "file_id": "55501", "file_name": "../../etc/فاکتور.pdf", "size": "2048"}), BOT)
    assert msg is not None
    (att,) = msg.attachments
    assert (att.filename, att.content_type, att.size, att.storage_key) == (
        "فاکتور.pdf", "application/pdf", 2048, None)  # bytes come by .files, never a path
    assert msg.meta["files"] == [{"file_id": "55501", "size": 2048}]


@pytest.mark.parametrize("update", [
    text_update("b0c", "u0u", "edited", kind="UpdatedMessage"),
    {"type": "RemovedMessage", "chat_id": "b0c", "removed_message_id": "1"},
    {"type": "StartedBot", "chat_id": "b0c"},
    {"type": "StoppedBot", "chat_id": "b0c"},
    text_update("g0group", "u0u", "in a group"),
    text_update("c0channel", "u0u", "in a channel"),
    text_update("b0c", "b0otherbot", "from a bot", sender_type="Bot"),
])
def test_ignored_kinds(update: dict[str, Any]) -> None:
    assert to_message(update, BOT) is None


@pytest.mark.parametrize("update", [
    [], "x", {"chat_id": "b0c"}, {"type": "NewMessage", "chat_id": 5.5},
    {"type": "NewMessage", "chat_id": "b0c"},
    {"type": "NewMessage", "chat_id": "b0c", "new_message": {"sender_id": "u0u"}},
    {"type": "NewMessage", "chat_id": "b0c", "new_message": {"message_id": "1"}},
    {"type": "NewMessage", "chat_id": "b0 c", "new_message": {"message_id": "1",
                                                             "sender_id": "u0u"}},
])
def test_malformed_updates_are_input_errors(update: object) -> None:
    with pytest.raises(InputError):
        to_message(update, BOT)


def test_a_time_out_of_range_is_refused_by_a_webhook_and_dropped_by_a_poller() -> None:
    update = text_update("b0c", "u0u", "hi", time="99999999999")
    with pytest.raises(InputError):
        to_message(update, BOT)
    msg = to_message(update, BOT, strict_date=False)
    assert msg is not None and "sent_at" not in msg.meta
