"""Console fixtures: the app in-process (HTTP tests) or served by uvicorn (browser tests), signed-in clients."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
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


class _FormFields(HTMLParser):
    """The values a browser submits for one form (`<form id>`): its fields inside it or tied to it by `form=`."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.select: str | None = None
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def _ours(self, attrs: dict[str, str | None]) -> bool:
        return self.inside or attrs.get("form") == self.form_id

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attr_list)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside, self.action = True, attrs.get("action")
        elif tag == "input" and self._ours(attrs) and attrs.get("name"):
            if attrs.get("type") != "checkbox" or "checked" in attrs:
                self.fields[str(attrs["name"])] = attrs.get("value") or ("on" if attrs.get("type") == "checkbox"
                                                                         else "")
        elif tag == "select" and self._ours(attrs):
            self.select = attrs.get("name")
        elif tag == "option" and self.select and "selected" in attrs:
            self.fields[self.select] = attrs.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_of(html: str, form_id: str) -> tuple[str, dict[str, str]]:
    """A form's action and the values a browser would submit for it as the page shows it."""
    parser = _FormFields(form_id)
    parser.feed(html)
    assert parser.action, f"no form {form_id!r} on the page"
    return parser.action, parser.fields


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


async def save_queue(client: httpx.AsyncClient, slug: str, **changes: str | None) -> httpx.Response:
    """Submit a queue's one settings form on the Queues page as shown, with `changes` typed in (None: a box
    unticked, a field cleared of its value it is left out)."""
    page = await client.get("/console/admin/queues")
    assert page.status_code == 200, page.text[:500]
    action, fields = form_of(page.text, f"queue-{slug}")
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return await client.post(action, data=fields, headers={"Referer": "http://testserver/console/admin/queues"})
