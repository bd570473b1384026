"""One update → one InboundMessage, or None for what we ignore."""

from __future__ import annotations

import pytest

from channels.telegram.standin_wire import text_update
from channels.telegram.updates import to_message
from config.telegram import BotConfig
from kartabl.errors import InputError
from kartabl.models import Channel

BOT = BotConfig(name="shop", token="1:x", mode="polling", team="support")
BALE = BotConfig(name="bale-shop", kind="bale", token="2:x", mode="polling")


def test_a_private_text_message() -> None:
    update = {"update_id": 77, **text_update(42, "سلام، سفارشم کجاست؟", first_name="سارا",
                                             last_name="رضایی", username="sara")}
    msg = to_message(update, BOT)
    assert msg is not None
    assert (msg.channel, msg.external_id, msg.sender) == (Channel.TELEGRAM, "shop:77", "42")
    assert (msg.sender_name, msg.text, msg.recipient) == ("سارا رضایی", "سلام، سفارشم کجاست؟",
                                                          "shop")
    assert msg.meta["chat_id"] == 42 and msg.meta["default_team"] == "support"
    assert msg.meta["bot"] == "shop" and msg.meta["update_id"] == 77
    bale = to_message(update, BALE)
    assert bale is not None and (bale.channel, bale.external_id) == (Channel.BALE,
                                                                     "bale-shop:77")


def test_caption_photo_document_voice_as_metadata() -> None:
    photo = [{"file_id": "small", "file_unique_id": "s", "file_size": 10},
             {"file_id": "big", "file_unique_id": "b", "file_size": 900}]
    doc = {"file_id": "doc1", "file_name": "../../etc/\u202efdp.exe",
           "mime_type": "application/pdf", "file_size": 1234}
    voice = {"file_id": "v1", "mime_type": "audio/ogg", "file_size": 55}
    update = {"update_id": 1, **text_update(42, "", caption="رسید", photo=photo, document=doc,
                                            voice=voice, reply_to_message={"message_id": 1001})}
    msg = to_message(update, BOT)
    assert msg is not None and msg.text == "رسید"
    assert [(a.filename, a.content_type, a.size) for a in msg.attachments] == [
        ("photo.jpg", "image/jpeg", 900), ("fdp.exe", "application/pdf", 1234),
        ("voice.oga", "audio/ogg", 55)]
    assert [f["file_id"] for f in msg.meta["files"]] == ["big", "doc1", "v1"]
    assert msg.in_reply_to == "shop:42:1001"


@pytest.mark.parametrize("update", [
    {"update_id": 2, **text_update(42, "hi", chat_type="group")},
    {"update_id": 3, **text_update(42, "hi", chat_type="supergroup")},
    {"update_id": 4, "edited_message": text_update(42, "edited")["message"]},
    {"update_id": 5, "callback_query": {"id": "1", "data": "x"}},
    {"update_id": 6, **text_update(42, "from a bot", from_={})},
    {"update_id": 7},
])
def test_ignored_kinds(update: dict) -> None:
    if "from_" in update.get("message", {}):
        update["message"]["from"]["is_bot"] = True
    assert to_message(update, BOT) is None


@pytest.mark.parametrize("update", [
    [], "x", {"update_id": "1"}, {"update_id": -1}, {"update_id": True},
    {"update_id": 1, "message": "x"}, {"update_id": 1, "message": {"chat": {}}},
    {"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}}},
])
def test_malformed_updates_are_input_errors(update: object) -> None:
    with pytest.raises(InputError):
        to_message(update, BOT)


def test_a_shared_contact_is_kept_as_a_hint_only() -> None:
    own = {"phone_number": "09121234567", "first_name": "Sara", "user_id": 42}
    msg = to_message({"update_id": 8, **text_update(42, "", contact=own)}, BOT)
    assert msg is not None and msg.meta["contact"] == {"phone": "+989121234567", "own": True}
    assert msg.text == "[contact: +989121234567]" and msg.sender == "42"
    bogus = {"phone_number": "not a number", "first_name": "X"}
    msg = to_message({"update_id": 9, **text_update(42, "", contact=bogus)}, BOT)
    assert msg is not None and "contact" not in msg.meta and msg.text == "[contact]"
