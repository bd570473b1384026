"""The outbound port (:mod:`kartabl.outbound`) as the composition uses it: only a ``Sender``
is registered, a sender closes as a context manager, and :meth:`boot.kinds.Runtime.close`
closes every registered sender once when the process stops (a dramatiq worker process
through :class:`workers.broker.OnWorkerShutdown`). The fleet test of the same, with real
processes and SIGTERM: tests/fleet/test_boot.py."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from boot.kinds import KINDS, Runtime
from config.settings import Settings
from kartabl import outbound
from kartabl.messages import OutboundMessage
from kartabl.models import Channel
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from workers.broker import OnWorkerShutdown


class Recording(Sender):
    """A sender that only records how often it was closed (and may fail to close)."""

    unknown_outcome: UnknownOutcomePolicy = "at_most_once"
    can_look_up = False

    def __init__(self, channel: str, *, fail_close: bool = False) -> None:
        self.channel = channel
        self.closed = 0
        self.fail_close = fail_close

    def send(self, msg: OutboundMessage) -> str:
        raise AssertionError("not sent in these tests")

    def lookup(self, msg: OutboundMessage) -> str | None:
        raise NotImplementedError

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None

    def close(self) -> None:
        self.closed += 1
        if self.fail_close:
            raise OSError("the provider's connection broke while closing")


@pytest.fixture
def registry() -> Iterator[None]:
    """An empty registry for the test, the earlier one put back after."""
    before = outbound.registered()
    for ch in Channel:
        outbound.unregister(ch)
    yield
    for ch in Channel:
        outbound.unregister(ch)
    for sender in before.values():
        outbound.register(sender)


def test_only_a_sender_can_be_registered(registry: None) -> None:
    class Lookalike:  # the methods of a sender, but no close(): it could never be released
        channel = "sms"
        unknown_outcome = "at_most_once"
        can_look_up = False

        def send(self, msg: OutboundMessage) -> str:
            return "x"

        def lookup(self, msg: OutboundMessage) -> str | None:
            return None

        def status(self, provider_id: str) -> DeliveryStatus | None:
            return None

    with pytest.raises(TypeError, match=r"does not implement kartabl\.outbound\.Sender"):
        outbound.register(Lookalike())  # type: ignore[arg-type]
    assert outbound.registered() == {}


def test_a_sender_is_a_context_manager_that_closes() -> None:
    with Recording("sms") as sender:
        assert sender.closed == 0
    assert sender.closed == 1
    with pytest.raises(RuntimeError), Recording("sms") as failing:
        raise RuntimeError("the work failed")
    assert failing.closed == 1  # closed on the way out of an error too


def test_the_runtime_closes_every_sender_once(registry: None,
                                              caplog: pytest.LogCaptureFixture) -> None:
    # Given a process of a sending kind with three senders, one of which fails to close
    senders = [Recording("email"), Recording("sms", fail_close=True), Recording("telegram")]
    for s in senders:
        outbound.register(s)
    rt = Runtime(KINDS["scheduler"], Settings(), senders={s.channel: repr(s) for s in senders})
    # When it stops (and a second stop path calls close again)
    with caplog.at_level(logging.INFO, logger="kartabl.boot"):
        rt.close()
        rt.close()
    # Then each sender was closed exactly once, the failing one did not stop the others,
    # and the failure is logged
    assert [s.closed for s in senders] == [1, 1, 1]
    assert "the sms sender did not close cleanly" in caplog.text
    assert "senders closed: email, sms, telegram" in caplog.text


def test_a_kind_without_senders_closes_none(registry: None) -> None:
    sender = outbound.register(Recording("sms"))  # installed by someone else in the process
    Runtime(KINDS["web"], Settings()).close()
    assert isinstance(sender, Recording) and sender.closed == 0


def test_a_dramatiq_worker_calls_the_shutdown_hook_after_it_stops() -> None:
    # Given a worker whose broker carries the hook (as boot.kinds.start_worker_process adds)
    called = threading.Event()
    broker = StubBroker()
    broker.add_middleware(OnWorkerShutdown(called.set))
    worker = Worker(broker, worker_threads=1)
    worker.start()
    assert not called.is_set()
    # When it stops, then the hook has run
    worker.stop()
    assert called.is_set()
    broker.close()
