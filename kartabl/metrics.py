"""Prometheus metrics, defined once. /metrics serves them from the web process; worker
processes expose theirs through dramatiq's Prometheus middleware when enabled."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INGESTED = Counter("kartabl_messages_ingested_total", "Inbound messages stored (new rows).")
DUPLICATES = Counter("kartabl_messages_duplicate_total", "Inbound messages already stored.")
ROUTED = Counter("kartabl_messages_routed_total", "Inbound messages routed.")
ROUTE_LATENCY = Histogram(
    "kartabl_route_latency_seconds",
    "From inbound commit to assignment.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REPLIES = Counter("kartabl_replies_total", "Reply state changes by the outbox.", ["state"])
SWEPT = Counter("kartabl_swept_total", "Items re-enqueued by the sweep.", ["kind"])
