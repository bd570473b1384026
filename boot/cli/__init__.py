"""The ``kartabl`` command. Sub-commands live in small modules by concern:

- :mod:`boot.cli.admin`: migrate, sync-config, team, person;
- :mod:`boot.cli.customers`: show a customer, link an identity, merge two (audited);
- :mod:`boot.cli.ops`: inject, status, dead-letters;
- :mod:`boot.cli.run`: web, worker, sweep, run (all-in-one);
- :mod:`boot.cli.email`: the email channel (``kartabl email poll|backfill|...``);
- :mod:`boot.cli.telegram`: Telegram and Bale bots (``kartabl telegram poll``);
- :mod:`boot.cli.sms`: SMS through Kavenegar (``kartabl sms poll``);
- :mod:`boot.cli.rubika`: Rubika bots (``kartabl rubika set-webhook``);
- :mod:`boot.cli.poll`: any registered polled channel (``kartabl poll CHANNEL``);
- :mod:`boot.cli.search`: the search index (``kartabl search reindex``).
"""

from __future__ import annotations

import typer

from boot.cli import admin, customers, email, ops, poll, rubika, run, search, sms, telegram

app = typer.Typer(
    help="Kartabl: the omnichannel support inbox.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)


@app.callback()
def _process_edge() -> None:
    # Every command is a process start: the settings are read here, once, and the database
    # pointed at (no connection yet). Commands that do more call boot.kinds.start.
    from config.routing import get_routing
    from config.settings import get_settings
    from kartabl import db, service_clock

    db.configure(get_settings())
    service_clock.configure(get_settings(), get_routing())


admin.register(app)
customers.register(app)
ops.register(app)
run.register(app)
email.register(app)
telegram.register(app)
sms.register(app)
rubika.register(app)
poll.register(app)
search.register(app)


def main() -> None:
    app()
