"""Shared fixtures: a migrated database on SQLite (always) and PostgreSQL (when a URL is given), the app."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx._transports.default as httpx_transports
import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from channels.config import ChannelsSettings, RestChannelSettings
from core.clock import ManualClock
from core.config import CoreSettings
from core.db.migrate import upgrade
from core.db.session import create_engine, create_sessionmaker
from core.models import Base
from core.users import service as users
from core.users.models import Role, Team, User
from nlu.protocol import KeywordEngine
from tests.redis_helpers import PrivateRedis
from tests.support.net import free_port  # noqa: F401  (test modules import it from here too)

# The longest modules first (see tests/support/ordering.py; scripts/test.sh keeps that order under xdist).
pytest_plugins = ["tests.support.ordering"]

# An async test that hangs is cancelled inside its own coroutine a minute before pytest-timeout would fire: its
# `async with` blocks then exit and the apps it started shut down. pytest-timeout alone stops the event loop under
# the coroutine, which leaves those apps running in the session's loop - one hung test once made 16 later
# PostgreSQL tests fail, an abandoned outbox dispatcher claiming their rows.
TEST_SECONDS_MARGIN = 60


def _bounded(test: Callable[..., Coroutine[Any, Any, Any]], seconds: float) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(seconds):
            return await test(*args, **kwargs)

    return run


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    default = float(config.getini("timeout") or 0)
    for item in items:
        test = getattr(item, "obj", None)
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(test):
            continue
        marker = item.get_closest_marker("timeout")
        limit = float(marker.args[0]) if marker and marker.args else default
        if limit > TEST_SECONDS_MARGIN:
            item.obj = _bounded(test, limit - TEST_SECONDS_MARGIN)


# argon2 at its cheapest for the tests' own process: the default parameters (64 MiB, 3 passes, 4 lanes) cost
# ~0.2 s of CPU per hash and as much per sign-in - 0.4-2 s of wall per test that makes users and signs them in on a
# loaded 2-core machine, paid by hundreds of tests. Hashes stay real argon2id (a wrong password still fails, the
# check is the same code); the cost parameters are read from each hash, so one made at full cost by a CLI
# subprocess (those keep the shipped parameters) still verifies here. The dummy hash for unknown emails follows.
users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
users._DUMMY_HASH = users._hasher.hash("dummy-password-for-timing")


@functools.cache
def _default_ssl_context(trust_env: bool) -> ssl.SSLContext:
    return _create_ssl_context(verify=True, trust_env=trust_env)


def _shared_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
    """httpx loads certifi's whole CA bundle into a new SSL context for every client it builds without a transport
    (~0.1 s of CPU): the app's REST channel at every lifespan start, each test's client of a live server. The
    tests' traffic never leaves 127.0.0.1 over plain HTTP, so one default context per process serves them all;
    any other `verify` or a client certificate still gets its own."""
    if verify is True and cert is None:
        return _default_ssl_context(trust_env)
    return _create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)


_create_ssl_context = httpx_transports.create_ssl_context
httpx_transports.create_ssl_context = _shared_ssl_context

PG_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
REST_KEY = "test-rest-key"

TEST_KEYWORDS = {
    "greeting": ["hello", "привет", "здравствуйте"],
    "office_hours": ["office hours", "часы работы"],
    "order_status": ["order", "заказ"],
    "human_handoff": ["operator", "оператор"],
    "complaint": ["complaint", "жалоба"],
    "internet_down": ["internet", "интернет"],
}
TEST_RESPONSES = {
    ("greeting", "en"): "Hello! How can I help?",
    ("greeting", "ru"): "Здравствуйте! Чем помочь?",
    ("office_hours", "en"): "We work 24/7.",
    ("office_hours", "ru"): "Мы работаем круглосуточно.",
}


def keyword_engine() -> KeywordEngine:
    return KeywordEngine({k: list(v) for k, v in TEST_KEYWORDS.items()})


def responses(intent: str, language: str) -> str | None:
    return TEST_RESPONSES.get((intent, language))


# A novel intent the shipped data does not cover, for the "teach the bot" stories (API and browser).
SIM_BLOCK_EXAMPLES = [
    "I lost my phone, block my SIM", "my phone was stolen please block the sim card", "block my sim card",
    "lost sim card", "someone stole my phone block the number", "please suspend my sim, phone lost",
    "how do I block a lost SIM", "sim card stolen what to do", "freeze my number my phone is gone",
    "lost my mobile need to block sim", "block sim immediately", "my sim was stolen",
    "потерял телефон, заблокируйте сим-карту", "украли телефон заблокируйте номер", "заблокировать симку",
    "потерял симку что делать", "блокировка сим карты", "украли сим карту", "как заблокировать утерянную сим",
    "срочно заблокируйте номер, телефон украли", "потеряла телефон нужно заблокировать сим",
    "заблокируйте мою sim", "утеряна сим-карта",
]
SIM_BLOCK_ANSWER_EN = "Your SIM card can be blocked in the app or at 8-800-000-00-00."
SIM_BLOCK_ANSWER_RU = "Заблокировать SIM-карту можно в приложении или по номеру 8-800-000-00-00."
SIM_BLOCK_QUESTION = "I lost my phone yesterday, please block my SIM card"


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped data trained once by the real embedded engine; each test copies it."""
    from nlu.config import NluSettings
    from nlu.engines import build_engine

    path = tmp_path_factory.mktemp("models")
    build_engine(NluSettings(), path)
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> Iterator[str | None]:
    """A private database on the given PostgreSQL server for this test run, dropped at the end.

    Concurrent runs (two developers, or a benchmark) on one server never clobber each other.
    """
    if not PG_URL:
        yield None
        return
    import asyncio
    import uuid

    from sqlalchemy.engine import make_url

    name = f"sb_test_{uuid.uuid4().hex[:10]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        engine = create_engine(PG_URL)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    # Private loops: these run outside the test loop of pytest-asyncio.
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("pg_migrated")
    if url is None:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    yield url  # emptied by db_engine before each test


# The queues the first migration creates (what every fresh database starts with).
DEFAULT_TEAMS: list[tuple[str, str]] = importlib.import_module(
    "core.migrations.versions.0001_initial_schema").DEFAULT_TEAMS


def _emptying_sql() -> str:
    """One script that empties every table and restarts every sequence (see _truncate_pg)."""
    deletes = "".join(f'DELETE FROM "{table.name}";' for table in reversed(Base.metadata.sorted_tables))  # noqa: S608 - our own table names
    restarts = ("DO $$ DECLARE s regclass; BEGIN "
                "FOR s IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema() "
                "LOOP PERFORM setval(s, 1, false); END LOOP; END $$;")
    return deletes + restarts


async def _truncate_pg(url: str, engine: AsyncEngine | None = None) -> None:
    """Every table emptied and every id sequence back at 1, then the queues the first migration creates put back
    as it does (same ids, every setting at its default: a test that switched a queue to automatic assignment leaves
    nothing behind).

    DELETE (children first) rather than TRUNCATE: the tables hold a test's few rows, and TRUNCATE gives each of the
    ~40 tables, its indexes and TOAST new files, which cost 0.3-1.5 s per test (most of it fsync) against 0.02-0.2 s
    for the DELETEs and setval() (measured on this machine, load 11). One round trip (asyncpg runs a script of
    several statements when it has no parameters) on `engine` when given, so the test reuses its connection."""
    own = engine is None
    engine = engine or create_engine(url)
    try:
        async with engine.begin() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute(_emptying_sql())
            await conn.execute(Team.__table__.insert(), [{"slug": slug, "name": name} for slug, name in DEFAULT_TEAMS])
    finally:
        if own:
            await engine.dispose()


@pytest.fixture
async def db_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    if not db_url.startswith("sqlite"):
        await _truncate_pg(db_url, engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(db_engine)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    core = CoreSettings(outbox_poll_seconds=0.05, outbox_backoff_base_seconds=0.05,
                        outbox_backoff_max_seconds=0.2, outbox_max_attempts=4)
    values: dict[str, Any] = {
        "database_url": db_url,
        "core": core,
        "channels": ChannelsSettings(rest=RestChannelSettings(api_key=SecretStr(REST_KEY))),
        "log_json": False,
        "log_level": "WARNING",
        "seed_nlu_data": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves (limits, sign-in delays, timers): pass it to create_app(clock=...)."""
    return ManualClock()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
async def app_client(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running (dispatcher included), and a client talking to it in-process."""
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def make_user(sessionmaker: async_sessionmaker[AsyncSession], role: Role, email: str,
                    queue: str | None = None) -> tuple[User, str]:
    from datetime import timedelta

    from core.tickets import repository as ticket_repo

    async with sessionmaker() as session, session.begin():
        team = await ticket_repo.get_team_by_slug(session, queue) if queue else None
        user = await users.create(session, email=email, name=email.split("@")[0], password="password-123",
                                  role=role, team=team)
        token = await users.issue_token(session, user, timedelta(hours=1))
    return user, token


@pytest.fixture
async def agent(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[User, dict[str, str]]:
    user, token = await make_user(sessionmaker, Role.agent, "agent@test.example", "technical")
    return user, {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def supervisor(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[User, dict[str, str]]:
    user, token = await make_user(sessionmaker, Role.supervisor, "super@test.example")
    return user, {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[User, dict[str, str]]:
    user, token = await make_user(sessionmaker, Role.admin, "admin@test.example")
    return user, {"Authorization": f"Bearer {token}"}


REST_HEADERS = {"X-Api-Key": REST_KEY}


def rest_message(ext_id: str, text: str, sender: str = "cust-1", **extra: Any) -> dict[str, Any]:
    return {"external_message_id": ext_id, "sender": {"external_id": sender, "name": "Test Customer"},
            "text": text, **extra}


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """A redis-server of the test's own on a free port (killed and restarted by outage tests)."""
    server = PrivateRedis(tmp_path / "redis")
    await server.start()
    yield server
    server.kill()
