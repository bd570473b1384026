"""The task names come from one place: the actors. The core's port names them (TaskName,
for the type checker); workers.actors.TASKS is derived from the actors' own names; the
broker enqueues through that registry."""

from __future__ import annotations

from typing import get_args

import pytest

from config.settings import Settings
from kartabl import tasks
from workers.broker import setup_broker


def test_the_registry_and_the_actors_agree(settings: Settings) -> None:
    # Given a broker set up as every process sets it up
    setup_broker(settings.model_copy(update={"broker": "stub"}))
    from workers import actors

    # Then every task the core may enqueue has its actor, registered under the actor's name
    assert set(actors.TASKS) == set(get_args(tasks.TaskName))
    assert all(actors.TASKS[name].actor_name == name for name in actors.TASKS)
    # And every registered actor is bound, with the benchmark's noop besides
    assert {a.actor_name for a in actors.ALL} == {*actors.TASKS, "noop"}


def test_enqueue_goes_to_the_actor_of_that_name(settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    setup_broker(settings.model_copy(update={"broker": "stub"}))
    from workers import actors

    sent: list[tuple[str, object]] = []
    for name, actor in actors.TASKS.items():
        monkeypatch.setattr(actor, "send", lambda obj, name=name: sent.append((name, obj)))
    tasks.enqueue_now("route_messages", [1, 2])
    tasks.enqueue_now("dispatch_reply", 7)
    assert sent == [("route_messages", [1, 2]), ("dispatch_reply", 7)]
