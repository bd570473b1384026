"""Like :mod:`workers.setup`, plus dramatiq's Prometheus middleware (port 9191)::

    dramatiq workers.setup_metrics workers.actors -p 2 -t 8 -Q inbound outbound
"""

from __future__ import annotations

from config.settings import get_settings
from kartabl import logs
from workers.broker import setup_broker

settings = get_settings()
settings.check_fleet()
logs.configure(settings)
broker = setup_broker(settings, prometheus=True)
