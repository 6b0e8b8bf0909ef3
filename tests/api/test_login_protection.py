"""Sign-in protection through the API: growing delays, a lock, audit rows, admin unlock, across instances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.audit import repository as audit_repo
from core.auth.settings import LoginProtectionSettings
from core.clock import ManualClock
from core.users.models import Role
from tests.conftest import keyword_engine, make_settings, make_user, responses
from tests.support.apps import Client, clients_of

POLICY = LoginProtectionSettings(account_free_failures=3, account_delay_seconds=10, account_max_delay_seconds=40,
                                 account_lock_failures=6, account_lock_minutes=15, address_free_failures=8,
                                 address_delay_seconds=5, address_max_delay_seconds=30)
RIGHT = "password-123"


@pytest.fixture
def login_settings(db_url: str) -> Settings:
    return make_settings(db_url, login=POLICY, trusted_proxies=["10.0.0.1"])


@pytest.fixture
async def served(login_settings: Settings, clock: ManualClock, db_engine: Any) -> AsyncIterator[Client]:
    """An app driven by the test's clock; `served(address)` is a client connecting from that address."""
    async with clients_of(login_settings, clock) as client:
        yield client


async def login(c: httpx.AsyncClient, email: str, password: str, **headers: str) -> httpx.Response:
    return await c.post("/auth/login", json={"email": email, "password": password}, headers=headers)


async def audit_actions(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    async with sessionmaker() as session:
        return [(e.action, e.entity_type, e.entity_id) for e in reversed(await audit_repo.list_entries(session))
                if e.action.startswith("auth.")]


async def test_failures_grow_delays_then_lock_and_a_success_resets(
        served: Client, clock: ManualClock, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    async with served() as c:
        for _ in range(3):  # the free failures: answered 401, no wait
            assert (await login(c, agent.email, "wrong")).status_code == 401
        r = await login(c, agent.email, "wrong")  # the 4th: still a plain 401, and now a 10 s wait
        assert r.status_code == 401
        r = await login(c, agent.email, RIGHT)  # refused unchecked, at once
        assert r.status_code == 429
        assert r.headers["retry-after"] == "10"
        assert r.json()["error"] == "too_many_attempts" and r.json()["details"]["scope"] == "account"
        assert "wait" in r.json()["message"]
        clock.advance(10)
        assert (await login(c, agent.email, "wrong")).status_code == 401  # 5th: the wait doubles
        assert (await login(c, agent.email, RIGHT)).headers["retry-after"] == "20"
        clock.advance(19)
        assert (await login(c, agent.email, RIGHT)).headers["retry-after"] == "1"
        clock.advance(1)
        assert (await login(c, agent.email, "wrong")).status_code == 401  # 6th: locked for 15 min
        r = await login(c, agent.email, RIGHT)
        assert r.status_code == 429 and r.json()["error"] == "account_locked"
        assert r.headers["retry-after"] == "900"
        assert "administrator" in r.json()["message"]
        clock.advance(899)
        assert (await login(c, agent.email, RIGHT)).json()["error"] == "account_locked"
        clock.advance(1)
        r = await login(c, agent.email, RIGHT)  # the lock is served: the right password works again
        assert r.status_code == 200, r.text
        for _ in range(3):  # and the success wiped the account's slate: three free failures again
            assert (await login(c, agent.email, "wrong")).status_code == 401
        # ...but not the address's: its 9th failure brought it a wait of its own.
        assert (await login(c, agent.email, RIGHT)).json()["details"]["scope"] == "address"
        clock.advance(5)
        assert (await login(c, agent.email, RIGHT)).status_code == 200
    assert await audit_actions(sessionmaker) == [("auth.throttled", "user", str(agent.id)),
                                                 ("auth.locked", "user", str(agent.id)),
                                                 ("auth.address_throttled", "address", "192.0.2.10")]


async def test_unknown_accounts_are_throttled_alike(served: Client, sessionmaker: async_sessionmaker[AsyncSession]
                                                    ) -> None:
    """The same answers whether the account exists or not: the throttle tells no one which emails exist."""
    async with served() as c:
        answers = [(await login(c, "nobody@test.example", "wrong")).status_code for _ in range(7)]
    assert answers == [401, 401, 401, 401, 429, 429, 429]
    assert await audit_actions(sessionmaker) == [("auth.throttled", "login", "nobody@test.example")]


async def test_admin_unlocks_an_account(served: Client, clock: ManualClock,
                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent, agent_token = await make_user(sessionmaker, Role.agent, "agent@test.example")
    admin, admin_token = await make_user(sessionmaker, Role.admin, "admin@test.example")
    async with served() as c:
        for _ in range(6):
            await login(c, agent.email, "wrong")
            clock.advance(60)
        assert (await login(c, agent.email, RIGHT)).json()["error"] == "account_locked"
        listed = await c.get("/admin/login-restrictions", headers={"Authorization": f"Bearer {admin_token}"})
        assert [(x["user_id"], x["failures"]) for x in listed.json()] == [(agent.id, 6)]
        assert listed.json()[0]["locked_until"] is not None
        url = f"/admin/users/{agent.id}/unlock"
        denied = await c.post(url, headers={"Authorization": f"Bearer {agent_token}"})
        assert denied.status_code == 403
        r = await c.post(url, headers={"Authorization": f"Bearer {admin_token}"})
        assert r.status_code == 200 and r.json() == {"user_id": agent.id, "unlocked": True}
        assert (await login(c, agent.email, RIGHT)).status_code == 200
        r = await c.post(url, headers={"Authorization": f"Bearer {admin_token}"})
        assert r.json()["unlocked"] is False
    async with sessionmaker() as session:
        unlocks = [e for e in await audit_repo.list_entries(session) if e.action == "auth.unlock"]
    assert [(e.actor_user_id, e.entity_id, e.data["had_restriction"]) for e in reversed(unlocks)] == [
        (admin.id, str(agent.id), True), (admin.id, str(agent.id), False)]


async def test_address_throttle_is_separate_and_never_locks(
        served: Client, clock: ManualClock, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """One address guessing many accounts waits; other addresses and the accounts themselves are not locked."""
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    async with served("198.51.100.7") as attacker, served("192.0.2.99") as colleague:
        for i in range(9):  # 8 free failures, the 9th brings a 5 s wait for the address
            assert (await login(attacker, f"user{i}@test.example", "wrong")).status_code == 401
        r = await login(attacker, agent.email, RIGHT)
        assert r.status_code == 429 and r.json()["details"]["scope"] == "address"
        assert r.headers["retry-after"] == "5"
        assert (await login(colleague, agent.email, RIGHT)).status_code == 200
        for _ in range(20):  # never a lock: the wait grows to its cap and ends
            clock.advance(30)
            assert (await login(attacker, "someone@test.example", "wrong")).status_code in (401, 429)
        clock.advance(30)
        assert (await login(attacker, agent.email, RIGHT)).status_code == 200
    actions = [a for a, _, _ in await audit_actions(sessionmaker)]
    assert actions.count("auth.address_throttled") == 1


async def test_forwarded_for_counts_only_from_a_trusted_proxy(served: Client) -> None:
    """Behind the trusted proxy (10.0.0.1) the client is X-Forwarded-For; anyone else's header is ignored."""
    async with served("10.0.0.1") as proxy, served("198.51.100.7") as direct:
        for i in range(9):
            await login(proxy, f"user{i}@test.example", "wrong", **{"X-Forwarded-For": "203.0.113.5"})
        r = await login(proxy, "x@test.example", "wrong", **{"X-Forwarded-For": "203.0.113.5"})
        assert r.status_code == 429 and r.json()["details"]["scope"] == "address"
        # Another client behind the same proxy is not that address.
        assert (await login(proxy, "x@test.example", "wrong", **{"X-Forwarded-For": "203.0.113.6"})).status_code == 401
        # A client that is not the proxy cannot claim to be someone else, nor escape its own count.
        for i in range(9):
            await login(direct, f"other{i}@test.example", "wrong", **{"X-Forwarded-For": f"203.0.113.{50 + i}"})
        r = await login(direct, "y@test.example", "wrong", **{"X-Forwarded-For": "203.0.113.99"})
        assert r.status_code == 429


async def test_the_count_holds_across_instances(login_settings: Settings, clock: ManualClock, db_engine: Any,
                                                sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Two app instances (workers) on one database share the failures and the lock."""
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example")
    apps = [create_app(login_settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False,
                       clock=clock) for _ in range(2)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://testserver")
                   for a in apps]
        for i in range(6):
            clock.advance(60)
            assert (await login(clients[i % 2], agent.email, "wrong")).status_code == 401
        for c in clients:
            assert (await login(c, agent.email, RIGHT)).json()["error"] == "account_locked"
        for c in clients:
            await c.aclose()
