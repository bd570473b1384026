"""The [email] section of the channels file: mailbox lookup and account validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.channels import ChannelsConfig


def _config(**imap: str) -> ChannelsConfig:
    return ChannelsConfig.model_validate({"email": {"mailboxes": [
        {"name": "support", "address": "support@ex.com", "aliases": ["help@ex.com"],
         "imap": {"host": "imap.ex.com", **imap}},
        {"name": "sales", "address": "sales@ex.com"},
    ]}})


def test_for_address_finds_the_mailbox_of_a_subaddress():
    email = _config().email
    for address in ("support@ex.com", " Support+x@Ex.com ", "support+a+b@ex.com",
                    "help+token@ex.com"):
        assert (box := email.for_address(address)) is not None and box.name == "support"
    assert email.for_address("sales+q@ex.com").name == "sales"  # type: ignore[union-attr]
    assert email.for_address("supportx@ex.com") is None
    assert email.for_address("support+x@other.com") is None


@pytest.mark.parametrize(("folder", "processed"), [
    ("INBOX", "INBOX"), ("INBOX", "inbox"), ("Support", "Support"), ("Support", "Support/"),
])
def test_processed_folder_must_differ_from_the_folder_read(folder, processed):
    with pytest.raises(ValidationError, match="processed_folder must differ from folder"):
        _config(folder=folder, processed_folder=processed)


def test_other_processed_folders_are_accepted():
    for processed in ("", "Processed", "INBOX/Done"):
        box = _config(processed_folder=processed).email.mailbox("support")
        assert box is not None and box.imap is not None
        assert box.imap.processed_folder == processed
