"""The pages' shared helpers: dates, ages and durations in each language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.pages._ui import age, duration, form_text, optional_id, when
from kartabl.errors import InputError


def test_when_is_jalali_in_tehran_for_persian_and_iso_for_english() -> None:
    moment = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # 00:30 the next day in Tehran
    assert when("fa", moment) == "۱۴۰۵/۰۹/۱۱ ۰۰:۳۰"
    assert when("en", moment) == "2026-12-02 00:30"
    assert when("en", None) == ""


def test_age_and_duration_in_both_languages() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert age("en", now - timedelta(seconds=20), now) == "just now"
    assert age("en", now - timedelta(minutes=5), now) == "5 min"
    assert age("fa", now - timedelta(hours=3, minutes=5), now) == "۳ ساعت"
    assert age("en", now - timedelta(days=2, hours=1), now) == "2 d"
    assert duration("en", None) == "—"
    assert duration("en", 45.4) == "45 min"
    assert duration("en", 200) == "3 h 20 min"
    assert duration("en", 240) == "4 h"
    assert duration("fa", 3 * 1440 + 120) == "۳ روز و ۲ ساعت"
    assert duration("en", 3 * 1440) == "3 d"


def test_form_helpers() -> None:
    assert form_text("a\r\nb\rc") == "a\nb\nc"
    assert optional_id("", "team") is None and optional_id(" 12 ", "team") == 12
    for bad in ("0", "-1", "x", "۱۲", "1" * 19):
        with pytest.raises(InputError):
            optional_id(bad, "team")
