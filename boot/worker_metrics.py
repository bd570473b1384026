"""Like :mod:`boot.worker`, plus dramatiq's Prometheus middleware (port 9191)::

    dramatiq boot.worker_metrics workers.actors -p 1 -t 8 -Q inbound outbound
"""

from __future__ import annotations

from boot.kinds import start_worker_process

runtime = start_worker_process(prometheus=True)
