"""A search query, read (:func:`parse`) and turned into SQL on ``search_doc``
(:func:`clauses`), on PostgreSQL or SQLite.

The syntax (README "Search"): words separated by spaces, all of which must occur (in any
order); ``"a quoted phrase"`` (also «…» or “…”) whose words occur together in that order;
``-word`` or ``-"a phrase"`` excludes. Nothing else is an operator (no OR, no wildcards:
``*``, ``:``, ``(`` are ordinary characters).

- An English word (ASCII letters only) is stemmed: ``refunds`` finds "refund",
  "refunded" (PostgreSQL's ``english`` configuration, FTS5's ``porter`` tokenizer).
- Anything else (Persian, digits, a mix such as ``KB-20931``) is a substring of the text
  with its spaces removed, after :func:`kartabl.search.search_form` on both sides: so the
  letter forms, digits, harakat and tatweel do not matter, affixes are found
  (``فاکتور`` finds "فاکتورها"), and the three spellings of a compound match each other.
  A Persian word of one or two letters is taken together with the next word (or with the
  one before, at the end): ``می خواهم`` is the one term "میخواهم", not "می" anywhere.
- A phone number in any form (0912…, +98912…, ۰۹۱۲…, with spaces or dashes when it is the
  whole query) finds the conversations of the customer with that phone, and the texts
  that contain the number in any of those forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session

from kartabl.models import Conversation, Identity, SearchDoc
from kartabl.search import search_form, squash
from router.identity import normalize_phone

MAX_QUERY = 200
MAX_TERMS = 8
_QUOTES = str.maketrans({"«": '"', "»": '"', "“": '"', "”": '"'})
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_ENGLISH = re.compile(r"[a-z]+(?: [a-z]+)*")
_PHONEISH = re.compile(r"[+0-9۰-۹٠-٩()\s\-]+")
_DIGITS = re.compile(r"[0-9۰-۹٠-٩]")

Kind = Literal["english", "substring", "phone"]

# PostgreSQL's english stop words (tsearch_data/english.stop): its stemmer drops them, so a
# term of only these would match nothing there. They are left out of the query on both
# databases (SQLite's porter keeps them): "cancel the order" means "cancel order".
STOP_WORDS = frozenset((
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers",
    "herself", "it", "its", "itself", "they", "them", "their", "theirs", "themselves",
    "what", "which", "who", "whom", "this", "that", "these", "those", "am", "is", "are",
    "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does",
    "did", "doing", "a", "an", "the", "and", "but", "if", "or", "because", "as", "until",
    "while", "of", "at", "by", "for", "with", "about", "against", "between", "into",
    "through", "during", "before", "after", "above", "below", "to", "from", "up", "down",
    "in", "out", "on", "off", "over", "under", "again", "further", "then", "once", "here",
    "there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more",
    "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so",
    "than", "too", "very", "s", "t", "can", "will", "just", "don", "should", "now",
))


@dataclass(frozen=True, slots=True)
class Term:
    """``value``: the English words (space-separated, a phrase) or the squashed substring;
    for a phone, the national number's digits (``9121234567``) and ``e164``."""

    kind: Kind
    value: str
    negated: bool = False
    e164: str = ""
    # a phone's: the conversations of the customer with that phone, looked up first
    # (:func:`phone_conversations`): a literal list lets the planner combine two indexes,
    # where a subquery in an OR made it guess half the table and walk it all
    conversation_ids: tuple[int, ...] = ()

    @property
    def marks(self) -> bool:
        """Whether a snippet marks it (what was excluded is not there to mark)."""
        return not self.negated


def _phone(raw: str) -> str | None:
    if not _PHONEISH.fullmatch(raw) or len(_DIGITS.findall(raw)) < 7:
        return None
    try:
        return normalize_phone(raw)
    except ValueError:
        return None


def _phone_term(e164: str) -> Term:
    # +98 9121234567: the national digits occur in 0912…, +98912… and 0098912… alike
    national = e164[3:] if e164.startswith("+98") else e164.lstrip("+")
    return Term("phone", national, e164=e164)


def parse(query: str) -> list[Term]:
    """The terms of ``query`` (at most :data:`MAX_TERMS`; empty when nothing searchable)."""
    q = query[:MAX_QUERY].translate(_QUOTES).strip()
    whole = _phone(q) if " " in q or "-" in q else None
    if whole is not None:
        return [_phone_term(whole)]
    terms: list[tuple[Term, bool]] = []  # (term, may join a short Persian neighbour)
    for m in _TOKEN.finditer(q):
        negated, quoted = m[1] == "-" or (m[3] or "").startswith("-"), m[2] is not None
        raw = m[2] if quoted else (m[3] or "")
        if not quoted and raw.startswith("-"):
            raw = raw[1:]
        phone = None if negated else _phone(raw)
        if phone is not None:
            terms.append((_phone_term(phone), False))
            continue
        norm = search_form(raw)
        if not norm:
            continue
        if _ENGLISH.fullmatch(norm) and (quoted or " " not in norm):
            if all(w in STOP_WORDS for w in norm.split()):
                continue
            terms.append((Term("english", norm, negated), False))
        else:
            terms.append((Term("substring", squash(norm), negated),
                          not quoted and not negated and not norm.isascii()))
    return [t for t, _ in _join_short(terms)][:MAX_TERMS]


def _join_short(terms: list[tuple[Term, bool]]) -> list[tuple[Term, bool]]:
    """A joinable Persian term of one or two letters (می، نمی is three: it stands alone)
    joins the next joinable term, or the previous one when it is last."""
    out: list[tuple[Term, bool]] = []
    i = 0
    while i < len(terms):
        term, joinable = terms[i]
        if joinable and len(term.value) <= 2:
            if i + 1 < len(terms) and terms[i + 1][1]:
                nxt = terms[i + 1][0]
                terms[i + 1] = (Term("substring", term.value + nxt.value), True)
                i += 1
                continue
            if out and out[-1][1]:
                prev = out[-1][0]
                out[-1] = (Term("substring", prev.value + term.value), True)
                i += 1
                continue
        out.append((term, joinable))
        i += 1
    return out


# -- SQL ----------------------------------------------------------------------------------

# The exact expression of the trigram index (migration 0002): the planner matches it by text.
_SQUASHED: ColumnElement[str] = literal_column("replace(search_doc.text, ' ', '')")
_FTS, _TRI = table("search_fts"), table("search_tri")


def _like(value: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", value) + "%"


def _fts_string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _substring(dialect: str, value: str) -> ColumnElement[bool]:
    if dialect == "sqlite" and len(value) >= 3:
        # FTS5's trigram table: a quoted string is a substring (3 characters at least)
        return SearchDoc.id.in_(select(literal_column("rowid")).select_from(_TRI).where(
            literal_column("search_tri").op("MATCH")(_fts_string(value))))
    return _SQUASHED.like(_like(value), escape="\\")


def _english(dialect: str, value: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        return SearchDoc.id.in_(select(literal_column("rowid")).select_from(_FTS).where(
            literal_column("search_fts").op("MATCH")(_fts_string(value))))
    vector: ColumnElement[Any] = literal_column("to_tsvector('english', search_doc.text)")
    return vector.op("@@", return_type=Boolean)(
        func.phraseto_tsquery(literal_column("'english'"), value))


def clause(dialect: str, term: Term) -> ColumnElement[bool]:
    if term.kind == "english":
        found = _english(dialect, term.value)
    elif term.kind == "substring":
        found = _substring(dialect, term.value)
    elif term.conversation_ids:
        found = or_(_substring(dialect, term.value),
                    SearchDoc.conversation_id.in_(term.conversation_ids))
    else:
        found = _substring(dialect, term.value)
    return not_(found) if term.negated else found


MAX_PHONE_CONVERSATIONS = 2000  # the newest of a customer's conversations, beyond that


def with_phone_conversations(session: Session, terms: list[Term]) -> list[Term]:
    """``terms`` with each phone's conversations filled in (unscoped: the scope is the
    search's own WHERE clause)."""
    out = []
    for t in terms:
        if t.kind == "phone":
            ids = session.scalars(
                select(Conversation.id).join(
                    Identity, Identity.customer_id == Conversation.customer_id)
                .where(Identity.kind == "phone", Identity.address == t.e164)
                .order_by(Conversation.id.desc()).limit(MAX_PHONE_CONVERSATIONS))
            t = replace(t, conversation_ids=tuple(ids))
        out.append(t)
    return out


def clauses(dialect: str, terms: list[Term]) -> ColumnElement[bool]:
    return and_(*(clause(dialect, t) for t in terms))
