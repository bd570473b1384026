import pytest

from router.identity import (
    identity_for,
    normalize_email,
    normalize_messenger_id,
    normalize_phone,
)
from router.text import contains_keyword, normalize_text


@pytest.mark.parametrize("raw", [
    "09121234567",
    "9121234567",
    "+989121234567",
    "00989121234567",
    "0098 912 123 4567",
    "+98 (912) 123-4567",
    "0912-123-4567",
    "۰۹۱۲۱۲۳۴۵۶۷",          # Persian digits
    "٠٩١٢١٢٣٤٥٦٧",          # Arabic-Indic digits
    "۰۹۱۲ ۱۲۳ ٤٥٦٧",        # a mix, as people really type
    "+۹۸۹۱۲۱۲۳۴۵۶۷",
    " 0912 123 4567 ",
])
def test_phone_iranian_forms_give_e164(raw):
    assert normalize_phone(raw) == "+989121234567"


def test_phone_landline_and_foreign():
    assert normalize_phone("021-8877 6655") == "+982188776655"
    assert normalize_phone("+1 650 253 0000") == "+16502530000"
    assert normalize_phone("001 650 253 0000") == "+16502530000"


@pytest.mark.parametrize("raw", [
    "", "hello", "0912abc4567", "1-800-FLOWERS", "12", "+98", "0912123456789012345",
    "tel:+989121234567", "09121234567; DROP", "ali@example.ir", "+98 912 123 4567 ext 5",
    "۰" * 60,
])
def test_phone_rejects_non_numbers_with_a_clear_message(raw):
    with pytest.raises(ValueError, match="not a phone number") as info:
        normalize_phone(raw)
    # the message quotes the input (truncated)
    assert raw[:5] in str(info.value)


def test_phone_error_truncates_long_input():
    with pytest.raises(ValueError) as info:
        normalize_phone("x" * 39)
    assert "xxxx" in str(info.value)
    with pytest.raises(ValueError) as info:
        normalize_phone("y" * 1000)
    assert len(str(info.value)) < 120


@pytest.mark.parametrize(("raw", "want"), [
    ("Ali@Example.IR", "ali@example.ir"),
    ("  ali@example.ir ", "ali@example.ir"),
    ("ali@مثال.ایران", "ali@xn--mgbh0fb.xn--mgba3a4f16a"),
    ("ALI@BÜCHER.de", "ali@xn--bcher-kva.de"),
    ("Ali Rezaei <Ali@Example.ir>", "ali@example.ir"),
    ("user+tag@example.com", "user+tag@example.com"),
    ("علی@example.ir", "علی@example.ir"),
])
def test_email_normalised(raw, want):
    assert normalize_email(raw) == want


@pytest.mark.parametrize("raw", [
    "", "ali", "ali@", "@example.ir", "a@b@example.ir", "ali@localhost",
    '"boss@corp.ir" <x@evil.ir>',                 # display-name trick
    "alice@example.org)<bob@example.ir>",         # CVE-2023-27043 style
    "a <b@x.ir> <c@y.ir>", "ali@exa mple.ir", "a..b@example.ir", ".a@example.ir",
    "ali@example.ir\r\nBcc: x@y.ir", "ali@-bad-.ir", "ali@xn--zz.ir", '"a b"@example.ir',
    "a,b@example.ir", "x" * 400 + "@example.ir",
])
def test_email_rejects_ambiguous_or_invalid(raw):
    with pytest.raises(ValueError, match="not an email address"):
        normalize_email(raw)


def test_messenger_ids():
    assert normalize_messenger_id("telegram", " 00042 ") == "42"
    assert normalize_messenger_id("bale", "۱۲۳") == "123"
    for bad in ["-100123", "0", "abc", "", "1" * 21, "12.5"]:
        with pytest.raises(ValueError):
            normalize_messenger_id("telegram", bad)
    with pytest.raises(ValueError, match="unknown messenger"):
        normalize_messenger_id("whatsapp", "42")


def test_identity_for_namespaces_by_channel():
    assert identity_for("email", "A@B.ir") == ("email", "a@b.ir")
    assert identity_for("sms", "۰۹۱۲۱۲۳۴۵۶۷") == ("phone", "+989121234567")
    assert identity_for("telegram", "42") == ("telegram", "42")
    assert identity_for("bale", "42") == ("bale", "42")
    with pytest.raises(ValueError):
        identity_for("sms", "not a number")


def test_normalize_text_folds_letter_forms_digits_case_and_space():
    assert normalize_text("  فاكتور\tشماره ۱۲ و ٣٤  INVOICE ") == "فاکتور شماره 12 و 34 invoice"
    assert normalize_text("علي") == "علی"
    assert normalize_text("فاکتـــور") == "فاکتور"  # tatweel
    assert normalize_text("می\u200cخواهم") == "می\u200cخواهم"  # ZWNJ kept


@pytest.mark.parametrize(("text", "keyword", "hit"), [
    ("میخواهم", "می\u200cخواهم", True),
    ("می خواهم", "می\u200cخواهم", True),
    ("می\u200cخواهم", "میخواهم", True),
    ("فاكتور خرید", "فاکتور", True),        # Arabic kaf
    ("فاکتورهای من", "فاکتور", True),        # Persian suffix: substring on purpose
    ("فا\u200bکتور", "فاکتور", True),         # zero-width space does not dodge a rule
    ("I want PRICES", "price", True),
    ("a buyout", "buy", False),               # ASCII words have boundaries
    ("rebuy", "buy", False),
    ("قیمت", "فاکتور", False),
])
def test_contains_keyword(text, keyword, hit):
    assert contains_keyword(text, keyword) is hit
