"""``kartabl poll CHANNEL``: the process of any registered polled channel
(:mod:`channels.polled`), a runner per source of the channels file, until SIGTERM or SIGINT.

The channel's own command (``kartabl email poll``, ``kartabl telegram poll``, ``kartabl sms
poll``) adds what only it needs (one mailbox, deleting a bot's webhook first); a channel
without one is run by this, as its ``Procfile`` line (``webchat: kartabl poll webchat``)
with its kind in :mod:`boot.kinds` (a polled channel's process installs the database and
the broker)."""

from __future__ import annotations

import threading

import typer
from rich.console import Console
from rich.markup import escape

from boot.cli.signals import idle_until_stopped, stop_on_signals

out = Console()


def poll(
    channel: str = typer.Argument(..., help="A polled channel: email, telegram, sms ..."),
    once: bool = typer.Option(False, "--once", help="One pass over each source, then exit."),
) -> None:
    """Poll every source of CHANNEL configured in the channels file (one process at a time
    per source; the others stand by), committing each batch before acknowledging it."""
    from boot import KINDS, start
    from channels import polled
    from channels.runner import Runner, poll_each
    from channels.runner import start as start_runners
    from config.channels import get_channels
    from kartabl import db

    if channel not in polled.POLLED:
        raise typer.BadParameter(f"no polled channel {channel!r}; registered: "
                                 f"{', '.join(polled.POLLED)}", param_hint="CHANNEL")
    if channel not in KINDS:
        raise typer.BadParameter(f"no process kind {channel!r} in boot/kinds.py: declare "
                                 "what its process installs", param_hint="CHANNEL")
    settings = start(channel).settings  # routing is enqueued after each commit
    sources = polled.POLLED[channel](get_channels(), settings, db.session_factory())
    if not sources:
        if once:
            raise typer.BadParameter(f"nothing of {channel} to poll in the channels file",
                                     param_hint="CHANNEL")
        idle_until_stopped(f"kartabl poll {channel}: nothing to poll in the channels file")
        return
    stop = threading.Event() if once else stop_on_signals()
    runners = [Runner(source, db.session_factory(), stop) for source in sources]
    if once:
        try:
            r = poll_each(runners)
        except Exception as exc:  # the error's text is the adapter's, secrets masked
            out.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(1) from None
        out.print(f"{r.fetched} fetched, {r.created} new, {r.duplicates} duplicate, "
                  f"{r.skipped} skipped, {r.quarantined} quarantined")
        return
    for t in start_runners(runners, daemon=False):  # each finishes its batch on a stop
        t.join()


def register(parent: typer.Typer) -> None:
    parent.command("poll")(poll)
