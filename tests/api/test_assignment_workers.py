"""50 escalations at once through the REST channel into `switchboard serve --workers 2` on PostgreSQL, with
3 online agents of capacity 10/10/5 in an automatic queue: nobody goes over capacity, 25 are assigned and 25
wait in the queue; when an agent closes one, the next waiting ticket goes to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.db.session import create_engine, create_sessionmaker
from core.tickets.models import Ticket, TicketStatus
from core.users import service as users
from core.users.models import AssignmentMode, Role
from tests.conftest import _truncate_pg
from tests.support.waiting import wait_for
from tests.support.workers import BIN, log_events, serve_workers

REST_KEY = "workers-rest-key"
CAPACITIES = {"anna": 10, "boris": 10, "vera": 5}


def started_workers(log: Path) -> int:
    return sum(e.get("msg") == "switchboard started" for e in log_events(log))


@pytest.fixture
def server(pg_migrated: str | None, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """An emptied database and `switchboard serve --workers 2` on it: (database URL, port, log file)."""
    if pg_migrated is None:
        pytest.skip("several workers need PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL")
    if not BIN.exists():
        pytest.skip("the package is not installed into this venv")
    asyncio.run(_truncate_pg(pg_migrated))
    with serve_workers(pg_migrated, tmp_path, {
        "SWITCHBOARD_SECRET_KEY": "assignment-workers-test-secret", "SWITCHBOARD_CHANNELS__REST__API_KEY": REST_KEY,
        # A busy machine must not make the agents look offline half-way through the test.
        "SWITCHBOARD_CORE__PRESENCE_OFFLINE_SECONDS": "900",
    }) as (_process, port, log):
        yield pg_migrated, port, log


@pytest.fixture
async def pg_sessionmaker(server: tuple[str, int, Path]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(server[0])
    yield create_sessionmaker(engine)
    await engine.dispose()


async def held_and_waiting(sessionmaker: async_sessionmaker[AsyncSession], team_id: int
                           ) -> tuple[dict[int, int], int]:
    """Open tickets per assignee in the queue, and how many wait unassigned."""
    async with sessionmaker() as session:
        rows = (await session.execute(
            select(Ticket.assignee_id, func.count()).where(Ticket.team_id == team_id,
                                                           Ticket.status == TicketStatus.open)
            .group_by(Ticket.assignee_id))).all()
    counts = {assignee: int(n) for assignee, n in rows}
    waiting = counts.pop(None, 0)
    return {int(k): v for k, v in counts.items() if k is not None}, waiting


@pytest.mark.timeout(400)
async def test_fifty_escalations_at_once_on_two_workers_never_overfill_an_agent(
        server: tuple[str, int, Path], pg_sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, port, log = server
    try:
        await fifty_at_once(port, log, pg_sessionmaker)
    except AssertionError as exc:  # a failure on a busy machine says what the workers were doing
        raise AssertionError(f"{exc}\n--- server log (end) ---\n{log.read_text(errors='replace')[-4000:]}") from None


async def fifty_at_once(port: int, log: Path, pg_sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    tokens: dict[str, str] = {}
    ids: dict[str, int] = {}
    async with pg_sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, "general")  # unrecognised messages escalate there
        team.assignment_mode = AssignmentMode.least_loaded
        team_id = team.id
        for name, capacity in CAPACITIES.items():
            user = await users.create(session, email=f"{name}@test.example", name=name, password="password-123",
                                      role=Role.agent, team=team, capacity=capacity, languages=["ru", "en"])
            tokens[name] = await users.issue_token(session, user, timedelta(hours=1))
            ids[name] = user.id

    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await wait_for(lambda: started_workers(log) >= 2, "two workers serving", timeout=120)
        await wait_for(lambda: client.get("/health"), "health answering", timeout=60,
                       ignore=(httpx.HTTPError,))
        for token in tokens.values():
            r = await client.post("/me/heartbeat", headers={"Authorization": f"Bearer {token}"})
            assert r.json()["presence"] == "online"

        async def escalate(i: int) -> httpx.Response:
            text = f"Мне нужна помощь с услугой номер {i}" if i % 2 else f"I need help with service {i}"
            return await client.post("/channels/rest/messages", headers={"X-Api-Key": REST_KEY}, json={
                "external_message_id": f"burst-{i}", "sender": {"external_id": f"cust-{i}", "name": f"C{i}"},
                "text": text})

        responses = await asyncio.gather(*(escalate(i) for i in range(50)))
        assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses if r.status_code != 201]

        async def settled() -> Any:
            held, waiting = await held_and_waiting(pg_sessionmaker, team_id)
            return (held, waiting) if sum(held.values()) == 25 else None

        held, waiting = await wait_for(settled, "25 tickets assigned", timeout=120)
        assert held == {ids[name]: capacity for name, capacity in CAPACITIES.items()}
        assert waiting == 25

        # Anna closes one of hers: a waiting ticket takes its place, and nobody else gets one.
        headers = {"Authorization": f"Bearer {tokens['anna']}"}
        mine = (await client.get("/tickets", headers=headers, params={"assignee": "me", "limit": 50})).json()
        first = mine["items"][0]["number"]
        r = await client.patch(f"/tickets/{first}", headers=headers, json={"status": "closed"})
        assert r.status_code == 200, r.text

        async def refilled() -> Any:
            now_held, now_waiting = await held_and_waiting(pg_sessionmaker, team_id)
            return (now_held, now_waiting) if now_waiting == 24 else None

        held, waiting = await wait_for(refilled, "the freed place filled", timeout=120)
        assert held == {ids[name]: capacity for name, capacity in CAPACITIES.items()}
        async with pg_sessionmaker() as session:
            auto = await session.scalar(select(func.count()).select_from(AuditEntry)
                                        .where(AuditEntry.action == "ticket.auto_assign"))
        assert auto == 26  # each assignment once, in the history, whatever worker made it
