"""Registering a webhook bot with Rubika: ``updateBotEndpoints`` with ``type =
"ReceiveUpdate"`` and the URL the console serves the bot on,
``<base>/webhooks/rubika/<bot name>/<webhook secret>``. Rubika answers ``{"status":
"Done"}`` (or ``"InvalidUrl"``) inside its envelope. Rubika signs nothing, so the secret
path is what keeps strangers out; Rubika only connects to https endpoints."""

from __future__ import annotations

from typing import Final

from channels.rubika.api import RubikaApi
from config.rubika import RubikaBot

WEBHOOK_PATH: Final = "/webhooks/rubika/{name}/{secret}"


def webhook_url(base_url: str, bot: RubikaBot) -> str:
    return base_url.rstrip("/") + WEBHOOK_PATH.format(
        name=bot.name, secret=bot.webhook_secret.get_secret_value())


def check(bot: RubikaBot) -> str | None:
    """Why ``bot`` cannot be registered for a webhook, or None (its secret's shape is
    checked when the channels file is loaded)."""
    if bot.mode != "webhook":
        return f"Rubika bot {bot.name} has mode = \"{bot.mode}\": only webhook bots are registered"
    return None


def register(bot: RubikaBot, base_url: str) -> str:
    """``updateBotEndpoints`` for ``bot``; Rubika's answer (``Done`` when registered).
    Raises :class:`channels.rubika.api.RubikaError` or httpx's errors."""
    with RubikaApi(bot) as api:
        data = api.call("updateBotEndpoints",
                        {"url": webhook_url(base_url, bot), "type": "ReceiveUpdate"})
    return str(data.get("status") or "")
