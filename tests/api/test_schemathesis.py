"""Schemathesis over the OpenAPI document: every operation, valid and invalid input, in-process on SQLite.

Checks, for every generated request: no 5xx, the status code is one the document lists for the operation, and the
body conforms to the schema documented for that status. Authenticated as an admin and with the REST key, so the
routes are reached past their guards (401/403 are covered by their own tests).

The app runs in Schemathesis' ASGI test client (its own event loop thread, the app's lifespan started once); the
database is a private SQLite file set up before the app starts. `SCHEMATHESIS_EXAMPLES` sets the examples per
operation (default 15: about a minute of CPU; `pytest -s` prints what was sent and answered).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from channels.registry import build_channels
from core.db.session import create_engine, create_sessionmaker
from core.users.models import Role
from tests.conftest import REST_HEADERS, keyword_engine, make_settings, make_user, responses
from tests.core.ingest.test_threading import msg, svc

# About a minute in one module (a file stays on one worker): scheduled among the first.
pytestmark = pytest.mark.slow(seconds=60)

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _setup(tmp: Path, template: Path) -> tuple[Any, dict[str, str]]:
    """A migrated SQLite copy with an admin and their token; the app over it (not started)."""
    path = tmp / "schemathesis.sqlite3"
    shutil.copy(template, path)
    url = f"sqlite+aiosqlite:///{path}"

    async def admin_token() -> str:
        engine = create_engine(url)
        try:
            sessionmaker = create_sessionmaker(engine)
            _, token = await make_user(sessionmaker, Role.admin, "admin@test.example")
            # A few tickets, customers and messages, so that small ids lead somewhere.
            ingest = svc(sessionmaker)
            for n, text in enumerate(("my tv is broken", "operator please", "hello")):
                await ingest.ingest(msg(f"seed-{n}", sender=f"customer-{n}", text=text))
        finally:
            await engine.dispose()
        return token

    # Its own loop in a thread: pytest-asyncio's loop is not ours to run here.
    with start_blocking_portal() as portal:
        token = portal.call(admin_token)
    settings = make_settings(url, data_dir=tmp / "data", workers_enabled=False)
    # The environment's channels only: channels the fuzzer sets up in the browser API are stored, never started
    # (they would connect to whatever hosts it makes up).
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False,
                     channels=lambda ctx: build_channels(settings.channels, ctx))
    return app, {"Authorization": f"Bearer {token}", **REST_HEADERS}


STATS: defaultdict[str, Counter[int]] = defaultdict(Counter)


def print_summary() -> None:
    """Requests per operation and status (shown with `pytest -s`), for the record."""
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item}
    probes = {op: codes for op, codes in STATS.items() if op not in documented}  # methods a path does not have
    total = sum(sum(c.values()) for c in STATS.values())
    print(f"\nschemathesis: {len(documented)} operations, {total} requests ({EXAMPLES} examples per operation "
          f"and mode); {sum(sum(c.values()) for c in probes.values())} of them with undocumented methods, "
          f"answered {sorted({code for c in probes.values() for code in c})}")
    for operation, codes in sorted(STATS.items()):
        if operation in documented:
            print(f"  {operation:55} " + " ".join(f"{code}x{n}" for code, n in sorted(codes.items())))


class DeferredApp:
    """The ASGI app Schemathesis calls; the real one is plugged in by the fixture, once its database exists."""

    def __init__(self) -> None:
        self.inner: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.inner is not None, "the served fixture sets the app up"
        await self.inner(scope, receive, send)


APP = DeferredApp()
# The document of an app that is never started (building it touches no database); requests go to APP.
schema = schemathesis.openapi.from_dict(
    create_app(make_settings("sqlite+aiosqlite:///:memory:"), configure_logs=False).openapi()
).exclude(path="/auth/logout").exclude(  # logging out would revoke the token every other request uses
    path="/admin/channels/{config_id}/test")  # it logs in to the hosts it is given (tests/api/test_channel_setup.py)
schema.app = APP


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[dict[str, str]]:
    APP.inner, headers = _setup(tmp_path_factory.mktemp("schemathesis"), sqlite_template)
    yield headers
    print_summary()
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()  # the app's lifespan ran in Schemathesis' loop thread: stop it with the module


@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_api(case: Any, served: dict[str, str]) -> None:
    response = case.call_and_validate(headers=served, checks=CHECKS)
    STATS[f"{case.method} {case.path}"][response.status_code] += 1
