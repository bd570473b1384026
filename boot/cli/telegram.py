"""``kartabl telegram``: long polling of the bots configured with ``mode = "polling"``, and
registering the webhook bots with their Bot API server (``set-webhook``)."""

from __future__ import annotations

import threading

import typer
from rich.console import Console
from rich.markup import escape

from boot.cli.signals import idle_until_stopped, stop_on_signals
from config.telegram import BotConfig

out = Console()
app = typer.Typer(help="The Telegram and Bale bots: long polling, webhook registration.",
                  no_args_is_help=True)


def _configured_bots() -> list[BotConfig]:
    from config.channels import get_channels
    from config.settings import get_settings

    if get_settings().channels_file is None:
        raise typer.BadParameter(
            "no channels file is configured: set KARTABL_CHANNELS_FILE "
            "(see config/channels.example.toml)", param_hint="KARTABL_CHANNELS_FILE")
    return list(get_channels().telegram.bots)


def _polling_bots(name: str) -> list[BotConfig]:
    bots = [b for b in _configured_bots() if b.mode == "polling"]
    if name:
        bots = [b for b in bots if b.name == name]
    if not bots:
        raise typer.BadParameter(
            f"no bot {'named ' + repr(name) + ' ' if name else ''}with mode = \"polling\" "
            "in the channels file", param_hint="--bot")
    return bots


@app.command("poll")
def poll(
    bot: str = typer.Option("", help="Only this bot (default: every polling bot)."),
    once: bool = typer.Option(False, "--once", help="One pass per bot, then exit."),
) -> None:
    """getUpdates for the polling bots, storing each batch before advancing its offset,
    until SIGTERM or SIGINT. Deletes each bot's webhook first (Telegram refuses
    getUpdates while one is set)."""
    from boot import start
    from channels.runner import Runner
    from channels.runner import start as start_runners
    from channels.telegram.bot import redact
    from channels.telegram.poller import BotSource
    from kartabl import db

    try:
        bots = _polling_bots(bot)
    except typer.BadParameter as exc:
        if once or bot:
            raise  # a command-line mistake: say so, boot nothing
        start("telegram")  # a process that idles has booted too, as the fleet's other lines
        idle_until_stopped(f"kartabl telegram poll: {exc.message}")
        return
    start("telegram")  # routing is enqueued after each commit
    stop = threading.Event() if once else stop_on_signals()
    sources = [BotSource(b, db.session_factory(), timeout_s=0 if once else None) for b in bots]
    runners = [Runner(source, db.session_factory(), stop) for source in sources]
    failed = 0
    for source, runner in zip(sources, runners, strict=True):
        try:
            source.delete_webhook()
            if once:
                r = runner.poll_once()
                out.print(f"{source.bot.name}: {r.fetched} updates, {r.created} new, "
                          f"{r.duplicates} duplicate, {r.skipped} ignored")
        except Exception as exc:  # reported per bot; the others go on
            failed += 1
            out.print(f"[red]{source.bot.name}: {escape(redact(str(exc)))}[/red]")
    if once:
        raise typer.Exit(1 if failed else 0)
    # Each bot is polled by one process at a time (the runner's lock per bot); each runner
    # finishes (stores, advances) its current pass on a stop.
    for t in start_runners(runners, daemon=False):
        t.join()


@app.command("set-webhook")
def set_webhook(
    bot: str = typer.Option("", help="Only this bot (default: every webhook bot)."),
    base_url: str = typer.Option(
        "", "--base-url",
        help="The console's public address, e.g. https://support.example.ir: each bot is "
             "registered at <base-url>/webhooks/telegram/<bot name> (default: "
             "KARTABL_BASE_URL, when set)."),
) -> None:
    """Register webhook bots (Telegram and Bale alike) with their Bot API server: setWebhook
    with the bot's URL, its webhook secret as secret_token, and allowed_updates limited to
    the update kinds Kartabl handles. Any problem with the arguments or a bot's settings is
    reported before anything is sent (exit code 2)."""
    from telegram.error import TelegramError

    from channels.telegram import registration
    from channels.telegram.bot import redact
    from config.settings import get_settings

    base_url = base_url or get_settings().base_url  # never WEB_HOST: Telegram must reach it
    problem = (registration.check_base_url(base_url) if base_url
               else "--base-url is required (or set KARTABL_BASE_URL)")
    if problem:
        raise typer.BadParameter(problem, param_hint="--base-url")
    bots = _configured_bots()
    if bot:
        bots = [b for b in bots if b.name == bot]
        if not bots:
            raise typer.BadParameter(f"no bot named {bot!r} in the channels file",
                                     param_hint="--bot")
    else:
        bots = [b for b in bots if b.mode == "webhook"]
        if not bots:
            raise typer.BadParameter("no bot with mode = \"webhook\" in the channels file",
                                     param_hint="--bot")
    problems = [p for p in (registration.check(b) for b in bots) if p]
    if problems:  # all or nothing: a half-registered fleet is harder to reason about
        raise typer.BadParameter("; ".join(problems), param_hint="--bot")
    failed = 0
    for b in bots:
        expected = registration.webhook_url(base_url, b)
        try:
            done = registration.register(b, base_url)
        except TelegramError as exc:
            failed += 1
            out.print(f"[red]{b.name}: setWebhook refused: {escape(redact(str(exc)))}[/red]")
            continue
        if done.url != expected:
            failed += 1
            out.print(f"[red]{b.name}: the server reports {escape(done.url)!r}, not "
                      f"{escape(expected)!r}[/red]")
            continue
        out.print(f"{b.name} ({b.kind}): {escape(done.url)}, allowed_updates "
                  f"{', '.join(done.allowed_updates) or 'all'}, "
                  f"{done.pending_update_count} pending")
    raise typer.Exit(1 if failed else 0)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="telegram")
