"""``kartabl email``: the IMAP pollers, backfill, and the quarantine of bad mail."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from boot.cli.signals import idle_until_stopped, stop_on_signals
from config.channels import Mailbox, get_channels

if TYPE_CHECKING:
    from config.settings import Settings

out = Console()
app = typer.Typer(help="The email channel: IMAP pollers, backfill, quarantined mail.",
                  no_args_is_help=True)


def _mailboxes(name: str) -> list[Mailbox]:
    """The IMAP mailboxes to work on: all, or the one named; a clear error otherwise."""
    from config.settings import get_settings

    if get_settings().channels_file is None:
        raise typer.BadParameter(
            "no channels file is configured: set KARTABL_CHANNELS_FILE "
            "(see config/channels.example.toml)", param_hint="KARTABL_CHANNELS_FILE",
        )
    from channels.email.service import imap_mailboxes

    boxes = imap_mailboxes(get_channels())
    if name:
        chosen = [m for m in boxes if m.name == name]
        if not chosen:
            known = ", ".join(m.name for m in boxes) or "none"
            raise typer.BadParameter(
                f"no mailbox named {name!r} with an IMAP account (configured: {known})",
                param_hint="--mailbox",
            )
        return chosen
    if not boxes:
        raise typer.BadParameter("the channels file has no mailbox with an [imap] account",
                                 param_hint="KARTABL_CHANNELS_FILE")
    return boxes


def _setup(kind: str = "tool") -> Settings:
    """Boot this process; returns the settings it booted with, which the email service's
    entry points take (they never read them themselves)."""
    from boot import start

    # Routing is enqueued after each commit; with the embedded stub broker there is no
    # worker in this process and the running instance's sweep routes what is stored.
    # A one-shot command keeps its output plain.
    return start(kind, configure_logs=kind != "tool").settings


@app.command("poll")
def poll(
    mailbox: str = typer.Option("", help="Only this mailbox (default: all configured)."),
    once: bool = typer.Option(False, "--once", help="One pass over each mailbox, then exit."),
) -> None:
    """Fetch new mail from the IMAP mailboxes: IDLE or polling, until SIGTERM or SIGINT."""
    from channels.email.imap import MailboxUnavailable
    from channels.email.service import make_poller, start_pollers

    try:
        boxes = _mailboxes(mailbox)
    except typer.BadParameter as exc:
        if once or mailbox:
            raise  # a command-line mistake: say so, boot nothing
        _setup("email")  # a process that idles has booted too, as the fleet's other lines
        idle_until_stopped(f"kartabl email poll: {exc.message}")
        return
    settings = _setup("email")  # routing is enqueued after each commit
    if once:
        failed = 0
        for box in boxes:
            try:
                r = make_poller(settings, get_channels(), box).poll_once()
            except MailboxUnavailable as exc:
                failed += 1
                out.print(f"[red]{box.name}: unreachable: {escape(str(exc))}[/red]")
                continue
            out.print(f"{box.name}: {r.fetched} fetched, {r.created} new, "
                      f"{r.duplicates} duplicate, {r.quarantined} quarantined")
        raise typer.Exit(1 if failed else 0)
    # Graceful: each poller finishes (and commits and acknowledges) its current batch.
    stop = stop_on_signals()
    threads = start_pollers(settings, get_channels(), stop, boxes)
    while any(t.is_alive() for t in threads) and not stop.wait(1.0):
        pass
    for t in threads:
        t.join()


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)",
                                 param_hint="--since") from exc


@app.command("backfill")
def backfill(
    since: str = typer.Option(..., help="Fetch mail received on or after this day (YYYY-MM-DD)."),
    mailbox: str = typer.Option("", help="Only this mailbox (default: all configured)."),
) -> None:
    """Ingest every mail since a date, e.g. after a long outage; already stored mail is
    recognised and skipped."""
    from channels.email.imap import MailboxUnavailable
    from channels.email.service import backfill as run_backfill

    day = _parse_date(since)
    boxes = _mailboxes(mailbox)
    settings = _setup()
    failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=out) as progress:
        for box in boxes:
            task = progress.add_task(box.name, total=None)

            def report(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                r = run_backfill(settings, get_channels(), box, day, report)
            except MailboxUnavailable as exc:
                failed += 1
                progress.console.print(
                    f"[red]{box.name}: unreachable: {escape(str(exc))}[/red]")
                continue
            progress.console.print(
                f"{box.name}: {r.fetched} mail since {day}: {r.created} new, "
                f"{r.duplicates} already stored, {r.quarantined} quarantined"
            )
    raise typer.Exit(1 if failed else 0)


@app.command("quarantine")
def quarantine() -> None:
    """List the mail kept aside (oversized, unparseable) and not re-imported yet."""
    from sqlalchemy import select

    from kartabl import db
    from kartabl.models import QuarantinedMail

    with db.session_factory()() as session:
        rows = session.execute(
            select(QuarantinedMail.id, QuarantinedMail.mailbox, QuarantinedMail.uid,
                   QuarantinedMail.size, QuarantinedMail.reason, QuarantinedMail.created_at)
            .where(QuarantinedMail.reimported_at.is_(None))
            .order_by(QuarantinedMail.id)
        ).all()
    table = Table("id", "mailbox", "uid", "size", "reason", "date")
    for qid, box, uid, size, reason, created in rows:
        # The reason quotes the mail (a parser error on its contents): text, not markup.
        table.add_row(str(qid), box, str(uid or ""), str(size), escape(reason[:100]),
                      created.isoformat(timespec="seconds"))
    out.print(table)
    out.print(f"{len(rows)} quarantined mail")


@app.command("reimport")
def reimport(
    quarantine_id: int = typer.Argument(0, help="The quarantined mail's id; omit with --all."),
    all_: bool = typer.Option(False, "--all", help="Every quarantined mail."),
) -> None:
    """Parse quarantined mail again (after a parser fix or a raised size limit) and ingest
    it. Mail that still fails stays quarantined, with the new reason."""
    from channels.email.service import reimport_all, reimport_one
    from kartabl.errors import NotFound

    if bool(quarantine_id) == all_:
        raise typer.BadParameter("give one quarantined mail's id, or --all")
    settings = _setup()
    try:
        outcomes = (reimport_all(settings, get_channels()) if all_
                    else [reimport_one(settings, get_channels(), quarantine_id)])
    except NotFound as exc:
        raise typer.BadParameter(str(exc), param_hint="ID") from exc
    still = 0
    for o in outcomes:
        if o.already:
            out.print(f"#{o.quarantine_id}: already re-imported as message {o.message_id}")
        elif o.reason is not None:
            still += 1
            out.print(f"#{o.quarantine_id}: still quarantined: {escape(o.reason)}")
        elif o.repaired:
            out.print(f"#{o.quarantine_id}: message {o.message_id} repaired (its body reads)")
        else:
            out.print(f"#{o.quarantine_id}: imported as message {o.message_id}")
    out.print(f"{len(outcomes) - still} imported, {still} still quarantined")
    raise typer.Exit(1 if still else 0)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="email")
