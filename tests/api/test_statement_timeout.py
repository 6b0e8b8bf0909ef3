"""A request's statement running past `statement_timeout_seconds` is stopped: 503 query_timeout, and the same
worker (and, on SQLite, the one connection) serves the next request at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.deps import DbSession
from api.settings import Settings
from tests.conftest import keyword_engine, make_settings, responses

# Work far longer than the limit on each database: PostgreSQL sleeps, SQLite counts to a billion.
SLOW_SQL = {
    "postgresql": "SELECT pg_sleep(30)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
              "SELECT count(*) FROM c",
}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, statement_timeout_seconds=0.3)


@pytest.fixture
async def client(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)

    async def slow(session: DbSession) -> dict[str, int]:
        dialect = session.get_bind().dialect.name
        return {"n": int((await session.execute(text(SLOW_SQL[dialect]))).scalar_one())}

    async def fast(session: DbSession) -> dict[str, int]:
        return {"n": int((await session.execute(text("SELECT 42"))).scalar_one())}

    # Routes of this test only: the slow statement is real work on the real database, not a mock.
    for prefix in ("/test", "/console/test"):
        app.add_api_route(f"{prefix}/slow", slow)
        app.add_api_route(f"{prefix}/fast", fast)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            yield c


async def test_slow_statement_answers_503_and_the_next_request_is_served(
    client: httpx.AsyncClient, agent: tuple[object, dict[str, str]], db_url: str,
) -> None:
    _, headers = agent
    response = await client.get("/test/slow")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "query_timeout"
    assert "narrow the search" in body["message"]
    assert body["details"]["timeout_seconds"] == pytest.approx(0.3)
    assert response.headers["Retry-After"]
    # The worker and its database connection are free again: plain requests and the API's own list work.
    assert (await client.get("/test/fast")).json() == {"n": 42}
    tickets = await client.get("/tickets", headers=headers)
    assert tickets.status_code == 200, tickets.text
    # Many timeouts in a row leave nothing behind either (no connection is lost to the pool).
    for _ in range(3):
        assert (await client.get("/test/slow")).status_code == 503
    assert (await client.get("/test/fast")).json() == {"n": 42}


async def test_postgres_backend_is_freed(client: httpx.AsyncClient, db_url: str, db_engine: AsyncEngine) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL backends only")
    assert (await client.get("/test/slow")).status_code == 503
    async with db_engine.connect() as conn:
        running = (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"
        ))).scalar_one()
    assert running == 0


async def test_console_says_it_politely(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/test/slow")
    assert page.status_code == 503
    assert 'data-reason="query_timeout"' in page.text
    assert "That took too long" in page.text
    assert "Слишком долгий запрос" in page.text
    # A live part re-fetched in the background gets a bare 503 it can tell apart from an outage.
    fetched = await client.get("/console/test/slow", headers={"X-Requested-With": "fetch"})
    assert fetched.status_code == 503
    assert fetched.headers["X-Switchboard-Error"] == "query_timeout"
    assert (await client.get("/console/test/fast")).json() == {"n": 42}


async def test_no_limit_when_zero(db_url: str, db_engine: AsyncEngine) -> None:
    """0 turns the limit off: a statement slower than any small limit still answers."""
    app = create_app(make_settings(db_url, statement_timeout_seconds=0), nlu_engine=keyword_engine(),
                     responses=responses, configure_logs=False)
    sql = "SELECT pg_sleep(0.5), 1" if not db_url.startswith("sqlite") else (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT count(*) FROM c")

    async def medium(session: DbSession) -> dict[str, str]:
        return {"ok": str((await session.execute(text(sql))).first())}

    app.add_api_route("/test/medium", medium)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.get("/test/medium")).status_code == 200
