"""Each instance follows the model version the database names, with or without a switch event (issue 20)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.db.lease import exclusive
from core.nlu_admin import repository as nlu_repo
from nlu.embedded import ACTIVE_FILE, EmbeddedEngine
from tests.conftest import responses


@pytest.fixture
def models(tmp_path: Path, trained_model_dir: Path) -> tuple[Path, str, str]:
    path = tmp_path / "models"
    shutil.copytree(trained_model_dir, path)
    first = (path / ACTIVE_FILE).read_text().strip()
    second = f"{first}-second"
    shutil.copytree(path / first, path / second)
    return path, first, second


@pytest.fixture
async def client(settings: Settings, db_engine: AsyncEngine, models: tuple[Path, str, str]
                 ) -> AsyncIterator[httpx.AsyncClient]:
    engine = EmbeddedEngine(models[0])
    engine.load_active()
    app = create_app(settings.model_copy(update={"model_sync_seconds": 0.1, "seed_nlu_data": True}), nlu_engine=engine,
                     responses=responses, configure_logs=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def health_nlu(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/health")).json()
    return body


async def test_a_switch_without_an_event_is_followed_from_the_database(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], models: tuple[Path, str, str],
    admin: tuple[Any, dict[str, str]],
) -> None:
    model_dir, first, second = models
    # The first instance on a database makes the version it loaded the active one.
    body = await health_nlu(client)
    assert body["nlu"]["version"] == body["nlu"]["active"] == first
    assert body["nlu"]["in_sync"] and body["status"] == "ok"
    async with sessionmaker() as session:
        assert await nlu_repo.active_version(session) == first

    # Another instance switched while this one heard nothing (Redis down): only the database says so.
    async with sessionmaker() as session, session.begin():
        await nlu_repo.set_active_version(session, second)
    async with asyncio.timeout(20):
        while (body := await health_nlu(client))["nlu"]["version"] != second:
            await asyncio.sleep(0.02)
    assert body["nlu"]["active"] == second and body["nlu"]["in_sync"]
    assert (model_dir / ACTIVE_FILE).read_text().strip() == first  # a follower never writes ACTIVE
    versions = (await client.get("/admin/nlu/versions", headers=admin[1])).json()
    by_name = {v["version"]: v for v in versions}
    assert by_name[second]["active"] and by_name[second]["loaded_here"]
    assert not by_name[first]["active"]

    # A version this instance does not have: it keeps parsing with what it has, and says so.
    async with sessionmaker() as session, session.begin():
        await nlu_repo.set_active_version(session, "no-such-version")
    # Health says "not in sync" as soon as the database names the version, and the error once the load was
    # tried: wait for the error (waiting only for in_sync raced with the attempt on a busy machine).
    async with asyncio.timeout(20):
        while "no-such-version" not in ((body := await health_nlu(client))["nlu"].get("last_error") or ""):
            await asyncio.sleep(0.02)
    assert not body["nlu"]["in_sync"] and body["status"] == "degraded"
    assert body["nlu"]["version"] == second and "no-such-version" in body["nlu"]["last_error"]


async def test_activation_is_recorded_and_instances_are_listed(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], models: tuple[Path, str, str],
    admin: tuple[Any, dict[str, str]],
) -> None:
    _, first, second = models
    response = await client.post(f"/admin/nlu/versions/{second}/activate", headers=admin[1])
    assert response.status_code == 200, response.text
    async with sessionmaker() as session:
        assert await nlu_repo.active_version(session) == second
    instance = client.app.state.switchboard.instance_id  # type: ignore[attr-defined]
    async with asyncio.timeout(20):
        while True:
            rows = (await client.get("/admin/nlu/versions/instances", headers=admin[1])).json()
            if rows and rows[0]["version"] == second:
                break
            await asyncio.sleep(0.02)
    assert [(r["id"], r["version"], r["in_sync"], r["this_instance"]) for r in rows] == [
        (instance, second, True, True)]
    rolled = await client.post("/admin/nlu/versions/rollback", headers=admin[1])
    assert next(v for v in rolled.json() if v["active"])["version"] == first
    async with sessionmaker() as session:
        assert await nlu_repo.active_version(session) == first


async def test_leases_held_are_in_health_and_metrics(client: httpx.AsyncClient, db_engine: AsyncEngine) -> None:
    async with exclusive(db_engine, "test-lease:metrics") as lease:
        assert lease.held
        assert "test-lease:metrics" in (await client.get("/health")).json()["workers"]["leases"]["held"]
        assert 'switchboard_lease_held{lease="test-lease:metrics"} 1.0' in (await client.get("/metrics")).text
    assert "test-lease:metrics" not in (await client.get("/metrics")).text


async def test_a_training_job_that_activates_switches_through_the_database(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], admin: tuple[Any, dict[str, str]],
) -> None:
    """Else the periodic check would put this instance back on the previous version a moment later."""
    job = (await client.post("/admin/nlu/train", headers=admin[1], json={"activate": True})).json()
    async with asyncio.timeout(120):
        while job["state"] not in ("succeeded", "failed"):
            await asyncio.sleep(0.1)
            job = (await client.get(f"/admin/nlu/jobs/{job['id']}", headers=admin[1])).json()
    assert job["state"] == "succeeded", job["error"]
    async with sessionmaker() as session:
        assert await nlu_repo.active_version(session) == job["version"]
    # Two periodic checks later the instance still parses with the new version.
    sync = client.app.state.switchboard.model_sync  # type: ignore[attr-defined]
    for _ in range(2):
        seen = sync.checked_at
        async with asyncio.timeout(20):
            while sync.checked_at == seen:
                await asyncio.sleep(0.02)
    nlu = (await health_nlu(client))["nlu"]
    assert (nlu["version"], nlu["active"], nlu["in_sync"]) == (job["version"], job["version"], True)


async def test_a_rollback_waiting_for_the_model_lock_holds_no_connection(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], admin: tuple[Any, dict[str, str]],
) -> None:
    """The lock's holder (the periodic check) needs a connection: on SQLite's one-connection pool, a request that
    waited for the lock with its connection held deadlocked with it (a browser test hung on "Roll back")."""
    state = client.app.state.switchboard  # type: ignore[attr-defined]
    await client.post("/admin/nlu/versions/rollback", headers=admin[1])  # nothing to roll back to, or a switch
    async with state.model_sync.lock:
        request = asyncio.create_task(client.post("/admin/nlu/versions/rollback", headers=admin[1]))
        await asyncio.sleep(0)  # let the request reach the lock
        # What the check does while it holds the lock: a read. It must get a connection.
        async with asyncio.timeout(30):
            while not request.done() and not state.model_sync.lock._waiters:  # the request has reached the lock
                await asyncio.sleep(0.01)
            async with state.sessionmaker() as session:
                assert await nlu_repo.active_version(session) is not None
    async with asyncio.timeout(60):
        response = await request
    assert response.status_code in (200, 409), response.text
