"""The ``[meta]`` section: secrets from the environment, never in a repr; refused when it
could not authenticate a webhook."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.channels import ChannelsConfig
from config.meta import MetaConfig

IG = {"id": "17841400000000001", "access_token": "t"}


def test_secrets_come_from_the_environment_and_never_show(monkeypatch) -> None:
    monkeypatch.setenv("META_SECRET", "app-secret-SHOULD-NOT-LEAK")
    monkeypatch.setenv("META_VERIFY", "verify-token-SHOULD-NOT-LEAK")
    monkeypatch.setenv("IG_TOKEN", "ig-token-SHOULD-NOT-LEAK")
    channels = ChannelsConfig(meta={
        "app_secret_env": "META_SECRET", "verify_token_env": "META_VERIFY",
        "graph_url": "https://graph.facebook.com/v21.0/",
        "instagram": [{"id": "17841400000000001", "access_token_env": "IG_TOKEN"}]})
    assert channels.meta is not None
    assert channels.meta.app_secret.get_secret_value() == "app-secret-SHOULD-NOT-LEAK"
    assert channels.meta.graph_url == "https://graph.facebook.com/v21.0"
    assert channels.meta.instagram_account("17841400000000001") is not None
    assert "SHOULD-NOT-LEAK" not in repr(channels) + str(channels.model_dump())


@pytest.mark.parametrize(("section", "reason"), [
    ({"verify_token": "v" * 16}, "app_secret"),
    ({"app_secret": "s", "verify_token": "short"}, "verify_token"),
    ({"app_secret": "s", "verify_token": "v" * 16, "instagram": [IG, IG]}, "unique"),
    ({"app_secret": "s", "verify_token": "v" * 16,
      "instagram": [{"id": "17841400000000001"}]}, "access_token"),
    ({"app_secret": "s", "verify_token": "v" * 16, "whatsapp": [
        {"phone_number_id": "not-digits", "access_token": "t"}]}, "phone_number_id"),
    ({"app_secret_env": "NOT_SET_ANYWHERE_123", "verify_token": "v" * 16},
     "NOT_SET_ANYWHERE_123"),
])
def test_a_section_that_cannot_work_is_refused_at_load(section, reason) -> None:
    with pytest.raises(ValidationError, match=reason):
        MetaConfig(**section)
