"""The app's background jobs: one health shape in /health and /metrics, and due work fired by the app."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.db.base import utcnow
from core.jobs import service as tasks
from core.jobs.models import TaskState
from core.jobs.tasks import DueTask
from tests.conftest import keyword_engine, make_settings, responses
from tests.support.waiting import until

SHAPE = {"state", "last_run", "last_success", "last_error", "last_error_at", "failures", "next_run", "lease",
         "lease_held", "heartbeat", "runs"}


async def test_every_job_reports_one_shape(app_client: httpx.AsyncClient) -> None:
    workers = (await app_client.get("/health")).json()["workers"]
    for name in ("outbox", "uploads-sweep", "due-tasks", "nlu-model-sync"):
        assert SHAPE <= set(workers[name]), name
    assert workers["outbox"]["state"] == "running" and workers["outbox"]["lease"] is None
    assert {"sent", "failed_attempts", "failed"} <= set(workers["outbox"])
    assert workers["uploads-sweep"]["lease"] == "attachments:sweep-uploads"
    metrics = (await app_client.get("/metrics")).text
    assert 'switchboard_job_state{job="outbox",state="running"} 1.0' in metrics
    assert 'switchboard_job_failures_in_a_row{job="outbox"} 0.0' in metrics


async def test_the_app_fires_due_work_with_the_registered_handler(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    settings: Settings = make_settings(db_url, due_tasks_poll_seconds=0.05)
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    fired: list[DueTask] = []

    async def remind(session: AsyncSession, task: DueTask) -> None:
        fired.append(task)

    async with app.router.lifespan_context(app):
        state = app.state.switchboard
        state.task_handlers.register("test.remind", remind)
        async with sessionmaker() as session, session.begin():
            await tasks.schedule(session, "test.remind", "customer:1", utcnow() - timedelta(seconds=1), {"n": 1})
        runner = state.due_tasks
        assert runner is not None
        await until(lambda: runner.stats.fired == 1, "the app's runner fires the task (committed)")
        assert len(fired) == 1 and fired[0].key == "customer:1" and fired[0].payload == {"n": 1}
        async with sessionmaker() as session:
            row = await tasks.get(session, "test.remind", "customer:1")
        assert row is not None and row.state == TaskState.done
        health = state.jobs.health()["due-tasks"]
        assert health["fired"] == 1
