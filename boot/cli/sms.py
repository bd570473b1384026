"""``kartabl sms``: polling of Kavenegar's receive API (a fallback beside the callback)."""

from __future__ import annotations

import threading

import typer
from rich.console import Console
from rich.markup import escape

from boot.cli.signals import idle_until_stopped, stop_on_signals
from config.sms import SmsConfig

out = Console()
app = typer.Typer(help="SMS through Kavenegar: polling of received SMS.", no_args_is_help=True)


def _sms_config(once: bool) -> SmsConfig:
    from config.channels import get_channels
    from config.settings import get_settings

    if get_settings().channels_file is None:
        raise typer.BadParameter(
            "no channels file is configured: set KARTABL_CHANNELS_FILE "
            "(see config/channels.example.toml)", param_hint="KARTABL_CHANNELS_FILE")
    sms = get_channels().sms
    if sms is None:
        raise typer.BadParameter("the channels file has no [sms] section", param_hint="[sms]")
    if not sms.poll and not once:
        raise typer.BadParameter("[sms] poll = false: nothing to poll (--once polls anyway)",
                                 param_hint="[sms] poll")
    return sms


@app.command("poll")
def poll(once: bool = typer.Option(False, "--once", help="One pass, then exit.")) -> None:
    """Read unread SMS of our lines (sms/receive, isread=0), committing each batch at once
    (Kavenegar marks them read as it returns them), every poll_interval_s until SIGTERM or
    SIGINT."""
    from boot import start
    from channels.runner import Runner, poll_each
    from channels.runner import start as start_runners
    from channels.sms.kavenegar import redact
    from channels.sms.poller import lines
    from kartabl import db

    try:
        config = _sms_config(once)
    except typer.BadParameter as exc:
        if once:
            raise  # a command-line mistake: say so, boot nothing
        start("sms")  # a process that idles has booted too, as the fleet's other lines
        idle_until_stopped(f"kartabl sms poll: {exc.message}")
        return
    start("sms")  # routing is enqueued after each commit
    # Each line is polled by one process at a time (the runner's lock per line).
    stop = threading.Event() if once else stop_on_signals()
    runners = [Runner(line, db.session_factory(), stop) for line in lines(config)]
    if once:
        try:
            r = poll_each(runners)
        except Exception as exc:
            out.print(f"[red]{escape(redact(str(exc)))}[/red]")
            raise typer.Exit(1) from None
        out.print(f"{r.fetched} received, {r.created} new, {r.duplicates} duplicate, "
                  f"{r.skipped} malformed")
        return
    for t in start_runners(runners, daemon=False):  # each finishes (stores) its pass in hand
        t.join()


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="sms")
