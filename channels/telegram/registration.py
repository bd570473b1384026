"""Registering a webhook bot with its Bot API server (Telegram's, or Bale's Telegram-shaped
one): ``setWebhook`` with the URL the console serves the bot on, the bot's secret token,
and only the update kinds Kartabl handles.

Bot API ``setWebhook`` (https://core.telegram.org/bots/api#setwebhook) takes ``url``,
``secret_token`` (1-256 characters of ``A-Z a-z 0-9 _ -``, sent back in the
``X-Telegram-Bot-Api-Secret-Token`` header of every update), ``allowed_updates`` (kept
until it is given again; an empty list means every kind but three) and more we leave at
their defaults. ``getUpdates`` takes the same ``allowed_updates``; the poller sends
:data:`ALLOWED_UPDATES` too.

:func:`check` says, before anything is sent, why a bot cannot be registered; the command
(``kartabl telegram set-webhook``) refuses the whole run on any problem.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from channels.telegram.bot import open_bot
from config.telegram import BotConfig

# The kinds channels.telegram.updates turns into messages; it ignores (and acknowledges)
# every other kind, so asking for them would only cost requests.
ALLOWED_UPDATES: Final[tuple[str, ...]] = ("message",)
WEBHOOK_PATH: Final = "/webhooks/telegram/{name}"  # console/app.py mounts channels/*/webhook
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True, slots=True)
class Registered:
    bot: str
    url: str
    allowed_updates: tuple[str, ...]
    pending_update_count: int


def webhook_url(base_url: str, bot: BotConfig) -> str:
    return base_url.rstrip("/") + WEBHOOK_PATH.format(name=bot.name)


def check_base_url(base_url: str) -> str | None:
    """Why ``base_url`` cannot be the console's public address, or None."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--base-url must be an http(s) URL with a host, not {base_url!r}"
    if parts.query or parts.fragment:
        return "--base-url must not have a query or a fragment"
    return None


def check(bot: BotConfig) -> str | None:
    """Why ``bot`` cannot be registered for a webhook, or None."""
    if bot.mode != "webhook":
        return (f"bot {bot.name} has mode = \"{bot.mode}\": only webhook bots are registered "
                "(a polling bot's webhook is deleted by `kartabl telegram poll`)")
    secret = bot.webhook_secret.get_secret_value()
    if not secret:
        return f"bot {bot.name} has no webhook secret (webhook_secret_env)"
    if not _SECRET.match(secret):
        return (f"bot {bot.name}: the Bot API takes a secret token of 1-256 characters of "
                "A-Z, a-z, 0-9, _ and - only; choose another webhook secret")
    return None


def register(bot: BotConfig, base_url: str) -> Registered:
    """``setWebhook`` for ``bot``, then ``getWebhookInfo`` to report what the server holds.
    Raises ``telegram.error.TelegramError`` when the server refuses."""
    return asyncio.run(_register(bot, webhook_url(base_url, bot)))


async def _register(bot: BotConfig, url: str) -> Registered:
    async with open_bot(bot) as client:
        await client.set_webhook(url=url, secret_token=bot.webhook_secret.get_secret_value(),
                                 allowed_updates=list(ALLOWED_UPDATES))
        info = await client.get_webhook_info()
    return Registered(bot=bot.name, url=info.url,
                      allowed_updates=tuple(info.allowed_updates or ()),
                      pending_update_count=info.pending_update_count)
