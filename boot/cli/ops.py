"""Operational commands: inject messages, status, dead letters."""

from __future__ import annotations

import json
import uuid

import dramatiq
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from config.settings import get_settings
from kartabl import db
from kartabl.models import Channel

out = Console()
dead_app = typer.Typer(help="Dead-lettered tasks (failed after all retries).", no_args_is_help=True)


def inject(
    channel: Channel = typer.Option(..., help="email, sms, telegram or bale."),
    sender: str = typer.Option(..., "--from", help="Email address, phone number or messenger id."),
    text: str = typer.Option(..., help="Message text."),
    name: str = typer.Option("", help="Sender's display name."),
    subject: str = typer.Option("", help="Subject (email)."),
    external_id: str = typer.Option("", "--id", help="Channel's id; random when omitted."),
    in_reply_to: str = typer.Option("", help="Message-ID this replies to (email)."),
    count: int = typer.Option(1, min=1, help="Inject this many copies, with distinct ids."),
) -> None:
    """Inject an inbound message, as a channel adapter would (development and demo)."""
    from kartabl import ingest
    from kartabl.messages import InboundMessage
    from router.identity import identity_for

    try:
        _, address = identity_for(channel, sender)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from") from exc
    base = external_id or f"cli-{uuid.uuid4().hex}"
    msgs = [
        InboundMessage(
            channel=channel,
            external_id=base if count == 1 else f"{base}-{i}",
            sender=address,
            sender_name=name,
            subject=subject,
            text=text,
            in_reply_to=in_reply_to or None,
        )
        for i in range(count)
    ]
    _setup_queue()
    created = 0
    with db.session_factory()() as session, Progress(transient=True) as progress:
        task = progress.add_task("injecting", total=len(msgs))
        for start in range(0, len(msgs), 500):
            chunk = msgs[start : start + 500]
            created += sum(s.created for s in ingest.store_many(session, chunk))
            progress.advance(task, len(chunk))
    out.print(f"stored {created} new message(s), {len(msgs) - created} already known")


def _setup_queue() -> dramatiq.Broker:
    """Boot as a one-shot tool: the configured broker, so stored messages are enqueued; with
    the embedded stub broker there is no worker in this process, and the running instance's
    sweep routes them."""
    from boot import start

    broker = start("tool", configure_logs=False).broker
    assert broker is not None  # the tool kind installs one
    return broker


def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Queue depth, unrouted messages, unsent replies and dead letters."""
    from workers.status import queue_status

    broker = _setup_queue()
    with db.session_factory()() as session:
        st = queue_status(broker, session, get_settings())  # the CLI is the process edge
    if as_json:
        out.print_json(json.dumps(st, default=str))
        return
    table = Table("what", "count")
    for key, value in st.items():
        if isinstance(value, dict):
            for k, v in value.items():
                table.add_row(f"{key}.{k}", str(v))
        elif isinstance(value, list):  # mailboxes_failing: one row per mailbox, or 0
            for item in value:
                table.add_row(f"{key}.{item['name']}",
                              f"since {item['failing_since']}: {item['last_error']}")
            if not value:
                table.add_row(key, "0")
        else:
            table.add_row(key, str(value))
    out.print(table)


@dead_app.command("list")
def dead_list() -> None:
    """List dead letters."""
    from workers.deadletters import list_dead_letters

    letters = list_dead_letters(_setup_queue())
    table = Table("id", "queue", "actor", "args", "failed at", "error")
    for d in letters:
        table.add_row(
            d.message_id,
            d.queue,
            d.actor,
            json.dumps(d.args),
            str(d.failed_at),
            (d.error or "")[:80],
        )
    out.print(table)
    out.print(f"{len(letters)} dead letter(s)")


@dead_app.command("requeue")
def dead_requeue(
    message_id: str = typer.Argument("", help="The dead letter's id; omit with --all."),
    all_: bool = typer.Option(False, "--all", help="Requeue every dead letter."),
) -> None:
    """Put dead letters back on their queue."""
    from workers.deadletters import requeue

    if not message_id and not all_:
        raise typer.BadParameter("give a dead letter id, or --all")
    n = requeue(_setup_queue(), None if all_ else message_id)
    out.print(f"requeued {n} dead letter(s)")


def compose() -> None:
    """What each process kind (the Procfile's lines, and `kartabl run`) installs at start."""
    from boot import KINDS

    table = Table("kind", "roles", "installs")
    for kind in KINDS.values():
        table.add_row(kind.name, ", ".join(r.name for r in kind.roles),
                      ", ".join(sorted(p.value for p in kind.parts)))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("compose")(compose)
    app.command("inject")(inject)
    app.command("status")(status)
    app.add_typer(dead_app, name="dead-letters")
