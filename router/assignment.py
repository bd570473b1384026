"""The routing rules: which team a conversation goes to.

Choosing the person within the team (previous assignee, least loaded, capacity, and the
locks that make handing out the last free slot race-safe) is :mod:`router.placement`,
which places a whole batch of routed messages at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from config.routing import RoutingConfig
from kartabl.models import (
    Channel,
)
from router.text import matches_any, normalize_text

log = logging.getLogger(__name__)


def choose_team(
    routing: RoutingConfig, channel: Channel | str, subject: str, text: str, tags: Iterable[str]
) -> tuple[str | None, str | None]:
    """(team name, rule name) of the first rule that matches, or (None, None).

    A rule matches when every kind of condition it names holds (channels AND keywords AND
    tags); within a kind any one value is enough. Keywords are compared after
    :func:`router.text.normalize_text`, in the subject and the text.
    """
    chan = Channel(channel).value
    tagset = {normalize_text(str(t)) for t in tags}
    haystack: str | None = None  # normalised lazily: rules on channel or tags need no text
    for rule in routing.rules:
        if rule.channels and chan not in rule.channels:
            continue
        if rule.tags and not tagset.intersection(normalize_text(t) for t in rule.tags):
            continue
        if rule.keywords:
            if haystack is None:
                haystack = normalize_text(f"{subject}\n{text}")
            if not matches_any(haystack, rule.keywords):
                continue
        return rule.team, rule.name
    return None, None
