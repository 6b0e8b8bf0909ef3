"""Console fixtures: the app in-process (HTTP tests) or served by uvicorn (browser tests), signed-in clients."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.users.models import Role, User
from tests.conftest import keyword_engine, make_settings, make_user, responses
from tests.support.browser import chromium
from tests.support.server import LiveServer, serve

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def login(client: httpx.AsyncClient, email: str, password: str = "password-123") -> httpx.Response:
    page = await client.get("/console/login")
    return await client.post("/console/login", data={"email": email, "password": password,
                                                     "csrf_token": csrf_of(page.text), "next": ""})


async def post_form(client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any]
                    ) -> httpx.Response:
    """Submit a console form the way a browser would: CSRF token taken from the page it is on."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text[:500]
    return await client.post(action, data={"csrf_token": csrf_of(page.text), **data},
                             headers={"Referer": f"http://testserver{page_url}"})


@pytest.fixture
async def console_app(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(console_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class People:
    agent: User
    supervisor: User
    admin: User


@pytest.fixture
async def people(sessionmaker: async_sessionmaker[AsyncSession]) -> People:
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example", "technical")
    supervisor, _ = await make_user(sessionmaker, Role.supervisor, "super@test.example", "technical")
    admin, _ = await make_user(sessionmaker, Role.admin, "admin@test.example")
    return People(agent, supervisor, admin)


@pytest.fixture
async def live_server(db_url: str, db_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The whole app served by uvicorn on a free port: lifespan, outbox dispatcher and web chat included."""
    settings = make_settings(db_url, data_dir=tmp_path)
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    async with serve(app, timeout_graceful_shutdown=3) as server:
        yield server


@pytest.fixture
async def nlu_live_server(db_url: str, db_engine: AsyncEngine, tmp_path: Path, trained_model_dir: Path
                          ) -> AsyncIterator[LiveServer]:
    """The app as shipped: the real embedded engine, the shipped intents seeded into the database."""
    await asyncio.to_thread(shutil.copytree, trained_model_dir, tmp_path / "models")
    settings = make_settings(db_url, seed_nlu_data=True, data_dir=tmp_path)
    async with serve(create_app(settings, configure_logs=False), timeout_graceful_shutdown=3) as server:
        yield server


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched
