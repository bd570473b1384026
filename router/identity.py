"""Who wrote: addresses normalised per kind, customers matched or created by identity, and
the two explicit, audited ways to join identities (link and merge).

Nothing here ever joins two customers by guessing: a new address is a new customer, even
when the display name matches (names are untrusted and collide). Joining is done by a person,
with :func:`link_identity` (a new address for a known customer) or :func:`merge_customers`
(two customers are one), both audited. That closes the "merge as takeover" hole: linking an
address that already belongs to someone else is refused, because it would move their history.
"""

from __future__ import annotations

import logging
import re

import idna
import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.errors import IllegalTransition, NotFound, PermissionDenied, WorkflowError
from kartabl.models import Channel, Conversation, Customer, Identity, Message, Person, Role

log = logging.getLogger(__name__)

# Messengers whose user ids are positive integers (Telegram, Bale), and those whose ids are
# opaque strings: Rubika's chat ids ("b0...") and Instagram's scoped ids. A WhatsApp user is
# known by their phone number (its wa_id), so WhatsApp lands on the "phone" identity, the
# same customer as their SMS. A website visitor ("webchat") and a generic API channel's user
# ("api", "<channel>:<their id>") are opaque ids too.
MESSENGERS = ("telegram", "bale")
OPAQUE = ("rubika", "instagram", "webchat", "api")
KINDS = ("email", "phone", *MESSENGERS, *OPAQUE)

_DIGITS = str.maketrans(
    {**{chr(0x06F0 + i): str(i) for i in range(10)}, **{chr(0x0660 + i): str(i) for i in range(10)}}
)


class IdentityTaken(WorkflowError):
    """The identity belongs to another customer: joining them is a merge, not a link."""


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


# -- phone --------------------------------------------------------------------------------------

# What people type around a number; anything else (letters, "tel:", extensions) is refused.
_PHONE_SEPARATORS = re.compile(r"[\s\-().\u200c\u200e\u200f\u202a-\u202e]")


def normalize_phone(text: str) -> str:
    """E.164 for ``text``, assuming Iran (+98) for national numbers: 0912…, 912…, 0098…,
    +98…. Persian and Arabic-Indic digits, spaces, dashes, dots and parentheses are accepted.
    Anything that is not a valid phone number raises :class:`ValueError`."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError(f"not a phone number: {_quote(str(text))} (too long)")
    s = _PHONE_SEPARATORS.sub("", text.translate(_DIGITS))
    if s.startswith("00"):
        s = "+" + s[2:]
    if not re.fullmatch(r"\+?[0-9]{4,17}", s):
        raise ValueError(f"not a phone number: {_quote(text)}")
    try:
        number = phonenumbers.parse(s, "IR")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {_quote(text)} ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a phone number: {_quote(text)} (no such number range)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# -- email --------------------------------------------------------------------------------------

# RFC 5322 dot-atom text, plus any Unicode letter or digit (RFC 6531). Quoted local parts,
# comments and source routes are refused: real customers do not use them, and they are where
# parsers disagree (CVE-2023-27043: email.utils.parseaddr picked the wrong address).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]")


def _local_part_ok(local: str) -> bool:
    if not local or len(local) > 64 or local.startswith(".") or local.endswith("."):
        return False
    if ".." in local:
        return False
    return all(c == "." or _ATEXT.fullmatch(c) or (not c.isascii() and c.isalnum())
               for c in local)


def normalize_email(text: str) -> str:
    """``local@domain`` case-folded, with the domain in IDNA (xn--) form.

    A bare address is expected (channels store the bare sender); ``Name <addr>`` is accepted
    only when unambiguous: one ``<…>`` at the end and no ``@`` in the name, because a name
    like ``"boss@corp.ir" <x@evil.ir>`` exists to be misread. Raises :class:`ValueError`.
    """
    if not isinstance(text, str) or len(text) > 320:
        raise ValueError(f"not an email address: {_quote(str(text))} (too long)")
    s = text.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        raise ValueError(f"not an email address: {_quote(text)} (control characters)")
    if "<" in s or ">" in s:
        m = re.fullmatch(r"([^<>@]*)<([^<>]+)>", s)
        if m is None:
            raise ValueError(f"not an email address: {_quote(text)} (ambiguous display name)")
        s = m.group(2).strip()
    if s.count("@") != 1:
        raise ValueError(f"not an email address: {_quote(text)} (needs exactly one @)")
    local, domain = s.split("@")
    if not _local_part_ok(local):
        raise ValueError(f"not an email address: {_quote(text)} (invalid local part)")
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"not an email address: {_quote(text)} (invalid domain: {exc})") from exc
    if "." not in ascii_domain:
        raise ValueError(f"not an email address: {_quote(text)} (domain has no dot)")
    address = f"{local.casefold()}@{ascii_domain}"
    if len(address) > 254:
        raise ValueError(f"not an email address: {_quote(text)} (too long)")
    return address


# -- messengers ---------------------------------------------------------------------------------


def normalize_messenger_id(messenger: str, text: str) -> str:
    """A Telegram or Bale user id as a canonical decimal string. User ids are positive
    integers; negative ids are groups and channels, which are not customers."""
    if messenger not in MESSENGERS:
        raise ValueError(f"unknown messenger {_quote(str(messenger))}")
    s = str(text).translate(_DIGITS).strip()
    if not re.fullmatch(r"[0-9]{1,20}", s) or int(s) <= 0:
        raise ValueError(f"not a {messenger} user id: {_quote(str(text))}")
    return str(int(s))


_OPAQUE_ID = re.compile(r"[A-Za-z0-9_.:@=+/-]{1,128}")


def normalize_opaque_id(kind: str, text: str) -> str:
    """A provider's opaque user id (Rubika, Instagram, a widget visitor, an API channel's
    user), kept exactly as given: ids are case-sensitive, so only the shape is checked."""
    if kind not in OPAQUE:
        raise ValueError(f"unknown identity kind {_quote(str(kind))}")
    s = str(text).strip()
    if not _OPAQUE_ID.fullmatch(s):
        raise ValueError(f"not a {kind} id: {_quote(str(text))}")
    return s


def identity_for(channel: Channel | str, sender: str) -> tuple[str, str]:
    """The (kind, normalised address) under which ``sender`` on ``channel`` is known.
    Raises :class:`ValueError` for an address that is not valid for the channel."""
    ch = Channel(channel)
    if ch is Channel.EMAIL:
        return "email", normalize_email(sender)
    if ch is Channel.SMS:
        return "phone", normalize_phone(sender)
    if ch is Channel.WHATSAPP:  # a wa_id is the international number without its "+"
        return "phone", normalize_phone(sender if sender.startswith("+") else "+" + sender)
    if ch.value in OPAQUE:
        return ch.value, normalize_opaque_id(ch.value, sender)
    return ch.value, normalize_messenger_id(ch.value, sender)


# Where a channel that verified its sender's phone number or email address says so, in the
# message's ``meta``: ``{"kind": "phone" | "email", "address": ...}``. Only the channels in
# VERIFYING may (the website widget checks the site's HMAC before it writes it); anything
# a customer typed is never put there.
VERIFIED = "verified_identity"
VERIFYING = (Channel.WEBCHAT,)


def message_identity(channel: Channel | str, sender: str,
                     meta: dict[str, object] | None) -> tuple[str, str]:
    """:func:`identity_for`, unless ``channel`` verified a phone or email for the sender:
    then that identity, so the message lands on the customer of their SMS and mail."""
    verified = (meta or {}).get(VERIFIED)
    if Channel(channel) in VERIFYING and isinstance(verified, dict) \
            and verified.get("kind") in ("phone", "email"):
        kind = str(verified["kind"])
        return kind, normalize_address(kind, str(verified.get("address", "")))
    return identity_for(channel, sender)


def normalize_address(kind: str, address: str) -> str:
    """Normalise ``address`` for an identity ``kind`` ('email', 'phone', 'telegram', 'bale')."""
    if kind == "email":
        return normalize_email(address)
    if kind == "phone":
        return normalize_phone(address)
    if kind in MESSENGERS:
        return normalize_messenger_id(kind, address)
    if kind in OPAQUE:
        return normalize_opaque_id(kind, address)
    raise ValueError(f"unknown identity kind {_quote(str(kind))}; expected one of {KINDS}")


# -- merge chains ------------------------------------------------------------------------------


def survivor(session: Session, customer: Customer, *, lock: bool) -> Customer:
    """Follow ``merged_into_id`` to the customer that absorbed this one: the one function
    that follows merge chains (routing, link, the console). ``lock`` takes each customer
    on the way FOR UPDATE. A cycle can only come from hand-edited data: it is refused with
    :class:`~kartabl.errors.IllegalTransition` rather than followed."""
    seen = {customer.id}
    while customer.merged_into_id is not None:
        stmt = select(Customer).where(Customer.id == customer.merged_into_id)
        if lock:
            stmt = stmt.with_for_update()
        nxt = session.scalars(stmt).one()
        if nxt.id in seen:  # a cycle can only come from hand-edited data; refuse to spin
            raise IllegalTransition("follow merge", "cyclic", f"customer {nxt.id}")
        seen.add(nxt.id)
        customer = nxt
    return customer


# -- link and merge -----------------------------------------------------------------------------


def _may_join(actor: Person) -> bool:
    return actor.active and (actor.can_merge or actor.role in (Role.ADMIN, Role.COORDINATOR))


def link_identity(
    session: Session, actor: Person, customer_id: int, kind: str, address: str
) -> Identity:
    """Give customer ``customer_id`` a new identity, explicitly and audited.

    Allowed to admins, coordinators and people with ``can_merge``: a linked address routes
    its messages into the customer's history. Refuses with :class:`IdentityTaken` if the
    identity already belongs to another customer (that needs :func:`merge_customers`).
    Linking an identity the customer already has is a no-op. Does not commit.
    """
    if not _may_join(actor):
        raise PermissionDenied("link an identity", actor.username,
                               "needs the coordinator or admin role, or the merge permission")
    address = normalize_address(kind, address)
    target = session.get(Customer, customer_id, with_for_update=True)
    if target is None:
        raise NotFound(f"customer {customer_id} does not exist")
    target = survivor(session, target, lock=True)
    existing = session.scalars(
        select(Identity).where(Identity.kind == kind, Identity.address == address)
    ).first()
    if existing is not None:
        owner = survivor(session, existing.customer, lock=False)
        if owner.id == target.id:
            return existing
        raise IdentityTaken(
            f"{kind} identity {address} belongs to customer {owner.id}, not {target.id}: "
            "merge the two customers instead (needs the merge permission)"
        )
    identity = Identity(customer_id=target.id, kind=kind, address=address, display=address)
    session.add(identity)
    session.flush()
    audit.record(session, "customer.identity_linked", actor=actor, customer_id=target.id,
                 identity_id=identity.id, identity_kind=kind, address=address)
    return identity


def merge_customers(session: Session, actor: Person, source_id: int, target_id: int) -> Customer:
    """Merge customer ``source_id`` into ``target_id``: identities, conversations and
    messages move to the target, the source keeps a ``merged_into_id`` pointer, and an audit
    event lists everything that moved. Needs ``can_merge`` or the admin role. Does not commit.
    """
    if not (actor.active and (actor.can_merge or actor.role is Role.ADMIN)):
        raise PermissionDenied("merge customers", actor.username, "needs the merge permission")
    if source_id == target_id:
        raise IllegalTransition("merge customers", "same customer", f"customer {source_id}")
    # Lock both in id order, as routing locks customers: no deadlock, and no message of
    # either customer is routed half-way through the move.
    rows = session.scalars(
        select(Customer).where(Customer.id.in_((source_id, target_id)))
        .order_by(Customer.id).with_for_update()
    ).all()
    by_id = {c.id: c for c in rows}
    if source_id not in by_id or target_id not in by_id:
        missing = source_id if source_id not in by_id else target_id
        raise NotFound(f"customer {missing} does not exist")
    source, target = by_id[source_id], by_id[target_id]
    for c in (source, target):
        if c.merged_into_id is not None:
            raise IllegalTransition("merge customers", "merged",
                                    f"customer {c.id} was already merged into {c.merged_into_id}")
    moved_identities = session.execute(
        update(Identity).where(Identity.customer_id == source.id)
        .values(customer_id=target.id).returning(Identity.id, Identity.kind, Identity.address)
    ).all()
    moved_conversations = session.scalars(
        update(Conversation).where(Conversation.customer_id == source.id)
        .values(customer_id=target.id).returning(Conversation.id)
    ).all()
    moved_messages = session.scalars(
        update(Message).where(Message.customer_id == source.id)
        .values(customer_id=target.id).returning(Message.id)
    ).all()
    new_tags = [t for t in (source.tags or []) if t not in (target.tags or [])]
    if new_tags:
        target.tags = [*(target.tags or []), *new_tags]
    if not target.display_name and source.display_name:
        target.display_name = source.display_name
    source.merged_into_id = target.id
    session.expire(source, ["identities"])
    session.expire(target, ["identities"])
    audit.record(
        session, "customer.merged", actor=actor, customer_id=target.id,
        source_id=source.id, target_id=target.id,
        identities=[{"id": i, "kind": k, "address": a} for i, k, a in moved_identities],
        conversations=sorted(moved_conversations), messages=len(moved_messages), tags=new_tags,
    )
    session.flush()
    return target
