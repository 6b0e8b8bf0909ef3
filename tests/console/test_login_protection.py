"""Sign-in protection in the console: the wait in the reader's language, the admins' unlock button, and the
session cookie's Secure flag behind a trusted https proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import repository as audit_repo
from core.auth.settings import LoginProtectionSettings
from core.clock import ManualClock
from core.users.models import Role
from tests.conftest import make_settings, make_user
from tests.console.conftest import csrf_of, login, post_form
from tests.support.apps import Client, clients_of

POLICY = LoginProtectionSettings(account_free_failures=2, account_delay_seconds=30, account_lock_failures=4,
                                 account_lock_minutes=10, address_free_failures=50)


@pytest.fixture
async def served(db_url: str, db_engine: Any, clock: ManualClock) -> AsyncIterator[Client]:
    settings = make_settings(db_url, login=POLICY, trusted_proxies=["10.0.0.0/8"])
    async with clients_of(settings, clock) as client:
        yield client


async def test_the_wait_and_the_lock_are_told_in_russian_and_english(
        served: Client, clock: ManualClock, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    async with served(lang="ru") as ru, served(lang="en") as en:
        for _ in range(3):
            assert (await login(ru, agent.email, "wrong")).status_code == 401
        r = await login(ru, agent.email, "password-123")
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        assert "Слишком много неудачных попыток входа в эту учётную запись. Повторите через 30 с" in r.text
        assert "sb_session" not in r.headers.get("set-cookie", "")
        clock.advance(30)
        assert (await login(en, agent.email, "wrong")).status_code == 401  # the 4th: locked for 10 min
        r = await login(en, agent.email, "password-123")
        assert r.status_code == 429 and r.headers["retry-after"] == "600"
        assert "This account is locked after too many failed sign-ins. Try again in 10 min" in r.text
        r = await login(ru, agent.email, "password-123")
        assert "Учётная запись заблокирована" in r.text and "Повторите через 10 мин" in r.text


async def test_admin_unlocks_from_the_users_page(served: Client, clock: ManualClock,
                                                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    admin, _ = await make_user(sessionmaker, Role.admin, "admin@test.example")
    async with served() as c, served("192.0.2.20") as admin_client:
        for _ in range(4):
            await login(c, agent.email, "wrong")
            clock.advance(60)
        assert (await login(c, agent.email, "password-123")).status_code == 429
        assert (await login(admin_client, admin.email, "password-123")).status_code == 303
        page = await admin_client.get("/console/admin/users")
        assert "locked until" in page.text
        assert f'action="/console/admin/users/{agent.id}/unlock"' in page.text
        r = await post_form(admin_client, "/console/admin/users", f"/console/admin/users/{agent.id}/unlock", {})
        assert r.status_code == 303
        page = await admin_client.get("/console/admin/users")
        assert "agent@test.example can sign in again." in page.text and "locked until" not in page.text
        assert (await login(c, agent.email, "password-123")).status_code == 303
        # Without the page's CSRF token the button does nothing.
        r = await admin_client.post(f"/console/admin/users/{agent.id}/unlock", data={"csrf_token": "forged"})
        assert r.status_code in (303, 403)
    async with sessionmaker() as session:
        entries = [e for e in await audit_repo.list_entries(session) if e.action == "auth.unlock"]
    assert [(e.actor_user_id, e.entity_id) for e in entries] == [(admin.id, str(agent.id))]


@pytest.mark.parametrize(("peer", "headers", "secure"), [
    ("10.1.2.3", {"X-Forwarded-Proto": "https"}, True),  # the trusted proxy terminated TLS
    ("10.1.2.3", {"Forwarded": 'for=203.0.113.9;proto=https'}, True),
    ("10.1.2.3", {"X-Forwarded-Proto": "http"}, False),
    ("198.51.100.7", {"X-Forwarded-Proto": "https"}, False),  # anyone else's header is ignored
    ("198.51.100.7", {}, False),
])
async def test_session_cookie_is_secure_when_the_client_came_over_https(
        served: Client, sessionmaker: async_sessionmaker[AsyncSession], peer: str, headers: dict[str, str],
        secure: bool) -> None:
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    async with served(peer) as c:
        page = await c.get("/console/login")
        r = await c.post("/console/login", headers=headers, data={
            "email": agent.email, "password": "password-123", "csrf_token": csrf_of(page.text), "next": ""})
    assert r.status_code == 303
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("sb_session="))
    assert ("; secure" in cookie.lower()) is secure


async def test_served_over_https_directly_the_cookie_is_secure(
        served: Client, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    async with served("198.51.100.7", base_url="https://testserver") as c:
        r = await login(c, agent.email)
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("sb_session="))
    assert "; secure" in cookie.lower()
