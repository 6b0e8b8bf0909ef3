"""One customer across channels (issue 15 item 4): linking by a contact a channel vouches for, suggested
duplicates, merge and un-merge with what moved restored, and the bad input of each."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from channels.config import ChannelsSettings, RestChannelSettings
from channels.email.inbound import parse_to_inbound
from channels.email.settings import EmailChannelSettings
from core.attachments.store import AttachmentStore
from core.audit.models import AuditEntry
from core.customers.models import Customer
from tests.conftest import REST_HEADERS, REST_KEY, make_settings

Auth = tuple[Any, dict[str, str]]


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The environment key is a trusted integration (its sender data is vouched for)."""
    from pydantic import SecretStr
    return make_settings(db_url, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY), trusted_keys=["environment"])))


MAIL = (b"From: Irina Kotova <Irina.Kotova@example.ru>\r\nTo: support@operator.example\r\n"
        b"Subject: Internet\r\nMessage-ID: <m1@example.ru>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0300\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nMy internet is down since morning.\r\n")


async def mail_in(client: httpx.AsyncClient, tmp_path: Path, raw: bytes = MAIL) -> dict[str, Any]:
    state = client.app.state.switchboard  # type: ignore[attr-defined]
    inbound = parse_to_inbound(raw, EmailChannelSettings(), files=AttachmentStore(tmp_path), mailbox="support",
                               raw_ref="r", received_at=datetime.now(UTC))
    result = await state.ingest.ingest(inbound)
    return {"ticket_number": result.ticket_number, "customer_id": result.customer_id}


async def rest_in(client: httpx.AsyncClient, ext: str, sender: dict[str, Any], text: str = "hello",
                  headers: dict[str, str] = REST_HEADERS) -> dict[str, Any]:
    r = await client.post("/channels/rest/messages", headers=headers,
                          json={"external_message_id": ext, "sender": sender, "text": text})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def customer_of(client: httpx.AsyncClient, number: str, h: dict[str, str]) -> int:
    return int((await client.get(f"/tickets/{number}", headers=h)).json()["customer"]["id"])


async def test_a_trusted_rest_message_with_a_known_email_and_phone_joins_that_customer(
        app_client: httpx.AsyncClient, agent: Auth, tmp_path: Path) -> None:
    """The issue's finding: a REST message with the email and phone of a customer known from e-mail made a new
    customer, and the ticket page said "no other tickets"."""
    first = await mail_in(app_client, tmp_path)
    rest = await rest_in(app_client, "r-1", {"external_id": "crm-42", "name": "Ирина Котова",
                                             "email": "irina.kotova@example.ru", "phone": "+7 900 123-45-67"})
    assert await customer_of(app_client, rest["ticket_number"], agent[1]) == first["customer_id"]
    # The ticket page lists the e-mail ticket among the customer's other tickets.
    detail = await app_client.get(f"/customers/{first['customer_id']}", headers=agent[1])
    assert {i["channel"] for i in detail.json()["identities"]} == {"email", "rest"}
    # A phone written another way (8 instead of +7, no spaces) is the same line.
    again = await rest_in(app_client, "r-2", {"external_id": "crm-43", "phone": "89001234567"})
    assert await customer_of(app_client, again["ticket_number"], agent[1]) == first["customer_id"]


async def test_an_untrusted_key_makes_a_suggested_duplicate_not_a_link(
        app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth, admin: Auth, tmp_path: Path) -> None:
    first = await mail_in(app_client, tmp_path)
    r = await app_client.post("/admin/api-keys", headers=admin[1], json={"name": "shop", "scopes": ["rest_channel"]})
    assert r.status_code == 201, r.text
    shop = {"X-Api-Key": r.json()["key"]}
    other = await rest_in(app_client, "s-1", {"external_id": "shop-1", "email": "IRINA.KOTOVA@example.ru"},
                          headers=shop)
    second = await customer_of(app_client, other["ticket_number"], agent[1])
    assert second != first["customer_id"]
    assert (await app_client.get("/customers/duplicates", headers=agent[1])).status_code == 403
    page = (await app_client.get("/customers/duplicates", headers=supervisor[1])).json()
    assert [(g["kind"], g["key"], sorted(c["id"] for c in g["customers"])) for g in page["items"]] == [
        ("email", "irina.kotova@example.ru", sorted([first["customer_id"], second]))]
    # Dismissed: never suggested again.
    r = await app_client.post("/customers/duplicates/dismiss", headers=supervisor[1],
                              json={"customer_ids": [first["customer_id"], second]})
    assert r.status_code == 204
    assert (await app_client.get("/customers/duplicates", headers=supervisor[1])).json()["items"] == []


async def test_merge_then_unmerge_restores_what_moved(
        app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    h = supervisor[1]
    a = await rest_in(app_client, "1", {"external_id": "a", "name": "Anna"}, "tv broken")
    b = await rest_in(app_client, "2", {"external_id": "b", "email": "b@example.ru", "phone": "+79001112233"})
    ca = await customer_of(app_client, a["ticket_number"], h)
    cb = await customer_of(app_client, b["ticket_number"], h)
    r = await app_client.put("/orders/ORD-100001", headers=h, json={"status": "accepted", "customer": {"id": cb}})
    assert r.status_code == 201, r.text
    r = await app_client.post(f"/customers/{ca}/merge", headers=h, json={"source_customer_id": cb})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "b@example.ru"  # filled from the source
    merges = (await app_client.get(f"/customers/{ca}/merges", headers=agent[1])).json()
    assert len(merges) == 1 and merges[0]["source_id"] == cb and merges[0]["moved"]["tickets"]
    # A new message from b's identity lands on the survivor, then follows the identity back on un-merge.
    later = await rest_in(app_client, "3", {"external_id": "b"}, "any news?")
    assert await customer_of(app_client, later["ticket_number"], h) == ca
    r = await app_client.post(f"/customers/merges/{merges[0]['id']}/unmerge", headers=h)
    assert r.status_code == 200, r.text
    survivor = (await app_client.get(f"/customers/{ca}", headers=h)).json()
    back = (await app_client.get(f"/customers/{cb}", headers=h)).json()
    assert survivor["email"] is None and survivor["phone"] is None and survivor["name"] == "Anna"
    assert back["merged_into_id"] is None and [i["external_id"] for i in back["identities"]] == ["b"]
    assert await customer_of(app_client, b["ticket_number"], h) == cb
    assert await customer_of(app_client, later["ticket_number"], h) == cb
    assert [o["number"] for o in (await app_client.get(f"/customers/{cb}/orders", headers=h)).json()] == ["ORD-100001"]
    async with sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.in_(["customer.merge", "customer.unmerge"])).order_by(AuditEntry.id)))
    assert actions == ["customer.merge", "customer.unmerge"]
    # Bad input: un-merge twice, un-merge of a customer never merged, merge into itself, unknown merge.
    r = await app_client.post(f"/customers/merges/{merges[0]['id']}/unmerge", headers=h)
    assert r.status_code == 409 and r.json()["details"]["reason"] == "not_merged"
    r = await app_client.post(f"/customers/{ca}/unmerge", headers=h)
    assert r.status_code == 409 and r.json()["details"]["reason"] == "not_merged"
    r = await app_client.post(f"/customers/{ca}/merge", headers=h, json={"source_customer_id": ca})
    assert r.status_code == 409 and r.json()["details"]["reason"] == "same_customer"
    assert (await app_client.post("/customers/merges/999999/unmerge", headers=h)).status_code == 404
    assert (await app_client.post(f"/customers/merges/{merges[0]['id']}/unmerge",
                                  headers=agent[1])).status_code == 403


async def test_merge_into_an_erased_customer_is_refused(app_client: httpx.AsyncClient, supervisor: Auth,
                                                         admin: Auth) -> None:
    h = supervisor[1]
    a = await rest_in(app_client, "1", {"external_id": "a"})
    b = await rest_in(app_client, "2", {"external_id": "b"})
    ca, cb = (await customer_of(app_client, a["ticket_number"], h),
              await customer_of(app_client, b["ticket_number"], h))
    assert (await app_client.post(f"/customers/{ca}/erase", headers=admin[1])).status_code == 200
    for target, source in ((ca, cb), (cb, ca)):
        r = await app_client.post(f"/customers/{target}/merge", headers=h, json={"source_customer_id": source})
        assert r.status_code == 409 and r.json()["details"]["reason"] == "erased"
    r = await app_client.post(f"/customers/{ca}/merge", headers=h, json={"source_customer_id": "x"})
    assert r.status_code == 422


async def test_an_unmerged_pair_is_not_linked_again_by_its_verified_contact(
        app_client: httpx.AsyncClient, supervisor: Auth, tmp_path: Path,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    h = supervisor[1]
    first = await mail_in(app_client, tmp_path)
    rest = await rest_in(app_client, "r-1", {"external_id": "crm-42", "email": "irina.kotova@example.ru"})
    assert await customer_of(app_client, rest["ticket_number"], h) == first["customer_id"]
    merges = (await app_client.get(f"/customers/{first['customer_id']}/merges", headers=h)).json()
    assert [m["reason"] for m in merges] == ["verified_contact"]
    r = await app_client.post(f"/customers/{merges[0]['source_id']}/unmerge", headers=h)
    assert r.status_code == 200, r.text
    again = await rest_in(app_client, "r-2", {"external_id": "crm-42", "email": "irina.kotova@example.ru"})
    assert await customer_of(app_client, again["ticket_number"], h) == merges[0]["source_id"]
    async with sessionmaker() as session:
        live = await session.scalars(select(Customer.id).where(Customer.merged_into_id.is_(None)))
        assert len(list(live)) == 2
