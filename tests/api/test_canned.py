"""Canned responses through the API: agents list and search them (rendered for a ticket), admins manage them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import REST_HEADERS, rest_message

Auth = tuple[Any, dict[str, str]]


async def test_canned_responses_api(app_client: httpx.AsyncClient, agent: Auth, admin: Auth) -> None:
    (me, h), (_, ah) = agent, admin
    r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("c-1", "internet is down", sender="anna"))
    number = r.json()["ticket_number"]

    made = []
    for body in ({"title": "Restart the router", "shortcut": "restart",
                  "body": "Hello {{customer_name}}, please restart the router ({{ticket_number}}). {{agent_name}}"},
                 {"title": "Thanks", "shortcut": "thx", "body": "Thank you!", "language": "en"},
                 {"title": "Спасибо", "shortcut": "spasibo", "body": "Спасибо!", "language": "ru"},
                 {"title": "Billing only", "body": "See your invoice.", "queue": "billing"}):
        r = await app_client.post("/canned-responses", headers=ah, json=body)
        assert r.status_code == 201, r.text
        made.append(r.json())

    r = await app_client.get("/canned-responses", headers=h)
    assert r.status_code == 200
    assert [c["title"] for c in r.json()] == ["Billing only", "Restart the router", "Thanks", "Спасибо"]
    assert all(c["text"] is None for c in r.json())
    # What "/re" in a reply box finds: a shortcut starting with it first, then titles holding it.
    r = await app_client.get("/canned-responses", headers=h, params={"q": "/re"})
    assert [c["shortcut"] for c in r.json()] == ["restart"]
    r = await app_client.get("/canned-responses", headers=h, params={"q": "ill"})
    assert [c["title"] for c in r.json()] == ["Billing only"]
    # For a ticket: only those of its language and queue, with the values filled in.
    r = await app_client.get("/canned-responses", headers=h, params={"ticket": number})
    assert r.status_code == 200, r.text
    by_title = {c["title"]: c for c in r.json()}
    assert set(by_title) == {"Restart the router", "Thanks"}
    assert by_title["Restart the router"]["text"] == (
        f"Hello Test Customer, please restart the router ({number}). {me.name}")
    r = await app_client.get(f"/canned-responses/{made[1]['id']}", headers=h)
    assert r.status_code == 200 and r.json()["body"] == "Thank you!"

    # Agents read, admins write.
    r = await app_client.post("/canned-responses", headers=h, json={"title": "x", "body": "y"})
    assert r.status_code == 403
    r = await app_client.put(f"/canned-responses/{made[1]['id']}", headers=ah,
                             json={"title": "Thanks!", "body": "Thank you, {{customer_name}}!", "shortcut": "thx"})
    assert r.status_code == 200 and r.json()["title"] == "Thanks!"
    r = await app_client.delete(f"/canned-responses/{made[3]['id']}", headers=ah)
    assert r.status_code == 204
    assert (await app_client.get(f"/canned-responses/{made[3]['id']}", headers=h)).status_code == 404

    # Bad input: a clear 4xx with the reason.
    for body, status, reason in (
            ({"title": "Dup", "body": "b", "shortcut": "thx"}, 409, "already used"),
            ({"title": "Var", "body": "{{password}}"}, 422, "unknown variables"),
            ({"title": "", "body": "b"}, 422, "title"),
            ({"title": "Bad", "body": "b", "shortcut": "Has Space"}, 422, "shortcut"),
            ({"title": "Q", "body": "b", "queue": "no-such-queue"}, 404, "no-such-queue"),
            ({"title": "X", "body": "b", "extra": 1}, 422, "extra"),
            ({"title": "L", "body": "b", "language": "de"}, 422, "language")):
        r = await app_client.post("/canned-responses", headers=ah, json=body)
        assert r.status_code == status, (body, r.text)
        assert reason in r.text, (body, r.text)
    r = await app_client.get("/canned-responses", headers=h, params={"ticket": "T-999999"})
    assert r.status_code == 404
    r = await app_client.get("/canned-responses", headers=h, params={"ticket": "<script>"})
    assert r.status_code == 404
    r = await app_client.get("/canned-responses", headers=h, params={"q": "x" * 101})
    assert r.status_code == 422
    r = await app_client.get("/canned-responses/0", headers=h)
    assert r.status_code == 422
    assert (await app_client.get("/canned-responses")).status_code == 401
