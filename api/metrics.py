"""Prometheus metrics (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("switchboard_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("switchboard_http_request_seconds", "HTTP request latency", ["route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
INGESTED = Counter("switchboard_messages_ingested_total", "Inbound messages ingested", ["channel", "action"])
OUTBOX_EVENTS = Counter("switchboard_outbox_events_total", "Outbox deliveries", ["event"])
QUARANTINED = Counter("switchboard_quarantined_total", "Channel payloads quarantined", ["channel"])
