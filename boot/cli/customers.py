"""``kartabl customer``: look at a customer, and the two explicit, audited ways to join
identities (:func:`router.identity.link_identity` and :func:`router.identity.merge_customers`).

Nothing joins customers by itself: a Telegram (or Rubika) user who shares a phone number keeps
it as a hint on their message (``meta["contact"]``), shown by ``kartabl customer show``, until a
coordinator links it here (or merges them with the customer who texted from that number).
Every action names the person who takes it (``--by``): the permission checks and the audit
trail are theirs, exactly as in the console.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl import db
from kartabl.errors import WorkflowError
from kartabl.models import Channel, Customer, Identity, Message, Person

out = Console()
app = typer.Typer(help="Customers: show, link an identity, merge two.", no_args_is_help=True)

_BY = typer.Option(..., "--by", help="Username of the person taking the action (audited).")
CONTACT_HINTS = 10  # the newest shared contacts shown


def _actor(session: Session, username: str) -> Person:
    person = session.scalar(select(Person).where(Person.username == username))
    if person is None:
        raise typer.BadParameter(f"no person named {username!r}", param_hint="--by")
    return person


def _fail(exc: WorkflowError) -> typer.Exit:
    out.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
    return typer.Exit(1)


@app.command("show")
def show(customer_id: int) -> None:
    """A customer's identities, and the phone numbers they shared on a messenger (not
    linked: a hint for `kartabl customer link`)."""
    with db.session_scope() as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise typer.BadParameter(f"customer {customer_id} does not exist")
        out.print(f"customer {customer.id}: {escape(customer.display_name or '')}")
        if customer.merged_into_id is not None:
            out.print(f"merged into customer {customer.merged_into_id}")
        table = Table("kind", "address")
        for ident in session.scalars(select(Identity).where(Identity.customer_id == customer.id)
                                     .order_by(Identity.id)):
            table.add_row(ident.kind, escape(ident.address))
        out.print(table)
        for hint in _contact_hints(session, customer.id):
            owner = session.scalar(select(Identity.customer_id).where(
                Identity.kind == "phone", Identity.address == hint["phone"]))
            whose = ("whose number, Rubika does not say" if hint["own"] is None else
                     "their own number" if hint["own"] else "someone's number, not theirs")
            where = (" (already this customer's)" if owner == customer.id else
                     f" (customer {owner} has it: merge to join)" if owner else "")
            out.print(f"shared on {hint['channel']} (message {hint['message']}): "
                      f"{hint['phone']}, {whose}{where}", soft_wrap=True)


def _contact_hints(session: Session, customer_id: int) -> list[dict[str, Any]]:
    hints: dict[str, dict[str, Any]] = {}
    rows = session.execute(
        select(Message.id, Message.channel, Message.meta)
        .where(Message.customer_id == customer_id,
               Message.channel.in_((Channel.TELEGRAM, Channel.BALE, Channel.RUBIKA)))
        .order_by(Message.id.desc()).limit(500)
    ).all()
    for mid, channel, meta in rows:
        contact = (meta or {}).get("contact")
        if isinstance(contact, dict) and contact.get("phone") not in hints:
            own = contact.get("own")  # None: the messenger does not say (Rubika)
            hints[contact["phone"]] = {"phone": contact["phone"],
                                       "own": None if own is None else bool(own),
                                       "channel": Channel(channel).value, "message": mid}
    return list(hints.values())[:CONTACT_HINTS]


@app.command("link")
def link(
    customer_id: int,
    by: str = _BY,
    phone: str = typer.Option("", help="A phone number (any form: 0912…, +98…, Persian digits)."),
    email: str = typer.Option("", help="An email address."),
    telegram: str = typer.Option("", help="A Telegram user id."),
    bale: str = typer.Option("", help="A Bale user id."),
    rubika: str = typer.Option("", help="A Rubika user id (u0...)."),
) -> None:
    """Give the customer one more identity (admins, coordinators, or the merge permission).
    Refused when another customer has it: that is a merge."""
    from router.identity import link_identity

    given = [(k, v) for k, v in (("phone", phone), ("email", email), ("telegram", telegram),
                                 ("bale", bale), ("rubika", rubika)) if v]
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one of --phone, --email, --telegram, --bale, --rubika")
    (kind, address), = given
    try:
        with db.session_scope() as session:
            ident = link_identity(session, _actor(session, by), customer_id, kind, address)
            linked = f"{ident.kind} {ident.address} is customer {ident.customer_id}'s"
    except ValueError as exc:  # not an address of that kind
        raise typer.BadParameter(str(exc), param_hint=f"--{kind}") from None
    except WorkflowError as exc:
        raise _fail(exc) from None
    out.print(escape(linked))


@app.command("merge")
def merge(source_id: int, target_id: int, by: str = _BY) -> None:
    """Merge customer SOURCE into TARGET: identities, conversations and messages move to
    TARGET (the merge permission or admin; audited with everything that moved)."""
    from router.identity import merge_customers

    try:
        with db.session_scope() as session:
            merge_customers(session, _actor(session, by), source_id, target_id)
    except WorkflowError as exc:
        raise _fail(exc) from None
    out.print(f"customer {source_id} merged into {target_id}")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="customer")
