"""Channels set up through the admin API: validation reasons, secrets never echoed and sealed at rest, audit,
roles, conflicts with the environment, the Telegram token check against the local Bot API stand-in."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.channel_configs.models import ChannelConfig
from core.users.models import User
from tests.channels.telegram.botapi import TOKEN, running_bot_api

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
