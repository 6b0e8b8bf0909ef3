"""Personal data done right (issue 15 item 6): a customer who wrote on every channel, with agents' replies and
notes, orders, a contract, consents, an NLU suggestion, files and a quarantined mail, is erased; then every text
column of every table (search indexes included) and every file of the data directory is scanned for their name,
e-mail, phone, external ids and a marker text: nothing is found. Also the export archive and the audit of views."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.email.inbound import parse_to_inbound
from channels.email.settings import EmailChannelSettings
from channels.telegram.settings import TelegramChannelSettings
from channels.webchat import tokens
from channels.webchat.settings import WebchatChannelSettings
from core.users.models import Role
from tests.channels.telegram.botapi import TOKEN, FakeBotAPI, fixture, running_bot_api
from tests.channels.webchat.conftest import SITE_SECRET, Client
from tests.conftest import REST_KEY, keyword_engine, make_settings, make_user, responses
from tests.support import server as support_server
from tests.support.waiting import wait_for

NAME_FIRST, NAME_LAST = "Zinaida", "Quokkaova"
EMAIL = "zinaida.quokka@privacy-test.example"
PHONE = "+79995551234"
CHAT = 918273645
WEB_ID = "zq-user-77"
REST_ID = "crm-zq-5150"
MARKER = "plumbusmarker"
# What must not be found anywhere after the erasure (lower case; "plumbusmark" also catches the marker's stem in
# a tsvector, the digits any spelling of the phone).
NEEDLES = [NAME_FIRST.lower(), NAME_LAST.lower(), EMAIL, "zinaida.quokka", "9995551234", "555-12-34",
           str(CHAT), WEB_ID, REST_ID, "plumbusmark"]
SECRET = "tg-secret"


def mail(message_id: str) -> bytes:
    boundary = "b-42"
    return (
        f"From: {NAME_FIRST} {NAME_LAST} <{EMAIL}>\r\nTo: support@operator.example\r\n"
        f"Cc: {NAME_FIRST.lower()}.backup@privacy-test.example\r\n"
        f"Subject: {MARKER} internet for {NAME_LAST}\r\nMessage-ID: <{message_id}@privacy-test.example>\r\n"
        f"Date: Mon, 30 Nov 2026 10:00:00 +0300\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        f"--{boundary}\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
        f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{MARKER} my internet is down, call me at +7 999 555-12-34\r\n\r\n"
        f"On Sunday {NAME_FIRST} wrote:\r\n> {MARKER} earlier words of {NAME_LAST}\r\n\r\n"
        f"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<p>{MARKER} my internet is down, call me at +7 999 555-12-34</p>"
        f"<blockquote>{MARKER} earlier words of {NAME_LAST}</blockquote>\r\n--alt--\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf; name=\"{MARKER}-scan.pdf\"\r\n"
        f"Content-Disposition: attachment; filename=\"{MARKER}-scan.pdf\"\r\n\r\n"
        f"%PDF-1.4 {MARKER} passport of {NAME_LAST}\r\n"
        f"--{boundary}\r\nContent-Type: application/x-msdownload; name=\"{MARKER}.exe\"\r\n"
        f"Content-Disposition: attachment; filename=\"{MARKER}.exe\"\r\n\r\nMZ\r\n--{boundary}--\r\n"
    ).encode()


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with running_bot_api() as api:
        yield api


async def scan_database(engine: AsyncEngine) -> list[str]:
    """Every text-like column of every table (search tables and their shadow tables included) searched for every
    needle; returns `table.column: needle` for each hit."""
    hits: list[str] = []
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            tables = [r[0] for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
            columns = {t: [r[1] for r in await conn.execute(text(f'PRAGMA table_info("{t}")'))] for t in tables}
            bytes_match = ""
            # Blobs (the FTS5 index segments) are searched as bytes; their terms are stored lower-cased.
            match = ('CASE WHEN typeof("{c}") = \'blob\' THEN instr("{c}", CAST(:n AS BLOB)) > 0 '
                     'ELSE instr(lower(CAST("{c}" AS TEXT)), :n) > 0 END')
        else:
            rows = await conn.execute(text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN "
                "('text', 'character varying', 'json', 'jsonb', 'tsvector', 'bytea', 'USER-DEFINED', 'ARRAY')"))
            columns = {}
            for table, column, kind in rows:
                columns.setdefault(table, []).append(column if kind != "bytea" else f"bytea:{column}")
            match = "position(:n in lower(\"{c}\"::text)) > 0"
            bytes_match = "position(convert_to(:n, 'UTF8') in \"{c}\") > 0"
        for table, cols in columns.items():
            for column in cols:
                for needle in NEEDLES:
                    where = bytes_match.format(c=column[6:]) if column.startswith("bytea:") else match.format(c=column)
                    found = await conn.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {where}'),  # noqa: S608
                        {"n": needle})
                    if found:
                        hits.append(f"{table}.{column}: {needle}")
    return hits


def scan_files(root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        name = str(path.relative_to(root)).lower()
        hits += [f"{name} (name): {n}" for n in NEEDLES if n in name]
        if path.is_file():
            body = path.read_bytes().lower()
            hits += [f"{name}: {n}" for n in NEEDLES if n.encode() in body]
    return hits


@pytest.mark.timeout(300)
async def test_erasure_leaves_nothing_behind(db_url: str, db_engine: AsyncEngine, tmp_path: Path,
                                             sessionmaker: async_sessionmaker[AsyncSession],
                                             bot_api: FakeBotAPI) -> None:
    data = tmp_path / "data"
    telegram = TelegramChannelSettings(
        enabled=True, token=SecretStr(TOKEN), mode="webhook", base_url=bot_api.base_url,
        base_file_url=bot_api.base_file_url, webhook_url="https://bot.example/channels/telegram/webhook",
        webhook_secret=SecretStr(SECRET), request_timeout_seconds=5)
    settings = make_settings(db_url, data_dir=data, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY), trusted_keys=["environment"]), telegram=telegram,
        webchat=WebchatChannelSettings(identity_secret=SecretStr(SITE_SECRET))))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    server = await support_server.start_server(app)
    _, agent_token = await make_user(sessionmaker, Role.agent, "agent@test.example")
    _, admin_token = await make_user(sessionmaker, Role.admin, "admin@test.example")
    agent = {"Authorization": f"Bearer {agent_token}"}
    admin = {"Authorization": f"Bearer {admin_token}"}
    state = app.state.switchboard
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
            # E-mail, through the e-mail channel's parsing, file store and ingest.
            inbound = await asyncio.to_thread(
                parse_to_inbound, mail("m1"), EmailChannelSettings(), files=state.files.blocking(),
                mailbox="support", raw_ref="imap:support/1/1", received_at=datetime.now(UTC))
            first = await state.ingest.ingest(inbound)
            customer_id = first.customer_id
            await state.ingest.quarantine("email", "unparseable email", mail("m2")[:400])
            # Web chat: the site's signed identity with the same e-mail (linked: the site vouches for it).
            good = tokens.identity_hash(SITE_SECRET, WEB_ID)
            ws, ready, _ = await Client.connect(f"ws://127.0.0.1:{server.port}/channels/webchat/ws",
                                                identifier=WEB_ID, identifier_hash=good, email=EMAIL,
                                                name=f"{NAME_FIRST} {NAME_LAST}", page=f"shop.example/{MARKER}")
            assert ready["type"] == "ready"
            await ws.say("c1", f"{MARKER} hello from the site")
            await ws.next("message", where=lambda f: f["author"] == "bot")
            await ws.close()
            # REST from a trusted integration: e-mail and phone.
            r = await client.post("/channels/rest/messages", headers={"X-Api-Key": REST_KEY}, json={
                "external_message_id": "r-1", "sender": {"external_id": REST_ID, "name": f"{NAME_FIRST} {NAME_LAST}",
                                                         "email": EMAIL, "phone": PHONE},
                "text": f"{MARKER} where is my order ORD-555123"})
            assert r.status_code == 201, r.text
            # Telegram: a text, the user's own contact (the verified phone links them), a photo with a caption.
            bot_api.files = {"big-photo": b"\xff\xd8\xff" + f"{MARKER} photo of {NAME_LAST}".encode()}
            who = {"id": CHAT, "is_bot": False, "first_name": NAME_FIRST, "last_name": NAME_LAST}
            hook = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            text_update = fixture("text_message", 1, chat={"id": CHAT, "type": "private", "first_name": NAME_FIRST},
                                  text=f"{MARKER} hello from telegram")
            text_update["message"]["from"] = who
            contact = fixture("contact_own", 2, chat={"id": CHAT, "type": "private", "first_name": NAME_FIRST})
            contact["message"]["from"] = who
            contact["message"]["contact"] = {"phone_number": PHONE, "first_name": NAME_FIRST, "user_id": CHAT}
            photo = fixture("photo_message", 3, chat={"id": CHAT, "type": "private", "first_name": NAME_FIRST},
                            caption=f"{MARKER} router lights")
            photo["message"]["from"] = who
            for update in (text_update, contact, photo):
                assert (await client.post("/channels/telegram/webhook", json=update, headers=hook)).status_code == 200
            await wait_for(lambda: len(bot_api.sent_texts(CHAT)) >= 2, timeout=30)
            detail = (await client.get(f"/customers/{customer_id}", headers=agent)).json()
            assert {i["channel"] for i in detail["identities"]} == {"email", "webchat", "rest", "telegram"}, detail
            # Agents: a reply and a note on the e-mail ticket, an intent correction accepted as a training example.
            number = first.ticket_number
            r = await client.post(f"/tickets/{number}/reply", headers=agent,
                                  json={"text": f"Dear {NAME_FIRST} {NAME_LAST}, {MARKER} we are on it"})
            assert r.status_code == 201, r.text
            r = await client.post(f"/tickets/{number}/notes", headers=agent,
                                  json={"text": f"{MARKER} {NAME_LAST} called from {PHONE}"})
            assert r.status_code == 201, r.text
            r = await client.post("/admin/nlu/intents", headers=admin, json={"name": "internet_down"})
            assert r.status_code == 201, r.text
            r = await client.post(f"/messages/{first.message_id}/intent", headers=agent,
                                  json={"intent": "internet_down"})
            assert r.status_code == 201, r.text
            r = await client.post(f"/admin/nlu/suggestions/{r.json()['id']}/accept", headers=admin)
            assert r.status_code == 200, r.text
            # An order and a contract of theirs, consent changes with a note.
            r = await client.put("/orders/ORD-555123", headers=admin, json={
                "status": "accepted", "description": f"{MARKER} router for {NAME_LAST}", "customer": {"email": EMAIL},
                "note": f"{MARKER} by phone {PHONE}"})
            assert r.status_code == 201, r.text
            r = await client.post("/orders/ORD-555123/status", headers=admin,
                                  json={"status": "shipped", "note": f"{MARKER} to {NAME_LAST}"})
            assert r.status_code == 200, r.text
            r = await client.put("/contracts/K-555123", headers=admin, json={
                "customer": {"id": customer_id}, "tariff": "Home 500", "start_date": "2026-01-01",
                "end_date": "2027-12-31"})
            assert r.status_code == 201, r.text
            r = await client.patch(f"/customers/{customer_id}/preferences", headers=agent, json={
                "preferred_channel": "telegram", "quiet_from": "22:00", "quiet_until": "08:00",
                "time_zone": "Europe/Moscow", "consent_marketing": True, "note": f"{MARKER} {NAME_LAST} said yes"})
            assert r.status_code == 200, r.text

            # The export: one archive with the JSON and the files; audited.
            r = await client.get(f"/customers/{customer_id}/export.zip", headers=admin)
            assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
            archive = zipfile.ZipFile(io.BytesIO(r.content))
            exported = json.loads(archive.read("customer.json"))
            assert exported["customer"]["email"] == EMAIL and exported["customer"]["phone"] == PHONE
            assert {i["channel"] for i in exported["identities"]} == {"email", "webchat", "rest", "telegram"}
            assert [i["origin"] for i in exported["identities"] if i["origin"]] == [f"shop.example/{MARKER}"]
            files = [n for n in archive.namelist() if n.startswith("attachments/")]
            assert len(files) == 2 and any(n.endswith(f"{MARKER}-scan.pdf") for n in files)
            assert any(MARKER.encode() in archive.read(n) for n in files)
            assert exported["missing_files"] == []
            assert any(MARKER in m["text"] for m in exported["messages"])
            assert exported["orders"][0]["description"].startswith(MARKER)
            assert (await client.get(f"/customers/{customer_id}/export.zip", headers=agent)).status_code == 403

            before_db = await scan_database(db_engine)
            assert {h.split(":")[0] for h in before_db} >= {"customers.email", "messages.text", "notes.text",
                                                            "outbox.recipient", "nlu_suggestions.text",
                                                            "channel_identities.origin"}
            assert scan_files(data)  # the files are on disk before

            r = await client.post(f"/customers/{customer_id}/erase", headers=admin)
            assert r.status_code == 200, r.text
            assert await scan_database(db_engine) == []
            assert scan_files(data) == []
            if db_url.startswith("sqlite"):
                # The database file itself, and its write-ahead log: no free page nor old frame keeps the words.
                database = Path(db_url.removeprefix("sqlite+aiosqlite:///"))
                assert scan_files(database.parent) == [], "the SQLite file keeps erased bytes"
            # The statistics stay: every ticket and message row is still there, with its channel and intent.
            async with db_engine.connect() as conn:
                tickets = (await conn.execute(text("SELECT count(*), count(anonymised_at) FROM tickets"))).one()
                messages = await conn.scalar(text("SELECT count(*) FROM messages"))
                actions = [r[0] for r in await conn.execute(text(
                    "SELECT action FROM audit_log WHERE action LIKE 'customer.%' ORDER BY id"))]
            assert tickets[0] >= 3 and tickets[0] == tickets[1] and messages >= 8
            assert "customer.view" in actions and "customer.export" in actions and actions[-1] == "customer.erase"
    finally:
        await server.stop()
