"""Making a big cluster an intent: thousands of messages marked handled in bounded statements (SQLite and
PostgreSQL), the examples only the chosen ones, and nothing but admins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import PermissionDeniedError
from core.problems import repository
from core.problems import service as problems
from core.problems.models import HandledMessage
from core.problems.schemas import MakeIntent
from core.tickets.models import Message
from core.users.models import Role, User
from tests.core.problems.helpers import tickets

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def person(session: AsyncSession, role: Role) -> User:
    user = User(email=f"{role.value}@problems.example", name=role.value, password_hash="x", role=role,
                language="en", capacity=10, is_active=True)
    session.add(user)
    await session.flush()
    return user


async def test_thousands_of_messages_are_marked_and_only_the_chosen_become_examples(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        await tickets(s, AT, 7000, reason="low_confidence", text="роутер мигает красным")
        ids = list((await s.scalars(select(Message.id).order_by(Message.id))).all())
        admin = await person(s, Role.admin)
        supervisor = await person(s, Role.supervisor)
    body = MakeIntent(intent="router_red_light", example_ids=ids[:2], message_ids=ids)
    async with sessionmaker() as s, s.begin():
        with pytest.raises(PermissionDeniedError):
            await problems.make_intent(s, body, supervisor)
    async with sessionmaker() as s, s.begin():
        made = await problems.make_intent(s, body, admin)
    # The two chosen texts are the same text: one example, the other skipped as a repeat.
    assert (made.created, made.examples_added, made.examples_skipped, made.handled) == (
        True, ["роутер мигает красным"], ["роутер мигает красным"], 7000)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(HandledMessage)) == 7000
        marks = await repository.handled(s, ids)
    assert len(marks) == 7000 and {m.intent for m in marks.values()} == {"router_red_light"}
    assert [i for i, m in marks.items() if m.example] == [ids[0]]
