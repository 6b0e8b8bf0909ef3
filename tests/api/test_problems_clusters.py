"""What the bot did not understand, through the real ingest path: the clusters API groups the escalated texts, and
"make this an intent" adds exactly the chosen texts as examples through the intents admin (admins only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.db.base import utcnow
from core.tickets.models import Message
from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message
from tests.core.problems.corpus import CORPUS

Auth = tuple[User, dict[str, str]]


async def send_corpus(client: httpx.AsyncClient) -> dict[str, str]:
    """Every corpus text from its own customer (so each is a ticket's first message); text -> topic."""
    truth = {}
    for topic, texts in CORPUS.items():
        for i, text in enumerate(texts):
            r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message(f"{topic}-{i}", text, sender=f"{topic}-{i}"))
            assert r.status_code == 201, r.text
            truth[text] = topic
    # One the bot understands (a greeting): it never belongs to the clusters.
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("greet", "hello there", sender="greeter"))
    assert r.status_code == 201
    return truth


def period() -> dict[str, str]:
    today = utcnow().date()
    return {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}


async def clusters(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get("/reports/problems/clusters", params=period(), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_clusters_group_what_the_bot_did_not_understand(app_client: httpx.AsyncClient, supervisor: Auth,
                                                              agent: Auth) -> None:
    truth = await send_corpus(app_client)
    report = await clusters(app_client, supervisor[1])
    texts = sum(len(v) for v in CORPUS.values())
    assert report["messages"] == texts and report["analysed"] == texts and not report["capped"]
    found = [{truth[s["text"]] for s in c["choices"]} for c in report["clusters"]]
    assert all(len(topics) == 1 for topics in found), found
    assert sorted(next(iter(t)) for t in found) == sorted(k for k in CORPUS if k != "noise")
    first = report["clusters"][0]
    assert first["size"] == 4 and {s["text"] for s in first["choices"]} == set(CORPUS["router_ru"])
    assert first["handled_intent"] is None and first["handled"] == 0 and len(first["message_ids"]) == 4
    assert report["clustered"] == texts - len(CORPUS["noise"])

    assert (await app_client.get("/reports/problems/clusters", params=period(), headers=agent[1])).status_code == 403
    bad = await app_client.get("/reports/problems/clusters", params={"from": "2026-03-10", "to": "2026-03-01"},
                               headers=supervisor[1])
    assert bad.status_code == 422 and "from must not be after to" in bad.text
    long = await app_client.get("/reports/problems/clusters", params={"from": "2024-01-01", "to": "2026-03-01"},
                                headers=supervisor[1])
    assert long.status_code == 422 and "366" in long.text
    assert (await app_client.get("/reports/problems/clusters", params={"from": "2026-02-30", "to": "2026-03-01"},
                                 headers=supervisor[1])).status_code == 422


async def test_make_an_intent_adds_exactly_the_chosen_texts(app_client: httpx.AsyncClient, admin: Auth,
                                                           supervisor: Auth,
                                                           sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await send_corpus(app_client)
    router = (await clusters(app_client, admin[1]))["clusters"][0]
    chosen = [c for c in router["choices"] if "лампочка" not in c["text"]]  # one text unpicked
    body = {"intent": "router_red_light", "example_ids": [c["message_id"] for c in chosen],
            "message_ids": router["message_ids"]}

    assert (await app_client.post("/reports/problems/clusters/intent", json=body,
                                  headers=supervisor[1])).status_code == 403
    r = await app_client.post("/reports/problems/clusters/intent", json=body, headers=admin[1])
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["intent"] == "router_red_light" and made["created"] is True and made["handled"] == 4
    assert sorted(made["examples_added"]) == sorted(c["text"] for c in chosen) and made["examples_skipped"] == []

    intent = (await app_client.get("/admin/nlu/intents/router_red_light", headers=admin[1])).json()
    assert sorted(e["text"] for e in intent["examples"]) == sorted(c["text"] for c in chosen)
    assert {e["source"] for e in intent["examples"]} == {"cluster"}

    after = (await clusters(app_client, admin[1]))["clusters"][0]
    assert after["key"] == router["key"] and after["handled_intent"] == "router_red_light" and after["handled"] == 4
    assert {c["text"]: c["handled_intent"] for c in after["choices"]} == {
        c["text"]: "router_red_light" for c in router["choices"]}

    # Again with one more text into the same (now existing) intent: only the new one is added.
    again = dict(body, example_ids=[c["message_id"] for c in router["choices"]])
    r = await app_client.post("/reports/problems/clusters/intent", json=again, headers=admin[1])
    assert r.status_code == 201 and r.json()["created"] is False
    assert r.json()["examples_added"] == ["роутер горит красная лампочка"]
    assert len(r.json()["examples_skipped"]) == len(chosen)

    async with sessionmaker() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.actor_user_id == admin[0].id))).all()
    assert actions.count("problems.cluster.intent") == 2 and actions.count("nlu.intent.create") == 1
    assert actions.count("nlu.example.add") == len(router["choices"])


async def test_make_an_intent_refuses_bad_input_with_reasons(app_client: httpx.AsyncClient, admin: Auth,
                                                            sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await send_corpus(app_client)
    router = (await clusters(app_client, admin[1]))["clusters"][0]
    ids = [c["message_id"] for c in router["choices"]]
    url = "/reports/problems/clusters/intent"

    for name in ("Router", "1router", "r", "router red", "роутер", "x" * 65):
        r = await app_client.post(url, json={"intent": name, "example_ids": ids}, headers=admin[1])
        assert r.status_code == 422, (name, r.text)
    r = await app_client.post(url, json={"intent": "router red", "example_ids": ids}, headers=admin[1])
    assert "lower-case latin letters" in r.text
    r = await app_client.post(url, json={"intent": "router_red", "example_ids": []}, headers=admin[1])
    assert r.status_code == 422 and "at least one text" in r.text
    async with sessionmaker() as s:
        greeting = await s.scalar(select(Message.id).where(Message.text == "hello there"))
    r = await app_client.post(url, json={"intent": "router_red", "example_ids": [*ids, greeting]}, headers=admin[1])
    assert r.status_code == 422 and "without understanding" in r.text and str(greeting) in r.text
    r = await app_client.post(url, json={"intent": "router_red", "example_ids": [999999]}, headers=admin[1])
    assert r.status_code == 422
    # Nothing was made by the refused requests.
    assert (await app_client.get("/admin/nlu/intents/router_red", headers=admin[1])).status_code == 404
    assert (await clusters(app_client, admin[1]))["clusters"][0]["handled"] == 0
