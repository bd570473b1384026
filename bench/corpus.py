"""A generated corpus of inbound traffic: a few thousand customers, some of whom write on
several channels (their identities were linked beforehand, as an agent would have done),
Persian and English text, some with routing keywords."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from kartabl.messages import InboundMessage

PERSIAN = [
    "سلام، سفارش من هنوز نرسیده است",
    "قیمت این محصول چقدر است؟",
    "فاكتور خرید را برایم بفرستید",  # Arabic kaf: must still match «فاکتور»
    "می‌خواهم اشتراکم را تمدید کنم",
    "رمز عبورم را فراموش کرده‌ام",
    "پرداخت انجام شد ولی پیامی نیامد",
]
ENGLISH = [
    "Hello, where is my order?",
    "I would like a price quote for 20 units",
    "Please send the invoice again",
    "The app crashes when I log in",
    "Can I get a refund?",
]
CHANNELS = ("email", "sms", "telegram", "bale")


@dataclass(frozen=True)
class Person:
    """One real person: their identity on each channel they use."""

    idx: int
    name: str
    addresses: dict[str, str]


def people(n: int, *, multi_share: float = 0.2, seed: int = 7) -> list[Person]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        home = rnd.choice(CHANNELS)
        chans = {home} | (set(rnd.sample(CHANNELS, 2)) if rnd.random() < multi_share else set())
        addresses = {}
        for ch in chans:
            if ch == "email":
                addresses[ch] = f"Customer.{i}@Example{i % 50}.IR"  # case is normalised
            elif ch == "sms":
                # national form with a mix of digit systems, as customers really type them
                num = f"0912{i:07d}"
                addresses[ch] = (
                    num if i % 3 else num.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
                )
            else:
                addresses[ch] = str(10_000_000 + i)
        out.append(Person(i, f"مشتری {i}" if i % 2 else f"Customer {i}", addresses))
    return out


def messages(
    persons: list[Person], n: int, *, tag: str, seed: int = 11
) -> Iterator[tuple[str, str, str, str, str]]:
    """Yield (channel, external_id, raw_sender, name, text) for ``n`` messages."""
    rnd = random.Random(seed)
    for k in range(n):
        p = rnd.choice(persons)
        ch = rnd.choice(sorted(p.addresses))
        text = rnd.choice(PERSIAN if rnd.random() < 0.7 else ENGLISH)
        yield ch, f"{tag}-{k}", p.addresses[ch], p.name, text


def to_inbound(raw: tuple[str, str, str, str, str]) -> InboundMessage:
    """What a channel adapter does: normalise the sender and build the message."""
    from router.identity import identity_for

    ch, ext, sender, name, text = raw
    _, address = identity_for(ch, sender)
    return InboundMessage(
        channel=ch,
        external_id=ext,
        sender=address,
        sender_name=name,
        text=text,
        subject=text[:40] if ch == "email" else "",
    )
