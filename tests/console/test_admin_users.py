"""Updating a user through the console's form: the same service and rules as PATCH /admin/users/{id}."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import repository as audit_repo
from core.users import service as users
from core.users.models import Role
from tests.console.conftest import People, login, post_form

FORM = {"name": "Admin", "role": "admin", "language": "en", "queue": "", "capacity": "10", "is_active": "on"}


async def test_an_admin_cannot_demote_or_deactivate_themselves(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    url = f"/console/admin/users/{people.admin.id}"
    for change in ({"role": "agent"}, {"role": "supervisor"}, {"is_active": ""}):
        r = await post_form(client, "/console/admin/users", url, {**FORM, **change})
        assert r.status_code == 303
        page = await client.get("/console/admin/users")
        assert "flash-error" in page.text and "yourself" in page.text
    async with sessionmaker() as session:
        me = await users.get(session, people.admin.id)
    assert (me.role, me.is_active) == (Role.admin, True)
    r = await post_form(client, "/console/admin/users", url, {**FORM, "name": "  Chief ", "language": "ru"})
    assert r.status_code == 303
    async with sessionmaker() as session:
        me = await users.get(session, people.admin.id)
        entries = await audit_repo.list_entries(session, entity_type="user", entity_id=str(me.id))
    assert (me.name, me.language, me.role) == ("Chief", "ru", Role.admin)
    assert [e.data for e in entries if e.action == "user.update"] == [{"name": "Chief", "language": "ru"}]


async def test_an_admin_changes_another_user(client: httpx.AsyncClient, people: People,
                                             sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    url = f"/console/admin/users/{people.agent.id}"
    form = {**FORM, "name": "Agent", "role": "supervisor", "queue": "billing", "capacity": "4"}
    assert (await post_form(client, "/console/admin/users", url, form)).status_code == 303
    async with sessionmaker() as session:
        user = await users.get(session, people.agent.id)
    assert (user.role, user.team and user.team.slug, user.capacity) == (Role.supervisor, "billing", 4)
    # The form's empty queue takes the user out of queues; an unchecked box deactivates.
    assert (await post_form(client, "/console/admin/users", url, {**form, "queue": "", "is_active": ""})
            ).status_code == 303
    async with sessionmaker() as session:
        user = await users.get(session, people.agent.id)
    assert (user.team_id, user.is_active) == (None, False)
    for bad in ({"capacity": "¹"}, {"capacity": "1001"}, {"name": "  "}, {"role": "owner"}, {"password": "short"}):
        await post_form(client, "/console/admin/users", url, {**form, **bad})
        assert "flash-error" in (await client.get("/console/admin/users")).text, bad


async def test_an_admin_sets_and_clears_a_display_name(client: httpx.AsyncClient, people: People,
                                                       sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    page = await client.get("/console/admin/users")
    assert 'name="display_name"' in page.text and 'placeholder="agent"' in page.text  # the first word, shown
    url = f"/console/admin/users/{people.agent.id}"
    form = {**FORM, "name": "Anna Petrova", "role": "agent"}
    assert (await post_form(client, "/console/admin/users", url, {**form, "display_name": "Anya"})
            ).status_code == 303
    async with sessionmaker() as session:
        assert (await users.get(session, people.agent.id)).shown_name == "Anya"
    assert (await post_form(client, "/console/admin/users", url, {**form, "display_name": ""})).status_code == 303
    async with sessionmaker() as session:
        user = await users.get(session, people.agent.id)
    assert (user.display_name, user.shown_name) == (None, "Anna")
    r = await post_form(client, "/console/admin/users", "/console/admin/users", {
        "email": "new@test.example", "name": "Ivan Ivanov", "password": "password-123", "role": "agent",
        "language": "ru", "capacity": "10", "display_name": "Ваня"})
    assert r.status_code == 303
    async with sessionmaker() as session:
        created = await users.get_by_email(session, "new@test.example")
    assert created is not None and created.shown_name == "Ваня"
