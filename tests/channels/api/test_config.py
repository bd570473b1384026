"""The ``[[api]]`` entries of the channels file: the example is valid once uncommented, the
secret comes from the environment and never shows, and a weak secret or two channels of
one name stop the process at start."""

from __future__ import annotations

from pathlib import Path

import pytest

import config.channels
from config.api_channel import ApiChannelConfig

EXAMPLE = Path(config.channels.__file__).with_name("channels.example.toml")
GOOD = "0123456789abcdef0123456789abcdef"


def _example_api_section() -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    section = text[text.index("# [[api]]"):].split("\n\n", 1)[0]  # up to the next section
    return "\n".join(line.removeprefix("# ") for line in section.splitlines()
                     if not line.startswith("#    "))


def test_the_example_section_loads_with_its_secret_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARTABL_SHOP_API_SECRET", GOOD)
    path = tmp_path / "channels.toml"
    path.write_text(_example_api_section(), encoding="utf-8")
    [shop] = config.channels.load(path).api
    assert (shop.name, shop.team, shop.secret.get_secret_value()) == ("shop", "support", GOOD)
    assert shop.callback_url == "https://shop.example.ir/kartabl/replies"
    assert GOOD not in repr(shop) and GOOD not in str(shop.model_dump())


@pytest.mark.parametrize(("toml", "reason"), [
    ('[[api]]\nname = "shop"\nsecret = "short-but-secret"', "at least 32 characters"),
    ('[[api]]\nname = "shop"', "at least 32 characters"),
    ('[[api]]\nname = "shop"\nsecret_env = "KARTABL_NOT_SET_ANYWHERE"',
     "KARTABL_NOT_SET_ANYWHERE"),
    (f'[[api]]\nname = "shop"\nsecret = "{GOOD}"\n[[api]]\nname = "shop"\nsecret = "{GOOD}"',
     "api channel names must be unique: shop"),
    (f'[[api]]\nname = "Shop!"\nsecret = "{GOOD}"', "name"),
    (f'[[api]]\nname = "shop"\nsecret = "{GOOD}"\ncallback_url = "ftp://x"', "callback_url"),
    (f'[[api]]\nname = "shop"\nsecret = "{GOOD}"\ncolor = "red"', "color"),
])
def test_a_bad_entry_stops_with_the_reason(tmp_path: Path, toml: str, reason: str) -> None:
    path = tmp_path / "channels.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        config.channels.load(path)
    assert reason in str(stop.value)
    assert GOOD not in str(stop.value) and "short-but-secret" not in str(stop.value)


def test_the_worst_case_of_a_callback() -> None:
    c = ApiChannelConfig(name="x", secret=GOOD, connect_timeout_s=2, timeout_s=10)
    assert c.worst_case_s == 24
