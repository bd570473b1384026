"""The widget's byte budget (issue 16): the loader at most 5 KB gzipped, the chat at most
40 KB, as served (the loader with a widget's settings in it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[3] / "channels" / "webchat" / "static"
BUDGET = {"loader.js": 5 * 1024, "chat.js": 40 * 1024}


def served(name: str) -> bytes:
    text = (STATIC / name).read_text(encoding="utf-8")
    if name == "loader.js":  # as routes.loader serves it: long Persian texts in the settings
        settings = {"id": "w" * 12, "color": "#1f6feb", "text_color": "#ffffff",
                    "greeting": {"fa": "سلام! " * 40, "en": "Hello! " * 40},
                    "offline": {"fa": "بعداً پاسخ می‌دهیم " * 20, "en": "We answer later " * 20},
                    "ask_phone": True, "ask_email": True}
        text = text.replace("__KARTABL_WIDGET__", json.dumps(settings, ensure_ascii=False))
    return text.encode()


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_within_its_gzipped_budget(name: str) -> None:
    size = len(gzip.compress(served(name), compresslevel=9))
    assert size <= BUDGET[name], f"{name} is {size} bytes gzipped, over {BUDGET[name]}"


def test_nothing_is_loaded_from_elsewhere() -> None:
    # No CDN, no web fonts from elsewhere: only this server's own URLs are built.
    for name in BUDGET:
        text = served(name).decode().replace("http://www.w3.org/2000/svg", "")  # a name
        assert "http://" not in text and "https://" not in text and "@import" not in text
        assert "eval(" not in text and "innerHTML" not in text  # strict CSP, no HTML injection
