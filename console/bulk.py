"""Bulk actions on queue items, shared by the page (:mod:`console.pages.bulk`) and the JSON
API (:mod:`console.api.bulk`): assign, refer to a person or team with a note, close, tag.

What is wrong with the request itself (no such action, a referral without its note, an
agent asking to assign) is refused once, before any item is touched. What is wrong with one
item (outside the actor's scope, a reply still awaiting approval) is refused for that item
alone, with its reason (:func:`kartabl.workflow.bulk.each`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from console.customer_tags import add_tag, normalize_tag
from console.queue_types import MAX_LIMIT, Filters, Targets
from console.queues import list_queue
from kartabl import workflow
from kartabl.errors import InputError
from kartabl.models import Conversation, Person
from kartabl.workflow.access import nonempty, require_reviewer
from kartabl.workflow.bulk import MAX_ITEMS, BulkResult, each

ACTIONS: Final = ("assign", "refer", "close", "tag")


@dataclass(frozen=True, slots=True)
class BulkAction:
    action: str
    person_id: int | None = None
    team_id: int | None = None
    note: str = ""
    tag: str = ""

    def step(self, session: Session, actor: Person) -> Callable[[Conversation], object]:
        """The per-item step, after the request as a whole was checked."""
        if self.action not in ACTIONS:
            raise InputError(f"unknown bulk action {self.action[:20]!r}; "
                             f"one of {', '.join(ACTIONS)}")
        if self.action == "assign":
            require_reviewer("bulk assign", actor)
            if self.person_id is None and self.team_id is None:
                raise InputError("assign needs a person or a team")
            return lambda c: workflow.assign(session, actor, c.id, person_id=self.person_id,
                                             team_id=self.team_id)
        if self.action == "refer":
            note = nonempty(self.note, "a referral note")
            if self.person_id is None and self.team_id is None:
                raise InputError("refer needs a person or a team")
            return lambda c: workflow.refer(session, actor, c.id, person_id=self.person_id,
                                            team_id=self.team_id, note=note)
        if self.action == "close":
            return lambda c: workflow.close(session, actor, c.id)
        tag = normalize_tag(self.tag)  # a bad tag is refused once, not once per item
        return lambda c: add_tag(session, actor, c.customer_id, tag)


def run(session: Session, actor: Person, action: BulkAction, ids: list[int]) -> BulkResult:
    """Apply ``action`` to ``ids``; the caller commits."""
    return each(session, actor, action.action, ids, action.step(session, actor))


def matching_ids(session: Session, actor: Person, queue: str, filters: Filters, *,
                 targets: Targets) -> list[int]:
    """Every conversation of ``queue`` under ``filters`` that ``actor`` sees ("select all
    matching"), page by page; more than :data:`MAX_ITEMS` is refused, so a bulk step never
    silently does part of what the filter shows."""
    ids: list[int] = []
    cursor = None
    while True:
        page = list_queue(session, actor, queue, Filters(
            channel=filters.channel, team_id=filters.team_id, status=filters.status,
            min_age=filters.min_age, max_age=filters.max_age, limit=MAX_LIMIT, cursor=cursor),
            targets=targets)
        ids += [row.conversation_id for row in page.rows]
        if len(set(ids)) > MAX_ITEMS:
            raise InputError(f"more than {MAX_ITEMS} conversations match: narrow the filter")
        cursor = page.next_cursor
        if cursor is None:
            return list(dict.fromkeys(ids))  # the approval queue lists a reply per row
