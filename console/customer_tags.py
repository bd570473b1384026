"""Customer tags: their one stored form (:func:`normalize_tag`) and adding or removing them,
audited, on a customer the actor can see (the scope of :mod:`console.customer_scope`).

Kept apart from :mod:`console.customers` because search (:mod:`console.customer_search`)
folds ``tag:`` queries with the same normalisation; both import it from here.
"""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy.orm import Session

from console.customer_scope import _load
from kartabl import audit
from kartabl.errors import InputError
from kartabl.models import Person
from kartabl.workflow.access import require_actor
from router.text import ZWNJ, normalize_text

TAG_MAX_LENGTH: Final = 40
MAX_TAGS: Final = 50


# -- tags ----------------------------------------------------------------------------------

_TAG_CHARS = re.compile(rf"[\w{ZWNJ} .\-]+")


def normalize_tag(text: str) -> str:
    """The stored form of a tag: :func:`normalize_text` (so "VIP" and "vip", "مشتري" and
    "مشتری" are one tag), without a leading '#'; letters, digits, spaces, '-', '_', '.'
    only (no quotes or formula signs), at most :data:`TAG_MAX_LENGTH` characters."""
    tag = normalize_text(text if isinstance(text, str) else "").lstrip("#").strip()
    if not tag or len(tag) > TAG_MAX_LENGTH or not _TAG_CHARS.fullmatch(tag):
        raise InputError(f"not a tag: {str(text)[:TAG_MAX_LENGTH + 5]!r}; a tag holds 1 to "
                         f"{TAG_MAX_LENGTH} letters, digits, spaces, '-', '_' or '.'",
                         code="bad_tag", params={"text": str(text)[:TAG_MAX_LENGTH + 5],
                                                 "max": TAG_MAX_LENGTH})
    return tag


def _canonical_tag(text: str) -> str | None:
    try:
        return normalize_tag(text)
    except InputError:
        return None


def _retag(session: Session, actor: Person, customer_id: int, tag: str, *, add: bool) -> list[str]:
    require_actor("tag a customer", actor)
    tag = normalize_tag(tag)
    # Locked: tags are one JSON list, and two concurrent edits would lose one of them.
    customer = _load(session, actor, customer_id, follow=True, lock=True)
    tags = list(customer.tags or [])
    # Tags written before this module (or by a merge) may not be canonical: compare folded.
    present = [t for t in tags if isinstance(t, str) and _canonical_tag(t) == tag]
    if add and not present:
        if len(tags) >= MAX_TAGS:
            raise InputError(f"customer {customer.id} already has {MAX_TAGS} tags",
                             code="too_many_tags", params={"max": MAX_TAGS})
        customer.tags = [*tags, tag]  # a new list: the JSON column does not track mutation
    elif not add and present:
        customer.tags = [t for t in tags if t not in present]
    else:
        return tags
    audit.record(session, "customer.tag_added" if add else "customer.tag_removed",
                 actor=actor, customer_id=customer.id, tag=tag)
    session.flush()
    return list(customer.tags)


def add_tag(session: Session, actor: Person, customer_id: int, tag: str) -> list[str]:
    """Tag a customer the actor can see (an agent: through one conversation in scope; a tag
    moves no data). Idempotent; audited when it changes something. Returns the tags."""
    return _retag(session, actor, customer_id, tag, add=True)


def remove_tag(session: Session, actor: Person, customer_id: int, tag: str) -> list[str]:
    """Remove a tag (compared in normalised form); idempotent, audited. Returns the tags."""
    return _retag(session, actor, customer_id, tag, add=False)
