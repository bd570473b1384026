"""The widget's limits are shared by every web process in the fleet: two limiters made from
two processes' settings (each its own Redis connection pool) count the same window on the
broker's Redis; a Redis that cannot be reached lets the message through."""

from __future__ import annotations

from channels.webchat.limits import Limits
from config.settings import Settings
from workers.broker import window_limiters


def test_two_web_processes_share_one_window_on_redis(settings: Settings, redis_client) -> None:
    fleet = settings.model_copy(update={"broker": "redis"})
    a, b = Limits(window_limiters(fleet)), Limits(window_limiters(fleet))
    took = [a.allow("msg-ip", "203.0.113.7", 3), b.allow("msg-ip", "203.0.113.7", 3),
            a.allow("msg-ip", "203.0.113.7", 3), b.allow("msg-ip", "203.0.113.7", 3)]
    assert took == [True, True, True, False]
    assert a.allow("msg-ip", "203.0.113.8", 3)  # another address: its own window
    assert any(k.startswith(f"{fleet.redis_namespace}:webchat:msg-ip:".encode())
               for k in redis_client.keys(f"{fleet.redis_namespace}:*"))


def test_an_unreachable_redis_lets_the_message_through(settings: Settings) -> None:
    away = settings.model_copy(update={"broker": "redis",
                                       "redis_url": "redis://127.0.0.1:1/0"})
    assert Limits(window_limiters(away)).allow("msg-ip", "203.0.113.7", 1)
