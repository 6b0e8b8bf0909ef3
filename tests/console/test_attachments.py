"""Files in the console: attach to a reply (multipart, CSRF checked), download with the session cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from core.attachments.store import AttachmentStore
from core.outbox.models import OutboxMessage
from core.tickets.models import Direction, Message
from tests.conftest import REST_HEADERS, make_settings, rest_message
from tests.console.conftest import People, csrf_of, login

LIMIT = 32 * 1024
XSS = '<img src=x onerror="window.pwned=1">.png'


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, data_dir=tmp_path / "data", max_attachment_bytes=LIMIT)


async def open_ticket(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession],
                      settings: Settings) -> tuple[str, dict[str, Any]]:
    """A customer message with a stored file (as the email channel leaves it) and one given by URL."""
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message(
        "m-1", "my router, see the photo", sender="c-7",
        attachments=[{"filename": XSS, "content_type": "image/png", "url": "https://cdn.example/x.png"}]))
    number = r.json()["ticket_number"]
    stored = AttachmentStore(settings.attachments_root).save("роутер фото.png", "image/png", b"\x89PNG router",
                                                             namespace="email")
    async with sessionmaker() as session, session.begin():
        message = (await session.scalars(select(Message).where(Message.external_message_id == "m-1"))).one()
        await session.execute(update(Message).where(Message.id == message.id).values(
            attachments=[*message.attachments, stored.model_dump(exclude_none=True)]))
    return number, stored.model_dump()


async def send_reply(client: httpx.AsyncClient, ticket_url: str, text: str,
                     files: list[tuple[str, tuple[str, bytes, str]]], csrf: str | None = None) -> httpx.Response:
    page = await client.get(ticket_url)
    token = csrf if csrf is not None else csrf_of(page.text)
    return await client.post(f"{ticket_url}/reply", data={"csrf_token": token, "text": text}, files=files,
                             headers={"Referer": f"http://testserver{ticket_url}"})


async def test_reply_with_files_and_downloads(client: httpx.AsyncClient, people: People, settings: Settings,
                                              sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number, inbound = await open_ticket(client, sessionmaker, settings)
    await login(client, "agent@test.example")
    ticket_url = f"/console/tickets/{number}"
    page = await client.get(ticket_url)
    assert 'enctype="multipart/form-data"' in page.text and 'type="file"' in page.text
    # Names are escaped; a stored inbound file links to the console download, a URL-only one does not.
    # The REST channel names the file by the attachment policy (no markup characters), the page escapes it too.
    assert "<img src=x" not in page.text and "_img src=x onerror=_window.pwned=1__.png" in page.text
    link = "/console/attachments/" + inbound["storage_key"].replace(" ", "%20").replace(
        "роутер", "%D1%80%D0%BE%D1%83%D1%82%D0%B5%D1%80").replace("фото", "%D1%84%D0%BE%D1%82%D0%BE")
    assert f'href="{link}"' in page.text

    r = await client.get(link)
    assert r.status_code == 200 and r.content == b"\x89PNG router"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    # Range requests on the console's route too (one range; 416 with the reason otherwise).
    r = await client.get(link, headers={"Range": "bytes=1-3"})
    assert r.status_code == 206 and r.content == b"PNG" and r.headers["content-range"] == "bytes 1-3/11"
    r = await client.get(link, headers={"Range": "bytes=11-"})
    assert r.status_code == 416 and "past the end" in r.json()["message"]

    files = [("files", ("договор.pdf", b"%PDF contract", "application/pdf")),
             ("files", ("notes.txt", b"call back at 5", "text/plain")),
             ("files", ("", b"", "application/octet-stream"))]  # an empty file input, as browsers send it
    r = await send_reply(client, ticket_url, "Документы во вложении", files)
    assert r.status_code == 303 and r.headers["location"] == ticket_url
    async with sessionmaker() as session:
        sent = (await session.scalars(select(Message).where(Message.direction == Direction.outbound,
                                                            Message.author_user_id == people.agent.id))).one()
        outbox = (await session.scalars(select(OutboxMessage).where(OutboxMessage.message_id == sent.id))).one()
    assert [(a["filename"], a["size"]) for a in sent.attachments] == [("договор.pdf", 13), ("notes.txt", 14)]
    assert all(a["storage_key"].startswith("uploads/") for a in sent.attachments)
    assert outbox.message_id == sent.id
    page = await client.get(ticket_url)
    for item in sent.attachments:
        r = await client.get(f"/console/attachments/{item['storage_key']}")
        assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    assert "договор.pdf</a>" in page.text


async def test_refused_files_csrf_and_access(client: httpx.AsyncClient, people: People, settings: Settings,
                                             sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number, inbound = await open_ticket(client, sessionmaker, settings)
    ticket_url = f"/console/tickets/{number}"
    # Not signed in: no download, sent to the login page.
    r = await client.get(f"/console/attachments/{inbound['storage_key']}")
    assert r.status_code in (302, 303, 401) and b"PNG" not in r.content
    await login(client, "agent@test.example")

    async def agent_replies() -> int:
        async with sessionmaker() as session:
            return len((await session.scalars(select(Message).where(
                Message.author_user_id == people.agent.id))).all())

    r = await send_reply(client, ticket_url, "a file", [("files", ("a.pdf", b"%PDF", "application/pdf"))],
                         csrf="forged")
    assert r.status_code in (303, 403) and await agent_replies() == 0
    r = await send_reply(client, ticket_url, "a program", [("files", ("setup.exe", b"MZ", "application/pdf"))])
    assert r.status_code == 303
    assert "not accepted" in (await client.get(ticket_url)).text
    r = await send_reply(client, ticket_url, "too big", [("files", ("big.bin", b"x" * (LIMIT + 1), "x/y"))])
    assert r.status_code == 303
    assert "limit" in (await client.get(ticket_url)).text
    assert await agent_replies() == 0
    assert not (settings.attachments_root / "uploads").exists()

    for key in ("..%2F..%2Fetc%2Fpasswd", "email/00/none/x.png", "%2Fetc%2Fpasswd"):
        assert (await client.get(f"/console/attachments/{key}")).status_code == 404


async def test_the_database_and_the_models_cannot_be_downloaded(client: httpx.AsyncClient, people: People,
                                                               settings: Settings) -> None:
    """Issue 9, item 1, through the console's download route (the session cookie instead of a token)."""
    from tests.api.test_attachments import LEAKS, plant_secrets

    plant_secrets(Path(settings.data_dir))
    await login(client, "agent@test.example")
    for key in LEAKS:
        r = await client.get(f"/console/attachments/{key}")
        assert r.status_code == 404, (key, r.status_code)
        assert b"SQLite format" not in r.content


async def test_refused_customer_files_are_shown_with_the_reason(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The REST channel keeps the message and refuses the file by the one attachment policy; agents see why."""
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message(
        "m-refused", "the contract and the tool", sender="c-8", attachments=[
            {"filename": "..\\..\\договор №5.pdf", "content_type": "application/pdf", "size": 10,
             "url": "https://cdn.example/1"},
            {"filename": "tool\u202efdp.exe", "url": "https://cdn.example/2"},
            {"filename": "я" * 150 + ".pdf", "content_type": "application/pdf", "size": 10,
             "url": "https://cdn.example/3"},
            {"filename": "big.pdf", "content_type": "application/pdf", "size": LIMIT + 1,
             "url": "https://cdn.example/4"}]))
    assert r.status_code == 201
    async with sessionmaker() as session:
        message = (await session.scalars(select(Message).where(Message.external_message_id == "m-refused"))).one()
    assert [a["filename"] for a in message.attachments] == ["договор №5.pdf", "я" * 73 + ".pdf"]
    assert [(x["filename"], x["reason"]) for x in message.extra["rejected_attachments"]] == [
        ("toolfdp.exe", "files of type .exe are not accepted: they can run code"),
        ("big.pdf", f"the file is {LIMIT + 1} bytes; the limit is {LIMIT}")]
    await login(client, "agent@test.example")
    page = (await client.get(f"/console/tickets/{r.json()['ticket_number']}")).text
    assert "договор №5.pdf" in page
    assert "toolfdp.exe" in page and "files of type .exe are not accepted: they can run code" in page
    assert f"the limit is {LIMIT}" in page
