"""One step over many conversations: what a coordinator does to 20 triage items at once.

Each item goes through the same transition a single action would (so the same checks and
the same audit rows), in a savepoint of its own: an item the step refuses is rolled back
alone and reported with its reason, and the others go through. A conversation the actor
cannot see is reported as not found, whether it exists or not (a bulk request must not
become a way to probe ids outside one's scope; when none is visible, the whole request is
:class:`NotFound`). A request that changed something is audited once more as
``bulk.applied``: which action, what was done and what was refused, and why; one that
changed nothing records nothing, like any refused step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.errors import InputError, NotFound, WorkflowError
from kartabl.models import Conversation, Person
from kartabl.workflow.access import can_access, require_actor

MAX_ITEMS: Final = 500  # a page of a queue is 50; "all matching" is capped here
NOT_FOUND: Final = "no such conversation, or not one you can see"


@dataclass(frozen=True, slots=True)
class Refusal:
    conversation_id: int
    reason: str  # the transition's own words (the console localises what it knows)
    error: str  # the error's class: not_found, PermissionDenied, IllegalTransition, ...


@dataclass(slots=True)
class BulkResult:
    action: str
    done: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    event_id: int = 0  # the bulk.applied row, once recorded

    def summary(self) -> dict[str, Any]:
        """The audit row's data (and the JSON API's answer)."""
        return {"action": self.action, "done": self.done,
                "refused": [{"conversation_id": r.conversation_id, "reason": r.reason,
                             "error": r.error} for r in self.refused]}


def unique_ids(ids: Iterable[int]) -> list[int]:
    """The ids once each, in the order given; refuses an empty or oversized request."""
    seen = list(dict.fromkeys(ids))
    if not seen:
        raise InputError("select at least one conversation")
    if len(seen) > MAX_ITEMS:
        raise InputError(f"at most {MAX_ITEMS} conversations at once, not {len(seen)}")
    return seen


def each(session: Session, actor: Person, action: str, ids: Iterable[int],
         step: Callable[[Conversation], object]) -> BulkResult:
    """Run ``step`` on every conversation of ``ids`` that ``actor`` can see, each in its
    own savepoint; returns what was done and what was refused. The caller commits."""
    require_actor(f"bulk {action}", actor)
    result = BulkResult(action)
    for cid in unique_ids(ids):
        conv = session.get(Conversation, cid)
        if conv is None or not can_access(actor, conv):
            result.refused.append(Refusal(cid, NOT_FOUND, "not_found"))
            continue
        savepoint = session.begin_nested()
        try:
            step(conv)
            savepoint.commit()
        except (WorkflowError, InputError) as exc:
            savepoint.rollback()
            result.refused.append(Refusal(cid, str(exc), type(exc).__name__))
            continue
        result.done.append(cid)
    if not result.done:
        if all(r.error == "not_found" for r in result.refused):
            # Nothing the actor can see: the same 404 as one such id alone would get.
            raise NotFound(NOT_FOUND)
        return result  # nothing changed, so nothing to record (event_id stays 0)
    event = audit.record(session, "bulk.applied", actor=actor, **result.summary())
    session.flush()  # its id names the result page
    result.event_id = event.id
    return result
