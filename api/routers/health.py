from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import State
from api.supervisor import read_state
from core.db.lease import held_leases

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {
    "description": "The database is unreachable (the same body, with the error)",
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}}})
async def health(state: State, response: Response) -> dict[str, Any]:
    """The database, every worker and every channel, with their last errors."""
    database: dict[str, Any] = {"backend": state.db_engine.dialect.name}
    try:
        async with asyncio.timeout(5):
            async with state.db_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        database["state"] = "ok"
    except Exception as exc:
        database.update(state="error", error=f"{type(exc).__name__}: {exc}"[:300])
    # Every background job in one shape (state, last run and success, last error, failures in a row, next run,
    # lease), with what each counts itself (the outbox's deliveries).
    workers: dict[str, Any] = state.jobs.health()
    if not state.settings.workers_enabled:
        workers.setdefault("outbox", {"state": "disabled"})
    channels = {adapter.kind: adapter.health.as_dict() for adapter in state.channels}
    # The version this instance parses with, the one the database says all should, and whether they agree.
    nlu: dict[str, Any] = state.model_sync.health()
    bridge_down = False
    if state.redis is not None:
        workers["redis_events"] = state.redis.health()
        if state.live is not None:
            workers["redis_events"]["catch_ups"] = state.live.resyncs
        # Live updates from other instances stop while it is down; the catch-up keeps them seconds late.
        bridge_down = state.redis.state == "down"
    leases = held_leases()
    if leases:
        workers["leases"] = {"held": leases}
    processes: dict[str, Any] = {"pid": os.getpid(), "supervised": False}
    supervisor = await asyncio.to_thread(read_state, state.settings.supervisor_state_file)
    if supervisor is not None:
        processes.update(supervised=True, workers=supervisor.get("workers"), pids=supervisor.get("pids"),
                         restarts=supervisor.get("restarts", 0),
                         restarts_by_reason=supervisor.get("restarts_by_reason", {}),
                         last_restart=supervisor.get("last_restart"))
    ok = database["state"] == "ok"
    outbox = state.jobs.get("outbox")
    degraded = any(c["state"] == "error" for c in channels.values()) or (
        state.settings.workers_enabled and (outbox is None or outbox.state == "stopped")
    ) or bridge_down or not nlu["in_sync"]
    response.status_code = 200 if ok else 503
    return {"status": "error" if not ok else ("degraded" if degraded else "ok"), "database": database,
            "workers": workers, "processes": processes, "channels": channels, "nlu": nlu}


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
