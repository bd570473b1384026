"""``kartabl search``: the search index (:mod:`kartabl.search`).

``kartabl search reindex`` empties ``search_doc`` and rebuilds it from the messages, notes
and sent replies, with a progress bar. The index is written with its sources, so this is
for a database that predates it (after ``kartabl migrate`` adds it) or one suspected
wrong; searches meanwhile see a partial index.
"""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kartabl import db
from kartabl import search as index

out = Console()
app = typer.Typer(help="The search index of messages, notes and replies.", no_args_is_help=True)


@app.command("reindex")
def reindex(batch: int = typer.Option(5000, min=100, help="Rows per transaction.")) -> None:
    """Rebuild the search index from the messages, notes and sent replies."""
    started = time.monotonic()
    with db.session_factory()() as session:
        total = index.count_sources(session)
        columns = (TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=out, transient=True) as progress:
            task = progress.add_task("indexing", total=total)
            written = index.reindex(session, batch=batch,
                                    progress=lambda n: progress.advance(task, n))
    out.print(f"indexed {written} text(s) in {time.monotonic() - started:.1f} s")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="search")
