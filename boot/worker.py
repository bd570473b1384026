"""The broker module of the fleet's dramatiq workers::

    dramatiq boot.worker workers.actors -p 1 -t 8 -Q inbound outbound

dramatiq imports it in each worker process (after the fork), before the actor modules
listed after it, so the process boots as a ``worker`` (broker, database, senders) before any
actor is declared. ``-Q`` goes last: it swallows every module named after it. Use
:mod:`boot.worker_metrics` instead to also serve dramatiq's Prometheus metrics (port 9191).
"""

from __future__ import annotations

from boot.kinds import start_worker_process

runtime = start_worker_process()
