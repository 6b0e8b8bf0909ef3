"""The supervisors' board, computed by core/reports on both databases."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.assignment.schemas import Presence
from core.db.base import utcnow
from core.reports import service as reports
from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message


async def test_board_counts_people_queues_days_and_statuses(
        app_client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession],
        agent: tuple[User, dict[str, str]], supervisor: tuple[User, dict[str, str]],
        admin: tuple[User, dict[str, str]]) -> None:
    numbers = []
    for i, text in enumerate(("internet is down", "no internet again", "my internet", "hello")):
        r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message(f"m-{i}", text, sender=f"c-{i}"))
        assert r.status_code == 201, r.text
        numbers.append(r.json()["ticket_number"])
    assert (await app_client.post(f"/tickets/{numbers[1]}/take", headers=agent[1])).status_code == 200

    async with sessionmaker() as session:
        board = await reports.board(session, now=utcnow(), offline_after=timedelta(seconds=90), days=3)

    load = {a.user.email: a.open_count for a in board.agents}
    assert load == {"agent@test.example": 1, "super@test.example": 0}  # admins are not on the board
    # The agent's requests just now count as seen; the supervisor never signed in here.
    presence = {a.user.email: a.presence for a in board.agents}
    assert presence == {"agent@test.example": Presence.online, "super@test.example": Presence.offline}
    queues = {q.team.slug: q for q in board.queues}
    technical = queues["technical"]
    assert (technical.open_count, technical.waiting) == (3, 2)
    # The customer who has waited longest comes first: the first message.
    assert technical.oldest is not None and technical.oldest.number == numbers[0]
    assert (queues["billing"].open_count, queues["billing"].waiting, queues["billing"].oldest) == (0, 0, None)
    assert [n for _, n in board.per_day] == [0, 0, 4]  # all created today, whatever the database's date()
    assert board.by_status == {"open": 3, "bot": 1}  # routed tickets wait open in their queue
    assert [t.number for t in board.tickets] == [numbers[0], numbers[1], numbers[2]]
