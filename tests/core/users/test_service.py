"""The one user-update service both front ends call: partial changes, the self-lockout guard, the audit."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import repository as audit_repo
from core.errors import NotFoundError, ValidationFailedError
from core.users import service as users
from core.users.models import Role, User
from core.users.schemas import UserUpdate
from tests.conftest import make_user


async def _people(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[User, User]:
    admin, _ = await make_user(sessionmaker, Role.admin, "admin@test.example")
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@test.example", "technical")
    return admin, agent


async def _update(sessionmaker: async_sessionmaker[AsyncSession], user_id: int, actor_id: int,
                  body: UserUpdate) -> User:
    async with sessionmaker() as session, session.begin():
        return await users.update(session, await users.get(session, user_id), body, await users.get(session, actor_id))


async def _audit(sessionmaker: async_sessionmaker[AsyncSession], user_id: int) -> list[dict[str, object]]:
    async with sessionmaker() as session:
        rows = await audit_repo.list_entries(session, entity_type="user", entity_id=str(user_id), limit=10, offset=0)
        return [r.data for r in rows if r.action == "user.update"]


@pytest.mark.parametrize("body", [UserUpdate(role=Role.agent), UserUpdate(role=Role.supervisor),
                                  UserUpdate(is_active=False), UserUpdate(name="Me", role=Role.agent)])
async def test_an_admin_cannot_demote_or_deactivate_themselves(sessionmaker: async_sessionmaker[AsyncSession],
                                                               body: UserUpdate) -> None:
    admin, _ = await _people(sessionmaker)
    with pytest.raises(ValidationFailedError, match="yourself"):
        await _update(sessionmaker, admin.id, admin.id, body)
    async with sessionmaker() as session:
        me = await users.get(session, admin.id)
    assert (me.role, me.is_active, me.name) == (Role.admin, True, admin.name)
    assert await _audit(sessionmaker, admin.id) == []


async def test_an_admin_may_change_the_rest_of_their_own_account(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    admin, _ = await _people(sessionmaker)
    me = await _update(sessionmaker, admin.id, admin.id,
                       UserUpdate(name="  Chief  ", role=Role.admin, is_active=True, language="ru"))
    assert (me.name, me.role, me.language, me.is_active) == ("Chief", Role.admin, "ru", True)
    # Only what changed is audited (the role and the active flag were already so).
    assert await _audit(sessionmaker, admin.id) == [{"name": "Chief", "language": "ru"}]


async def test_another_user_is_changed_field_by_field(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    admin, agent = await _people(sessionmaker)
    changed = await _update(sessionmaker, agent.id, admin.id,
                            UserUpdate(role=Role.supervisor, capacity=3, queue="billing", password="new password 1"))
    assert (changed.role, changed.capacity, changed.team is not None and changed.team.slug) == (
        Role.supervisor, 3, "billing")
    assert changed.name == agent.name and changed.language == agent.language  # left out: unchanged
    async with sessionmaker() as session:
        assert (await users.authenticate(session, agent.email, "new password 1")).id == agent.id
    assert await _audit(sessionmaker, agent.id) == [
        {"role": "supervisor", "capacity": "3", "queue": "billing", "password_changed": "yes"}]

    out = await _update(sessionmaker, agent.id, admin.id, UserUpdate(queue="", is_active=False))
    assert (out.team_id, out.team, out.is_active) == (None, None, False)
    # Nothing changes: nothing is audited.
    await _update(sessionmaker, agent.id, admin.id, UserUpdate(queue="", is_active=False, capacity=3))
    assert len(await _audit(sessionmaker, agent.id)) == 2


async def test_an_unknown_queue_changes_nothing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    admin, agent = await _people(sessionmaker)
    with pytest.raises(NotFoundError, match="nowhere"):
        await _update(sessionmaker, agent.id, admin.id, UserUpdate(name="Renamed", queue="nowhere"))
    async with sessionmaker() as session:
        assert (await users.get(session, agent.id)).name == agent.name


def test_a_name_of_spaces_is_refused() -> None:
    with pytest.raises(ValueError, match="only spaces"):
        UserUpdate(name="   ")
