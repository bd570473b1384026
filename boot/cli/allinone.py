"""``kartabl run``: everything in one process, for a laptop and for the demo.

The web console (uvicorn) runs in the main thread; the dramatiq worker threads, the
scheduler, the IMAP pollers of the configured mailboxes and the demo driver run beside it.
The demo without a channels file adds the Kavenegar and Bot API stand-ins with the SMS and
bot pollers (:mod:`boot.demo_channels`). On Ctrl-C or SIGTERM uvicorn stops serving,
then the demo stops, then the pollers finish their batch, then the scheduler finishes its
tick, then the worker finishes the messages it holds, and last the stand-ins stop. Anything
still queued in memory is re-enqueued by the first sweep of the next start, because the
database, not the queue, says what is unrouted or unsent.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from config.settings import get_settings

log = logging.getLogger("kartabl.run")


def _when_serving(host: str, port: int, stop: threading.Event,
                  then: Callable[[str, int], None], timeout_s: float = 60.0) -> None:
    """Call ``then(host, port)`` once something accepts connections there."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                break
        except OSError:
            stop.wait(0.1)
    else:
        return
    then(host, port)


def run_all_in_one(*, demo: bool) -> None:

    from boot import start
    from boot.web import serve
    from kartabl import db, logs
    from kartabl.migrate import upgrade
    from workers.embedded import EmbeddedWorker
    from workers.scheduler import run_scheduler

    s = get_settings()
    if demo:
        # The demo should show replies delivered and conversations swept within seconds.
        s = s.model_copy(
            update={"sweep_interval_s": min(s.sweep_interval_s, s.demo_interval_s)}
        )
    s.check_fleet()  # real channels (a channels file) need a real secret key
    logs.configure(s)
    upgrade(s.database_url)  # before booting: the sandbox sender's table must exist
    db.configure(s)
    with db.session_scope() as session:
        from config.routing import get_routing
        from router.teams import sync_teams

        sync_teams(session, get_routing())
    # The demo, with no channels file, runs SMS, Telegram and Bale through the real adapters
    # against local stand-ins of Kavenegar and the Bot API (boot.demo_channels).
    demo_channels = None
    if demo:
        from boot.demo_channels import start_unless_configured

        demo_channels = start_unless_configured(s)
    runtime = start("run", s, channels=demo_channels.config if demo_channels else None,
                    configure_logs=False)
    sandboxed = runtime.sandboxed

    stop = threading.Event()
    worker = EmbeddedWorker.start(s, broker=runtime.broker)
    scheduler = threading.Thread(
        target=run_scheduler,
        kwargs={"stop_event": stop, "settings": s, "handle_signals": False},
        name="scheduler",
        daemon=True,
    )
    scheduler.start()
    # A poller per source of every polled channel (channels.polled): the configured
    # mailboxes, polling bots and SMS lines, or the demo's stand-ins. Each finishes its
    # current batch when `stop` is set.
    from channels import polled
    from channels.runner import start as start_runners
    from config.channels import get_channels

    channels = demo_channels.config if demo_channels is not None else get_channels()
    pollers = start_runners(polled.runners(channels, s, db.session_factory(), stop))
    if demo_channels is not None:
        from console.app import app  # the instance uvicorn serves below ("console.app:app")

        demo_channels.serve_callback(app, s.web_host, s.web_port)
    driver = None
    if demo:
        from boot.demo import DemoDriver, print_login, seed

        with db.session_scope() as session:
            seed(session)
        from boot.demo_widget import start_shop  # the website chat widget on a shop page

        with db.session_scope() as session:
            shop = start_shop(s, session)
        # With real channels configured, the demo's customers write only where the sandbox
        # answers: a demo reply must never reach a real phone or chat.
        driver = DemoDriver(stop, interval_s=s.demo_interval_s, channels=demo_channels,
                            only=None if demo_channels is not None else sandboxed)
        driver.start()
        # Printed once the console answers, so the sign-in URL is the last thing the
        # terminal shows after uvicorn's start-up lines (until the demo's log goes on).
        threading.Thread(target=_when_serving, args=(s.web_host, s.web_port, stop, print_login),
                         name="sign-in-banner", daemon=True).start()
    try:
        # uvicorn handles SIGINT/SIGTERM itself and returns when it has drained requests.
        serve(s)
    finally:
        stop.set()
        if driver is not None:
            driver.join(timeout=10)
            shop.shutdown()
        for poller in pollers:
            poller.join(timeout=30)
        scheduler.join(timeout=s.sweep_interval_s + 30)
        worker.stop()
        runtime.close()  # the senders: the worker and the scheduler no longer use them
        if demo_channels is not None:
            # Last: the senders (worker) and the delivery polling (scheduler) talk to the
            # stand-ins too, not only the pollers joined above.
            demo_channels.stop()
        log.info("stopped")
