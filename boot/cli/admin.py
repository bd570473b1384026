"""Administrative commands: schema, teams and people."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import get_settings
from kartabl import db
from kartabl.models import Person, Role, Team, TeamMember

out = Console()
team_app = typer.Typer(help="Teams (departments).", no_args_is_help=True)
person_app = typer.Typer(help="People: admins, coordinators and agents.", no_args_is_help=True)


def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from kartabl.migrate import upgrade

    url = get_settings().database_url
    upgrade(url)
    out.print(f"[green]schema is up to date[/] ({url.split('@')[-1]})")


def sync_config() -> None:
    """Create the teams named in the routing file."""
    from config.routing import get_routing
    from router.teams import sync_teams

    with db.session_scope() as session:
        created = sync_teams(session, get_routing())
    out.print(f"teams created: {created}")


@team_app.command("add")
def team_add(name: str, title: str = typer.Option("", help="Display title.")) -> None:
    """Add a team."""
    with db.session_scope() as session:
        if session.scalar(select(Team).where(Team.name == name)):
            raise typer.BadParameter(f"team {name!r} already exists")
        session.add(Team(name=name, title=title))
    out.print(f"team [bold]{name}[/] added")


@team_app.command("list")
def team_list() -> None:
    """List teams and their members."""
    table = Table("team", "title", "members")
    with db.session_scope() as session:
        for team in session.scalars(select(Team).order_by(Team.name)):
            members = session.scalars(
                select(Person.username).join(TeamMember).where(TeamMember.team_id == team.id)
            ).all()
            table.add_row(team.name, team.title, ", ".join(members))
    out.print(table)


@person_app.command("add")
def person_add(
    username: str,
    role: Role = typer.Option(Role.AGENT, help="admin, coordinator or agent."),
    team: list[str] = typer.Option([], help="Team name; repeat for several."),
    name: str = typer.Option("", help="Display name."),
    email: str = typer.Option("", help="Work email."),
    capacity: int = typer.Option(20, min=0, help="Open conversations the router may assign."),
    locale: str = typer.Option("fa", help="fa or en."),
    can_merge: bool = typer.Option(False, help="May merge customers."),
    password: str = typer.Option(
        "",
        help="Password (at least 8 characters); a random one is generated and printed "
        "when omitted.",
        envvar="KARTABL_NEW_PASSWORD",
    ),
) -> None:
    """Add a person."""
    from kartabl.passwords import generate_password, hash_password

    generated = not password
    password = password or generate_password()
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--password") from exc
    with db.session_scope() as session:
        if session.scalar(select(Person).where(Person.username == username)):
            raise typer.BadParameter(f"person {username!r} already exists")
        teams = []
        for t in team:
            found = session.scalar(select(Team).where(Team.name == t))
            if found is None:
                raise typer.BadParameter(f"no team named {t!r} (kartabl team add {t})")
            teams.append(found)
        person = Person(
            username=username,
            role=role,
            display_name=name or username,
            email=email or None,
            capacity=capacity,
            locale=locale,
            can_merge=can_merge,
            password_hash=hashed,
        )
        session.add(person)
        session.flush()
        for found in teams:
            session.add(TeamMember(team_id=found.id, person_id=person.id))
    out.print(f"{role.value} [bold]{username}[/] added")
    if generated:
        out.print(f"password: [bold]{password}[/] (shown once)")


def _person(session: Session, username: str) -> Person:
    found = session.scalar(select(Person).where(Person.username == username))
    if found is None:
        raise typer.BadParameter(f"no person named {username!r}", param_hint="USERNAME")
    return found


@person_app.command("reset-password")
def person_reset_password(
    username: str,
    base_url: str = typer.Option(
        "", help="The console's address, to print a whole link (default: KARTABL_BASE_URL, "
        "else http://WEB_HOST:PORT)."
    ),
) -> None:
    """Print a one-time link that sets a new password (valid KARTABL_PASSWORD_RESET_HOURS)."""
    from console.auth import create_password_reset, reset_link

    s = get_settings()
    with db.session_scope() as session:
        token = create_password_reset(session, None, _person(session, username), settings=s)
    link = reset_link(token, settings=s, base_url=base_url)
    out.print(f"reset link for [bold]{username}[/] (shown once, valid "
              f"{s.password_reset_hours:g} h): {link}", soft_wrap=True)


@person_app.command("revoke-sessions")
def person_revoke_sessions(username: str) -> None:
    """Sign a person out of every browser (their API tokens are revoked one by one)."""
    from console.auth import revoke_sessions

    with db.session_scope() as session:
        n = revoke_sessions(session, None, _person(session, username).id)
    out.print(f"{n} session(s) of [bold]{username}[/] ended")


@person_app.command("list")
def person_list() -> None:
    """List people."""
    table = Table("username", "role", "available", "capacity", "name")
    with db.session_scope() as session:
        for p in session.scalars(select(Person).order_by(Person.username)):
            table.add_row(
                p.username, p.role.value, str(p.available), str(p.capacity), p.display_name
            )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("sync-config")(sync_config)
    app.add_typer(team_app, name="team")
    app.add_typer(person_app, name="person")
