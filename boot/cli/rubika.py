"""``kartabl rubika set-webhook``: registering the Rubika bots with ``mode = "webhook"``
(``updateBotEndpoints``). Polling bots run under ``kartabl poll rubika``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
app = typer.Typer(help="The Rubika bots: webhook registration (polling: kartabl poll rubika).",
                  no_args_is_help=True)


@app.command("set-webhook")
def set_webhook(
    bot: str = typer.Option("", help="Only this bot (default: every webhook bot)."),
    base_url: str = typer.Option(
        "", "--base-url",
        help="The console's public https address: each bot is registered at "
             "<base-url>/webhooks/rubika/<bot name>/<secret> (default: KARTABL_BASE_URL)."),
) -> None:
    """Register the webhook bots with Rubika (updateBotEndpoints, type ReceiveUpdate). Any
    problem with the arguments or a bot's settings is reported before anything is sent."""
    import httpx

    from channels.rubika import registration
    from channels.rubika.api import RubikaError
    from channels.telegram.registration import check_base_url
    from config.channels import get_channels
    from config.settings import get_settings
    from kartabl.logs import redact

    base_url = base_url or get_settings().base_url
    problem = check_base_url(base_url) if base_url else \
        "--base-url is required (or set KARTABL_BASE_URL)"
    if problem:
        raise typer.BadParameter(problem, param_hint="--base-url")
    bots = [b for b in get_channels().rubika.bots
            if (b.name == bot if bot else b.mode == "webhook")]
    if not bots:
        which = f"named {bot!r}" if bot else 'with mode = "webhook"'
        raise typer.BadParameter(f"no Rubika bot {which} in the channels file",
                                 param_hint="--bot")
    problems = [p for p in (registration.check(b) for b in bots) if p]
    if problems:  # all or nothing
        raise typer.BadParameter("; ".join(problems), param_hint="--bot")
    failed = 0
    for b in bots:
        try:
            answer = registration.register(b, base_url)
        except (RubikaError, httpx.HTTPError) as exc:
            failed += 1
            out.print(f"[red]{b.name}: updateBotEndpoints failed: "
                      f"{escape(redact(str(exc)) or type(exc).__name__)}[/red]")
            continue
        if answer != "Done":
            failed += 1
            out.print(f"[red]{b.name}: Rubika answered {escape(answer)!r}[/red]")
            continue
        # never the URL itself: its last segment is the secret
        out.print(f"{b.name}: registered at {escape(base_url.rstrip('/'))}/webhooks/rubika/"
                  f"{b.name}/***")
    raise typer.Exit(1 if failed else 0)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="rubika")
