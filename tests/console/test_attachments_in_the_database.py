"""The console's reply with files and its downloads with attachments in the database (`postgres` backend), on
both databases: on SQLite the backend's own connection writes while the request's session is open."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from core.attachments.settings import AttachmentStorageSettings
from core.tickets.models import Direction, Message
from tests.conftest import REST_HEADERS, make_settings, rest_message
from tests.console.conftest import People, login
from tests.console.test_attachments import LIMIT, send_reply


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, data_dir=tmp_path / "data", max_attachment_bytes=LIMIT,
                         attachments=AttachmentStorageSettings(backend="postgres"))


async def test_reply_with_files_and_ranged_downloads(client: httpx.AsyncClient, people: People, settings: Settings,
                                                     sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("m-1", "my router is broken", sender="c-7"))
    number = r.json()["ticket_number"]
    await login(client, "agent@test.example")
    ticket_url = f"/console/tickets/{number}"
    r = await send_reply(client, ticket_url, "Документы во вложении",
                         [("files", ("договор.pdf", b"%PDF contract", "application/pdf")),
                          ("files", ("notes.txt", b"call back at 5", "text/plain"))])
    assert r.status_code == 303 and r.headers["location"] == ticket_url
    async with sessionmaker() as session:
        sent = (await session.scalars(select(Message).where(Message.direction == Direction.outbound,
                                                            Message.author_user_id == people.agent.id))).one()
    assert [(a["filename"], a["size"]) for a in sent.attachments] == [("договор.pdf", 13), ("notes.txt", 14)]
    first = f"/console/attachments/{sent.attachments[0]['storage_key']}"
    assert (await client.get(first)).content == b"%PDF contract"
    part = await client.get(first, headers={"Range": "bytes=-8"})
    assert part.status_code == 206 and part.content == b"contract"
    root = settings.attachments_root
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
