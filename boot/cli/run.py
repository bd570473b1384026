"""Long-running processes: web, worker, sweep (scheduler) and the all-in-one ``run``."""

from __future__ import annotations

import os
import sys
import threading

import typer
from rich.console import Console

from config.settings import get_settings

out = Console()


def web(
    host: str = typer.Option("", help="Bind address (default: KARTABL_WEB_HOST)."),
    port: int = typer.Option(0, help="Port (default: KARTABL_WEB_PORT)."),
) -> None:
    """Serve the web console and the JSON API."""
    from boot import start
    from boot.web import serve

    s = start("web").settings  # enqueues (webhooks, approvals) but runs no worker
    serve(s, host=host, port=port)


def worker(
    processes: int = typer.Option(0, help="Worker processes (default: KARTABL_WORKER_PROCESSES)."),
    threads: int = typer.Option(0, help="Threads per process (default: KARTABL_WORKER_THREADS)."),
    queues: list[str] = typer.Option([], "--queue", help="Only these queues; repeatable."),
) -> None:
    """Run dramatiq workers, each restarted at once when it dies (fleet mode: needs
    KARTABL_BROKER=redis)."""
    s = get_settings()
    if s.broker != "redis":
        raise typer.BadParameter(
            "`kartabl worker` serves the fleet and needs KARTABL_BROKER=redis; "
            "in the embedded mode `kartabl run` runs the workers in-process"
        )
    s.check_fleet()
    from workers.command import worker_argv

    argv = worker_argv(processes or s.worker_processes, threads or s.worker_threads, queues)
    # exec: the supervisor must receive the platform's SIGTERM itself (graceful stop); it
    # keeps that many dramatiq workers running and restarts any that dies (supervisor.py).
    os.execv(sys.executable, argv)  # noqa: S606 - argv is ours, no shell involved


def sweep(once: bool = typer.Option(False, help="Sweep once and exit.")) -> None:
    """Re-enqueue unrouted messages and unsent replies; reconcile and poll deliveries."""
    from boot import start
    from kartabl import db
    from workers.scheduler import run_scheduler
    from workers.sweeps import sweep_once

    runtime = start("scheduler")  # reconcile and delivery polling ask the senders
    s = runtime.settings
    try:
        if once:
            report = sweep_once(db.session_factory(), s)
            out.print(report)
            return
        run_scheduler(threading.Event(), settings=s)
    finally:
        runtime.close()


def run(
    demo: bool = typer.Option(True, help="Seed demo people and simulate customers and agents."),
) -> None:
    """All in one process: migrate, then web console, workers, sweeps (and the demo)."""
    from boot.cli.allinone import run_all_in_one

    run_all_in_one(demo=demo)


def register(app: typer.Typer) -> None:
    app.command("web")(web)
    app.command("worker")(worker)
    app.command("sweep")(sweep)
    app.command("run")(run)
