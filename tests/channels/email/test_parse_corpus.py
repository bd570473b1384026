"""Every mail in CPython's own email test corpus parses without an exception."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from channels.email.parse import UnparseableMail, parse
from kartabl.messages import InboundMessage

CORPUS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"

# Mails of the corpus that legitimately give no message: no From address at all
# (msg_11, 18, 37-40 are MIME structure tests), "From: foo" (msg_05), "From: MAILER
# DAEMON <>" (msg_43), and msg_19, a digest body without any header.
NO_SENDER = {"msg_05.txt", "msg_11.txt", "msg_18.txt", "msg_19.txt", "msg_37.txt",
             "msg_38.txt", "msg_39.txt", "msg_40.txt", "msg_43.txt"}

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"CPython's email test corpus is not installed at {CORPUS} "
    "(Debian: apt-get install libpython3.11-testsuite)",
)


def _mails() -> list[Path]:
    return sorted(p for p in CORPUS.glob("msg_*.txt"))


def test_the_corpus_is_there() -> None:
    assert len(_mails()) >= 45


@pytest.mark.parametrize("path", _mails(), ids=lambda p: p.name)
def test_corpus_mail_parses_or_is_refused_cleanly(path: Path) -> None:
    if path.name in NO_SENDER:
        with pytest.raises(UnparseableMail):
            parse(path.read_bytes())
    else:
        msg = parse(path.read_bytes())
        assert isinstance(msg, InboundMessage)
        assert "@" in msg.sender
        assert msg.external_id and len(msg.external_id) < 500
        assert "mime_error" not in msg.meta  # the body was read, not lost to a fallback


def test_the_corpus_binary_files_are_not_mail() -> None:
    others = [p for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith("msg_")]
    assert others, "the corpus ships images and sounds too"
    for path in others:
        with pytest.raises(UnparseableMail):
            parse(path.read_bytes())


def test_corpus_counts() -> None:
    ok = refused = 0
    for path in _mails():
        try:
            parse(path.read_bytes())
            ok += 1
        except UnparseableMail:
            refused += 1
    assert refused == len(NO_SENDER)
    assert ok == len(_mails()) - len(NO_SENDER)


def test_corpus_bounce_is_recognised() -> None:
    # msg_16 is a real RFC 3464 report from 2001.
    msg = parse((CORPUS / "msg_16.txt").read_bytes())
    assert msg.kind == "bounce"
    assert msg.meta["bounced_message_ids"] == ["<002001c144a6$8752e060$56104586@oxy.edu>"]
