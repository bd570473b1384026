"""The workflow: assign, refer, draft, submit, approve, reject, close, reopen and note.

All transitions live in :mod:`kartabl.workflow.transitions` (read its docstring for the
decisions); the state tables in :mod:`~kartabl.workflow.states`; who may do what in
:mod:`~kartabl.workflow.access`. Callers import from here. Merging conversations (and
undoing a merge) is :mod:`~kartabl.workflow.merge`, splitting one
:mod:`~kartabl.workflow.split`: callers import those modules.
"""

from kartabl.workflow import waiting
from kartabl.workflow.access import can_access
from kartabl.workflow.states import (
    CONVERSATION_STEPS,
    REPLY_TRANSITIONS,
    check_reply_transition,
    move_reply,
)
from kartabl.workflow.transitions import (
    approve,
    assign,
    close,
    draft,
    idempotency_key_for,
    note,
    refer,
    reject,
    reopen,
    review_skip_reason,
    submit,
    update_draft,
)

__all__ = [
    "CONVERSATION_STEPS",
    "REPLY_TRANSITIONS",
    "approve",
    "assign",
    "can_access",
    "check_reply_transition",
    "close",
    "draft",
    "idempotency_key_for",
    "move_reply",
    "note",
    "refer",
    "reject",
    "reopen",
    "review_skip_reason",
    "submit",
    "update_draft",
    "waiting",
]
