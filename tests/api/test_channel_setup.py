"""Channels set up through the admin API: validation reasons, secrets never echoed and sealed at rest, audit,
roles, conflicts with the environment, the Telegram token check against the local Bot API stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.email.settings import EmailChannelSettings, SmtpSettings
from channels.telegram.settings import TelegramChannelSettings
from core.audit.models import AuditEntry
from core.channel_configs.models import ChannelConfig
from core.channel_configs.secrets import SecretBox, UnreadableSecrets
from core.users.models import Role, User
from tests.channels.telegram.botapi import TOKEN, running_bot_api
from tests.conftest import REST_KEY, free_port, keyword_engine, make_settings, make_user, responses
from tests.support.waiting import wait_for

PASSWORD = "imap-Pa55-word-unique"
SMTP_PASSWORD = "smtp-Pa55-word-unique"


def mailbox(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "email", "name": "sales", "settings": {
        "host": "127.0.0.1", "port": 1, "security": "none", "username": "sales", "password": PASSWORD,
        "address": "sales@support.example",
        "smtp": {"host": "127.0.0.1", "port": 2, "security": "none", "username": "sales", "password": SMTP_PASSWORD}}}
    body.update(overrides)
    return body


async def test_a_mailbox_is_created_changed_and_deleted_and_its_secrets_never_come_back(
        app_client: httpx.AsyncClient, admin: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    h = admin[1]
    r = await app_client.post("/admin/channels", headers=h, json=mailbox())
    assert r.status_code == 201, r.text
    created = r.json()
    assert PASSWORD not in r.text and SMTP_PASSWORD not in r.text
    assert created["secrets_set"] == ["password", "smtp.password"] and created["in_use"] is True
    assert created["settings"]["password"] is None and created["settings"]["smtp"]["username"] == "sales"

    async with sessionmaker() as session:
        row = (await session.scalars(select(ChannelConfig))).one()
        assert row.secrets and PASSWORD not in row.secrets and SMTP_PASSWORD not in row.secrets
        assert PASSWORD not in str(row.settings)

    # An edit without the password keeps it; the audit says which fields changed, never their values.
    r = await app_client.patch(f"/admin/channels/{created['id']}", headers=h,
                               json={"settings": {**mailbox()["settings"], "password": "", "port": 2143}})
    assert r.status_code == 200, r.text
    assert r.json()["secrets_set"] == ["password", "smtp.password"] and r.json()["version"] == 2
    listed = (await app_client.get("/admin/channels", headers=h)).json()
    assert [c["name"] for c in listed["configs"]] == ["sales"] and PASSWORD not in str(listed)
    # A mailbox is not renamed: its IMAP read position and its mail are kept under its name.
    r = await app_client.patch(f"/admin/channels/{created['id']}", headers=h, json={"name": "sales2"})
    assert r.status_code == 422 and "cannot be renamed" in r.json()["message"], r.text
    r = await app_client.patch(f"/admin/channels/{created['id']}", headers=h,
                               json={"clear_secrets": ["smtp.password"], "enabled": False})
    assert r.status_code == 200 and r.json()["secrets_set"] == ["password"] and r.json()["enabled"] is False
    async with sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "channel_config")
                                         .order_by(AuditEntry.id))).all()
    assert [e.action for e in entries] == ["channel_config.create", "channel_config.update",
                                           "channel_config.update"]
    assert entries[1].data["fields"] == ["port"]
    assert entries[2].data["fields"] == ["smtp.password"] and entries[2].data["enabled"] == [True, False]
    assert all(PASSWORD not in str(e.data) and SMTP_PASSWORD not in str(e.data) for e in entries)

    health = await app_client.get("/health")
    assert PASSWORD not in health.text

    assert (await app_client.delete(f"/admin/channels/{created['id']}", headers=h)).status_code == 204
    assert (await app_client.get(f"/admin/channels/{created['id']}", headers=h)).status_code == 404


async def test_bad_input_is_refused_with_reasons(app_client: httpx.AsyncClient,
                                                 admin: tuple[User, dict[str, str]],
                                                 agent: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    bad_port = mailbox()
    bad_port["settings"] = {**bad_port["settings"], "port": 70000}
    r = await app_client.post("/admin/channels", headers=h, json=bad_port)
    assert r.status_code == 422 and "port" in r.json()["message"], r.text
    no_user = mailbox()
    del no_user["settings"]["username"]
    r = await app_client.post("/admin/channels", headers=h, json=no_user)
    assert r.status_code == 422 and "username" in r.json()["message"]
    assert PASSWORD not in r.text
    hostile = mailbox(name="nul")
    hostile["settings"] = {**hostile["settings"], "folder": "IN\u0000BOX", "host": "x" * 100_000}
    r = await app_client.post("/admin/channels", headers=h, json=hostile)
    assert 400 <= r.status_code < 500, r.text[:300]
    r = await app_client.post("/admin/channels", headers=h, json=mailbox(kind="fax"))
    assert r.status_code == 422
    r = await app_client.post("/admin/channels", headers=h, json=mailbox(name="../../etc"))
    assert r.status_code == 422
    r = await app_client.post("/admin/channels", headers=h, json={"kind": "telegram", "name": "bot",
                                                                 "settings": {"mode": "webhook", "token": TOKEN}})
    assert r.status_code == 422 and "webhook_secret" in r.json()["message"]
    r = await app_client.post("/admin/channels", headers=h, json={"kind": "telegram", "name": "bot",
                                                                 "settings": {"token": TOKEN}, "enabled": False})
    assert r.status_code == 201
    r = await app_client.post("/admin/channels", headers=h, json={"kind": "telegram", "name": "bot2",
                                                                 "settings": {"token": TOKEN}})
    assert r.status_code == 409 and "already set up" in r.json()["message"]
    assert (await app_client.post("/admin/channels", headers=h, json=mailbox())).status_code == 201
    assert (await app_client.post("/admin/channels", headers=h, json=mailbox())).status_code == 409
    r = await app_client.post("/admin/channels", headers=h, json={"kind": "whatsapp", "name": "wa",
                                                                 "settings": {"phone_number_id": "123"}})
    assert r.status_code == 422 and "access_token, app_secret, verify_token" in r.json()["message"]
    r = await app_client.post("/admin/channels", headers=h, json={"kind": "whatsapp", "name": "wa", "settings": {
        "phone_number_id": "123", "access_token": "t", "app_secret": "s", "verify_token": "v",
        "api_base_url": f"http://127.0.0.1:{free_port()}"}})
    assert r.status_code == 201 and r.json()["secrets_set"] == ["access_token", "app_secret", "verify_token"]
    state = app_client.app.state.switchboard  # type: ignore[attr-defined]
    await wait_for(lambda: state.channels.get("whatsapp"), what="the WhatsApp channel running")
    assert (await app_client.get("/admin/channels", headers=agent[1])).status_code == 403
    assert (await app_client.post("/admin/channels", json=mailbox())).status_code == 401
    assert (await app_client.patch("/admin/channels/999999", headers=h, json={})).status_code == 404
    assert (await app_client.post("/admin/channels/999999/test", headers=h)).status_code == 404


async def test_the_telegram_token_is_checked_with_getme(app_client: httpx.AsyncClient,
                                                        admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    async with running_bot_api() as api:
        r = await app_client.post("/admin/channels", headers=h, json={
            "kind": "telegram", "name": "bot", "enabled": False,
            "settings": {"token": "123456:WRONG-token", "base_url": api.base_url,
                         "base_file_url": api.base_file_url}})
        assert r.status_code == 201, r.text
        config_id = r.json()["id"]
        r = await app_client.post(f"/admin/channels/{config_id}/test", headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is False and r.json()["steps"][0]["reason"] == "bad_token"
        assert "WRONG" not in r.text
        r = await app_client.patch(f"/admin/channels/{config_id}", headers=h, json={"settings": {
            "token": TOKEN, "base_url": api.base_url, "base_file_url": api.base_file_url}})
        assert r.status_code == 200
        r = await app_client.post(f"/admin/channels/{config_id}/test", headers=h)
        assert r.json() == {"ok": True, "steps": [{"step": "telegram", "ok": True, "reason": None,
                                                   "message": "@test_bot"}]}
        assert len(api.called("getMe")) == 1  # the stand-in records only calls with the right token


async def test_the_openapi_documents_the_errors(app_client: httpx.AsyncClient) -> None:
    doc = (await app_client.get("/openapi.json")).json()
    item = doc["paths"]["/admin/channels/{config_id}"]["patch"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(item)
    assert {"401", "403", "422"} <= set(doc["paths"]["/admin/channels"]["post"]["responses"])


async def test_another_instance_follows_a_change_within_seconds_and_the_environment_keeps_its_channel(
        app_client: httpx.AsyncClient, admin: tuple[User, dict[str, str]], db_url: str, tmp_path: Path) -> None:
    """Instance B learns of a change made through instance A by its periodic look (no Redis here): the web chat
    is rebuilt with the new settings; switched off, it goes; the REST channel of the environment stays."""
    other = create_app(make_settings(db_url, data_dir=tmp_path / "b", channel_config_seconds=0.1),
                       nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    async with other.router.lifespan_context(other):
        state = other.state.switchboard
        before = state.channels.get("webchat")
        assert before is not None and before.settings.allowed_origins == []
        r = await app_client.post("/admin/channels", headers=admin[1], json={
            "kind": "webchat", "name": "site", "settings": {"allowed_origins": ["https://shop.example"]}})
        assert r.status_code == 201, r.text
        adapter = await wait_for(lambda: state.channels.get("webchat") is not before
                                 and state.channels.get("webchat"), what="the web chat rebuilt on B")
        assert adapter.settings.allowed_origins == ["https://shop.example"] and before.health.state == "stopped"
        r = await app_client.patch(f"/admin/channels/{r.json()['id']}", headers=admin[1], json={"enabled": False})
        assert r.status_code == 200
        await wait_for(lambda: state.channels.get("webchat") is None, what="the web chat off on B")
        assert state.channels.get("rest") is not None
        list_ = (await app_client.get("/admin/channels", headers=admin[1])).json()
        assert {"kind": "rest", "enabled": True, "mailboxes": []} in list_["environment"]


async def test_an_environment_channel_is_not_replaced(db_url: str, db_engine: AsyncEngine, tmp_path: Path,
                                                     sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    settings = make_settings(db_url, data_dir=tmp_path, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)),
        telegram=TelegramChannelSettings(enabled=True, token=SecretStr(TOKEN), base_url="http://127.0.0.1:9/bot"),
        email=EmailChannelSettings(smtp=SmtpSettings(host="127.0.0.1", port=free_port()))))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    _user, token = await make_user(sessionmaker, Role.admin, "root@test.example")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.post("/admin/channels", headers={"Authorization": f"Bearer {token}"}, json={
                "kind": "telegram", "name": "bot", "settings": {"token": TOKEN}})
            assert r.status_code == 409 and r.json()["details"]["reason"] == "environment"
            # The environment's e-mail channel has an SMTP server: a mailbox may go without one, and a cleared
            # one stays cleared (its kept password does not bring it back as 127.0.0.1:587).
            h = {"Authorization": f"Bearer {token}"}
            r = await client.post("/admin/channels", headers=h, json=mailbox())
            assert r.status_code == 201, r.text
            r = await client.patch(f"/admin/channels/{r.json()['id']}", headers=h,
                                   json={"settings": {**mailbox()["settings"], "password": "", "smtp": None}})
            assert r.status_code == 200, r.text
            assert r.json()["settings"]["smtp"] is None and r.json()["secrets_set"] == ["password"]


async def test_secrets_sealed_under_an_old_key_are_read_and_sealed_again_under_the_new_one(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A key rotation: `reseal` (run at start) seals every row again under the new key, so the old key can go;
    a row no key opens is left as it is."""
    from channels.setup.service import reseal

    old_key, new_key = "old-key-" + "x" * 40, "new-key-" + "y" * 40
    old, new = SecretBox(old_key), SecretBox(new_key, [old_key])
    token = old.seal({"password": PASSWORD})
    assert token is not None and PASSWORD not in token
    assert new.open(token) == {"password": PASSWORD}
    lost = SecretBox("another-key-" + "z" * 40).seal({"password": "x"})
    async with sessionmaker() as session, session.begin():
        session.add_all([ChannelConfig(kind="email", name="a", settings={}, secrets=token, version=1),
                         ChannelConfig(kind="email", name="b", settings={}, secrets=lost, version=1)])
    async with sessionmaker() as session, session.begin():
        assert await reseal(session, new) == 1
    async with sessionmaker() as session:
        a, b = (await session.scalars(select(ChannelConfig).order_by(ChannelConfig.name))).all()
    assert SecretBox(new_key).open(a.secrets) == {"password": PASSWORD}  # the old key is no longer needed
    with pytest.raises(UnreadableSecrets):
        old.open(a.secrets)
    assert b.secrets == lost


async def test_a_cleared_smtp_server_stays_cleared(app_client: httpx.AsyncClient,
                                                   admin: tuple[User, dict[str, str]]) -> None:
    """Clearing `smtp` while its password is stored: the kept password must not rebuild an SMTP server (which
    would validate as 127.0.0.1:587 and send the replies there). The environment has no SMTP here: a mailbox
    without one is refused (with one, it is kept cleared: test_an_environment_channel_is_not_replaced)."""
    h = admin[1]
    no_smtp = mailbox()
    del no_smtp["settings"]["smtp"]
    r = await app_client.post("/admin/channels", headers=h, json=no_smtp)
    assert r.status_code == 422 and "needs an SMTP server" in r.json()["message"], r.text
    r = await app_client.post("/admin/channels", headers=h, json=mailbox())
    assert r.status_code == 201, r.text
    r = await app_client.patch(f"/admin/channels/{r.json()['id']}", headers=h,
                               json={"settings": {**mailbox()["settings"], "password": "", "smtp": None}})
    assert r.status_code == 422 and r.json()["details"]["field"] == "smtp.host", r.text


async def test_an_unknown_setting_is_refused_naming_it(app_client: httpx.AsyncClient,
                                                       admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    typo = mailbox()
    typo["settings"] = {**typo["settings"], "pasword": "x"}
    r = await app_client.post("/admin/channels", headers=h, json=typo)
    assert r.status_code == 422 and "pasword" in r.json()["message"], r.text
    nested = mailbox()
    nested["settings"] = {**nested["settings"], "smtp": {**nested["settings"]["smtp"], "pasword": "x"}}
    r = await app_client.post("/admin/channels", headers=h, json=nested)
    assert r.status_code == 422 and "smtp.pasword" in r.json()["message"], r.text
    r = await app_client.post("/admin/channels", headers=h, json={"kind": "telegram", "name": "bot",
                                                                 "settings": {"token": TOKEN, "tokn": "x"}})
    assert r.status_code == 422 and "tokn" in r.json()["message"], r.text
    r = await app_client.post("/admin/channels", headers=h, json=mailbox())
    assert r.status_code == 201, r.text
    r = await app_client.patch(f"/admin/channels/{r.json()['id']}", headers=h,
                               json={"settings": {**mailbox()["settings"], "hots": "x"}})
    assert r.status_code == 422 and "hots" in r.json()["message"], r.text


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_two_creates_at_once_make_one_row_and_a_409(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A double-click: two requests create the web chat at the same moment (two sessions). The second waits for
    the first and is told it exists (409), rather than saving a second row of a one-row kind (or a 500).
    PostgreSQL only: on SQLite a transaction holds the app's one connection, so they cannot overlap."""
    from sqlalchemy import text

    from channels.setup import service
    from channels.setup.schemas import ChannelConfigCreate
    from core.errors import ConflictError

    user, _token = await make_user(sessionmaker, Role.admin, "twice@test.example")
    box, env = SecretBox("k" * 40), ChannelsSettings()

    async def create(session: AsyncSession, name: str) -> None:
        await service.create(session, ChannelConfigCreate(kind="webchat", name=name), user, box, env)

    async with sessionmaker() as first, sessionmaker() as second, sessionmaker() as watcher:
        await create(first, "one")  # not committed yet
        late = asyncio.create_task(create(second, "two"))

        async def waiting() -> bool:
            return bool(await watcher.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")))

        await wait_for(waiting, what="the second create waiting for the first")
        await first.commit()
        with pytest.raises(ConflictError, match="already set up"):
            await late
        await second.rollback()
    async with sessionmaker() as session:
        assert [r.name for r in await session.scalars(select(ChannelConfig))] == ["one"]


async def test_a_row_of_an_unknown_kind_is_shown_unusable_and_can_be_deleted(
        app_client: httpx.AsyncClient, admin: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A kind saved by a newer version (then downgraded): listed as unusable with the reason, never a 500."""
    async with sessionmaker() as session, session.begin():
        row = ChannelConfig(kind="fax", name="fax", enabled=True, settings={"number": "1"}, version=1)
        session.add(row)
    h = admin[1]
    listed = await app_client.get("/admin/channels", headers=h)
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["configs"]
    assert shown["in_use"] is False and "unknown kind 'fax'" in shown["problem"]
    assert (await app_client.get(f"/admin/channels/{row.id}", headers=h)).json()["problem"] == shown["problem"]
    r = await app_client.patch(f"/admin/channels/{row.id}", headers=h, json={"enabled": False})
    assert r.status_code == 422 and "can only be deleted" in r.json()["message"], r.text
    r = await app_client.post(f"/admin/channels/{row.id}/test", headers=h)
    assert r.status_code == 422 and "unknown kind" in r.json()["message"], r.text
    assert (await app_client.delete(f"/admin/channels/{row.id}", headers=h)).status_code == 204
