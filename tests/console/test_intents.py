"""Admin → Intents over HTTP: every form with its CSRF and role checks, bad input, training, reports, versions,
suggested examples, Rasa YAML import/export."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from core.db.base import utcnow
from core.nlu_admin import service as nlu_admin
from core.nlu_admin.models import JobState, NluExample, NluSuggestion, NluTrainingJob
from core.tickets.models import Message
from tests.conftest import REST_HEADERS, make_settings, rest_message
from tests.console.conftest import People, csrf_of, login, post_form

INTENTS = "/console/admin/intents"
FLASH = re.compile(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>')


async def flash_after(client: httpx.AsyncClient, response: httpx.Response) -> tuple[str, str]:
    """Follow a form's redirect and return the (kind, text) of the flash shown there."""
    assert response.status_code == 303, response.text[:300]
    page = await client.get(response.headers["location"])
    match = FLASH.search(page.text)
    assert match, page.text[:500]
    return match.group(1), html.unescape(match.group(2))


async def upload(client: httpx.AsyncClient, content: bytes, name: str = "nlu.yml",
                 replace: bool = False, mode: str | None = None) -> httpx.Response:
    page = await client.get(INTENTS)
    data = {"csrf_token": csrf_of(page.text), "mode": mode or ("replace" if replace else "merge")}
    return await client.post("/console/admin/intents-data/import", data=data,
                             files={"file": (name, content, "application/x-yaml")},
                             headers={"Referer": f"http://testserver{INTENTS}"})


async def wait_job(client: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    for _ in range(300):
        r = await client.get(f"/console/admin/training/jobs/{job_id}/status", headers={"X-Requested-With": "fetch"})
        assert r.status_code == 200
        if r.json()["finished"]:
            return dict(r.json())
        await asyncio.sleep(0.05)
    raise AssertionError("training did not finish")


ADMIN_PAGES = (INTENTS, "/console/admin/training", "/console/admin/suggestions", "/console/admin/intents-data/export")
FORMS = (
    (INTENTS, {"name": "sim_block"}),
    (f"{INTENTS}/greeting/examples", {"text": "hello"}),
    (f"{INTENTS}/greeting/answers", {"en": "Hi!"}),
    (f"{INTENTS}/greeting/delete", {}),
    ("/console/admin/training", {}),
    ("/console/admin/training/rollback", {}),
    ("/console/admin/training/versions/v1/activate", {}),
    ("/console/admin/suggestions/1", {"decision": "accept"}),
)


async def test_only_admins_see_or_change_intents(client: httpx.AsyncClient, people: People,
                                                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        await nlu_admin.create_intent(session, "greeting", "", None)
    for email in ("agent@test.example", "super@test.example"):
        client.cookies.clear()
        await login(client, email)
        token = csrf_of((await client.get("/console/inbox")).text)
        for url in ADMIN_PAGES:
            assert (await client.get(url)).status_code == 403, url
        for action, data in FORMS:
            assert (await client.post(action, data={"csrf_token": token, **data})).status_code == 403, action
    async with sessionmaker() as session:
        assert (await nlu_admin.get_intent(session, "greeting")).examples == []


@pytest.mark.parametrize(("action", "data"), FORMS)
async def test_every_form_needs_the_csrf_token(client: httpx.AsyncClient, people: People,
                                               sessionmaker: async_sessionmaker[AsyncSession], action: str,
                                               data: dict[str, str]) -> None:
    async with sessionmaker() as session, session.begin():
        await nlu_admin.create_intent(session, "greeting", "", None)
    await login(client, "admin@test.example")
    assert (await client.post(action, data=data)).status_code == 403
    assert (await client.post(action, data={"csrf_token": "forged", **data})).status_code == 403
    async with sessionmaker() as session:
        assert [i["name"] for i in await nlu_admin.list_intents(session)] == ["greeting"]
        assert (await nlu_admin.get_intent(session, "greeting")).responses == []
        assert await nlu_admin.list_jobs(session) == []
    r = await client.post("/console/admin/intents-data/import", files={"file": ("a.yml", b"nlu: []")})
    assert r.status_code == 403


async def test_admin_edits_intents_examples_and_answers(client: httpx.AsyncClient, people: People,
                                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    r = await post_form(client, INTENTS, INTENTS, {"name": "Bad Name!", "description": ""})
    kind, text = await flash_after(client, r)
    assert kind == "error" and "lower-case latin letters" in text
    r = await post_form(client, INTENTS, INTENTS, {"name": "sim_block", "description": "Lost or stolen SIM"})
    assert r.headers["location"] == f"{INTENTS}/sim_block"
    r = await post_form(client, INTENTS, INTENTS, {"name": "sim_block"})
    assert (await flash_after(client, r))[0] == "error"

    url = f"{INTENTS}/sim_block"
    r = await post_form(client, url, f"{url}/examples", {"text": "  \n \n"})
    assert await flash_after(client, r) == ("error", "An example needs some text.")
    r = await post_form(client, url, f"{url}/examples", {"text": "x" * 1001})
    assert "longer than 1000" in (await flash_after(client, r))[1]
    lines = "block my sim card\n\nпотерял симку  что делать\nblock my sim card\n<script>alert(1)</script>\n"
    r = await post_form(client, url, f"{url}/examples", {"text": lines})
    assert await flash_after(client, r) == ("info", "3 examples added.")
    r = await post_form(client, url, f"{url}/examples", {"text": "block my sim card\nlost sim"})
    assert await flash_after(client, r) == ("info", "1 example added. 1 was already there and was skipped.")
    page = (await client.get(url)).text
    assert page.count('class="lang-tag lang-en"') == 3 and page.count('class="lang-tag lang-ru"') == 1
    assert "потерял симку что делать" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    async with sessionmaker() as session:
        example = (await session.scalars(select(NluExample).where(NluExample.text == "lost sim"))).one()
    r = await post_form(client, url, f"{url}/examples/{example.id}/delete", {})
    assert await flash_after(client, r) == ("info", "Example deleted.")
    r = await post_form(client, url, f"{url}/examples/{example.id}/delete", {})
    assert (await flash_after(client, r))[0] == "error"

    r = await post_form(client, url, f"{url}/answers", {"ru": "Заблокируйте SIM в приложении.", "en": "Block it."})
    page = (await client.get(url)).text
    assert "Заблокируйте SIM в приложении.</textarea>" in page
    r = await post_form(client, url, f"{url}/answers", {"ru": "Заблокируйте SIM в приложении.", "en": "  "})
    async with sessionmaker() as session:
        intent = await nlu_admin.get_intent(session, "sim_block")
        assert {r.language: r.text for r in intent.responses} == {"ru": "Заблокируйте SIM в приложении."}
    # The page's "Remove the answer" button (an empty field reads as a missing one: it changes nothing).
    r = await post_form(client, url, f"{url}/answers", {"en": "Block it.", "ru": ""})
    r = await post_form(client, url, f"{url}/answers", {"remove": "ru"})
    async with sessionmaker() as session:
        intent = await nlu_admin.get_intent(session, "sim_block")
        assert {r.language: r.text for r in intent.responses} == {"en": "Block it."}
    r = await post_form(client, url, f"{url}/answers", {"remove": "xx"})
    assert (await flash_after(client, r))[0] == "error"

    listing = (await client.get(INTENTS)).text
    row = re.search(r'<tr data-intent="sim_block">.*?</tr>', listing, re.S)
    assert row is not None
    # ru 1, en 2 (one deleted): both under five, so both are flagged; unrouted intents go to the general queue.
    assert '<td class="num few">1</td>\n      <td class="num few">2</td>' in row.group(0)
    assert '<span class="badge">General</span>' in row.group(0)
    assert 'aria-label="Examples per intent"' in listing and "<svg" in listing

    r = await post_form(client, url, f"{url}/delete", {})
    assert await flash_after(client, r) == ("info", "Intent “sim_block” deleted.")
    assert (await client.get(url)).status_code == 404
    audit = (await client.get("/console/admin/audit?entity_type=intent")).text
    assert "nlu.intent.create" in audit and "nlu.intent.delete" in audit


async def test_training_runs_in_the_background_and_a_second_one_is_refused(
    client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        for name, text in (("greeting", "hello"), ("goodbye", "bye")):
            await nlu_admin.create_intent(session, name, "", None)
            await nlu_admin.add_example(session, name, text, None)
    await login(client, "admin@test.example")
    page = (await client.get("/console/admin/training")).text
    assert "keeps its models itself" in page  # the keyword engine has no versions
    r = await post_form(client, "/console/admin/training", "/console/admin/training", {"activate": "on"})
    assert r.status_code == 303
    job_id = int(r.headers["location"].rsplit("/", 1)[1])
    job = await wait_job(client, job_id)
    assert job["state"] == "succeeded" and job["version"] == "keyword-1" and job["progress"] == 1.0
    page = (await client.get(f"/console/admin/training/jobs/{job_id}")).text
    assert 'data-state="succeeded"' in page and "data-job-status-url" not in page
    assert 'aria-valuenow="100"' in page

    async with sessionmaker() as session, session.begin():
        busy = NluTrainingJob(state=JobState.running, progress=0.4, stage="fitting", activate=False,
                              created_at=utcnow(), report={})
        session.add(busy)
    r = await post_form(client, "/console/admin/training", "/console/admin/training", {})
    assert r.headers["location"] == f"/console/admin/training/jobs/{busy.id}"
    kind, text = await flash_after(client, r)
    assert kind == "error" and f"Another training job (#{busy.id}) is still running" in text
    running = (await client.get(f"/console/admin/training/jobs/{busy.id}")).text
    assert f'data-job-status-url="/console/admin/training/jobs/{busy.id}/status"' in running
    assert 'aria-valuenow="40"' in running and "fitting" in running

    r = await post_form(client, "/console/admin/training", "/console/admin/training/versions/v1/activate", {})
    assert "keeps its models itself" in (await flash_after(client, r))[1]
    assert (await client.get("/console/admin/training/jobs/999999")).status_code == 404
    client.cookies.clear()
    r = await client.get(f"/console/admin/training/jobs/{job_id}/status", headers={"X-Requested-With": "fetch"})
    assert r.status_code == 401


REPORT = {
    "n_examples": 1200, "n_intents": 3, "train_seconds": 2.5,
    "holdout": {"accuracy": 0.91, "macro_f1": 0.885, "n_examples": 240, "oos_recall": None,
                "answered_precision": 0.97,
                "per_intent": {"roaming": {"precision": 0.95, "recall": 0.9, "f1": 0.92, "support": 40},
                               "tariff_info": {"precision": 0.6, "recall": 0.75, "f1": 0.67, "support": 40},
                               "<b>odd</b>": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}},
                "confused_pairs": [["tariff_info", "tariff_change", 7], ["roaming", "tariff_info", 2]]},
    "cross_validation": {"folds": 5, "accuracy": 0.9, "answered_precision": 0.955, "coverage": 0.81,
                         "oos_recall": 0.74, "simulated_oos_examples": 100},
}


async def test_evaluation_report_shows_metrics_and_charts(client: httpx.AsyncClient, people: People,
                                                          sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        job = NluTrainingJob(state=JobState.succeeded, progress=1.0, stage="done", version="20260101-000000",
                             activate=False, created_at=utcnow(), finished_at=utcnow(), report=REPORT)
        session.add(job)
    await login(client, "admin@test.example")
    page = (await client.get(f"/console/admin/training/jobs/{job.id}")).text
    assert 'id="holdout-accuracy">91.0 %' in page and 'id="holdout-f1">88.5 %' in page
    # Worst intent first, every row with two bars; names escaped.
    rows = re.findall(r'data-report-intent="([^"]+)"', page)
    assert rows == ["tariff_info", "roaming", "&lt;b&gt;odd&lt;/b&gt;"]
    assert page.count('class="meter"') == 6
    assert "tariff_info → tariff_change" in page
    for label in ("Answered precision", "Coverage", "Out-of-scope recall", "Held-out macro-F1"):
        assert label in page
    assert "95.5 %" in page and "81.0 %" in page and "74.0 %" in page
    assert "<b>odd</b>" not in page
    listing = (await client.get("/console/admin/training")).text
    assert f'<tr data-job="{job.id}">' in listing and "91.0 %" in listing


async def test_agent_suggestion_is_reviewed_by_an_admin(client: httpx.AsyncClient, people: People,
                                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        await nlu_admin.create_intent(session, "billing_question", "", None)
    texts = {"ic-1": "My bill is wrong this month", "ic-2": "why so expensive"}
    numbers = {}
    for ext, text in texts.items():
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message(ext, text, sender=f"c-{ext}"))
        numbers[ext] = r.json()["ticket_number"]
    async with sessionmaker() as session:
        ids = {m.external_message_id: m.id for m in (await session.scalars(
            select(Message).where(Message.external_message_id.in_(list(texts))))).all()}

    await login(client, "agent@test.example")
    url = f"/console/tickets/{numbers['ic-1']}"
    r = await post_form(client, url, f"{url}/messages/{ids['ic-1']}/intent", {"intent": "Not An Intent!"})
    assert "is not an intent name" in (await flash_after(client, r))[1]
    r = await post_form(client, url, f"{url}/messages/{ids['ic-1']}/intent", {"intent": "no_such_intent"})
    assert "not found" in (await flash_after(client, r))[1]
    # A message of another ticket cannot be corrected through this one.
    r = await post_form(client, url, f"{url}/messages/{ids['ic-2']}/intent", {"intent": "billing_question"})
    assert (await flash_after(client, r))[0] == "error"
    for ext in texts:
        url = f"/console/tickets/{numbers[ext]}"
        r = await post_form(client, url, f"{url}/messages/{ids[ext]}/intent", {"intent": "billing_question"})
        assert await flash_after(client, r) == ("info", "Correction saved; an admin will review it.")
    assert (await client.get("/console/admin/suggestions")).status_code == 403

    client.cookies.clear()
    await login(client, "admin@test.example")
    page = (await client.get("/console/admin/suggestions")).text
    async with sessionmaker() as session:
        suggestions = {s.message_id: s.id for s in (await session.scalars(select(NluSuggestion))).all()}
    for ext in texts:
        assert f'data-suggestion="{suggestions[ids[ext]]}"' in page
    assert 'data-pending="2"' in page
    first, second = suggestions[ids["ic-1"]], suggestions[ids["ic-2"]]
    r = await client.get(f"/console/admin/suggestions/{first}/ticket")
    assert r.headers["location"] == f"/console/tickets/{numbers['ic-1']}"
    assert (await client.get(f"/console/admin/suggestions/{max(suggestions.values()) + 1}/ticket")).status_code == 404
    r = await post_form(client, "/console/admin/suggestions", f"/console/admin/suggestions/{first}",
                        {"decision": "accept"})
    assert await flash_after(client, r) == ("info", "Added as an example of “billing_question”.")
    r = await post_form(client, "/console/admin/suggestions", f"/console/admin/suggestions/{second}",
                        {"decision": "maybe"})
    assert (await flash_after(client, r))[0] == "error"
    r = await post_form(client, "/console/admin/suggestions", f"/console/admin/suggestions/{second}",
                        {"decision": "reject"})
    assert await flash_after(client, r) == ("info", "Suggestion rejected.")
    r = await post_form(client, "/console/admin/suggestions", f"/console/admin/suggestions/{second}",
                        {"decision": "accept"})
    assert "already rejected" in (await flash_after(client, r))[1]
    page = (await client.get("/console/admin/suggestions")).text
    assert "Nothing waiting for review." in page and f'data-reviewed="{first}"' in page
    intent = (await client.get(f"{INTENTS}/billing_question")).text
    assert "My bill is wrong this month" in intent and "agent&#39;s suggestion" in intent
    assert "why so expensive" not in intent
    ticket = (await client.get(f"/console/tickets/{numbers['ic-1']}")).text
    assert 'data-suggestion="accepted"' in ticket


GOOD_YAML = """version: "3.1"
nlu:
- intent: fiber_promo
  examples: |
    - tell me about the fiber promo
    - акция на оптику
responses:
  utter_fiber_promo:
  - text: "Fiber is 50 % off this month."
"""


async def test_rasa_yaml_import_and_export(client: httpx.AsyncClient, people: People,
                                           sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    bad = b"version: '3.1'\nnlu:\n- intent: x\n  examples: |\n    - a\n   - b: [\n"
    kind, text = await flash_after(client, await upload(client, bad, name="broken.yml"))
    assert kind == "error" and re.search(r"broken\.yml, line \d+", text), text
    kind, text = await flash_after(client, await upload(client, b"\xff\xfe\x00garbage"))
    assert kind == "error" and "not UTF-8" in text
    kind, text = await flash_after(client, await upload(client, b"version: '3.1'\n"))
    assert kind == "error" and "no intents" in text
    bad_name = b"nlu:\n- intent: Bad Name\n  examples: |\n    - hi there\n"
    assert (await flash_after(client, await upload(client, bad_name)))[0] == "error"
    page = await client.get(INTENTS)
    r = await client.post("/console/admin/intents-data/import", data={"csrf_token": csrf_of(page.text)},
                          headers={"Referer": f"http://testserver{INTENTS}"})
    assert (await flash_after(client, r)) == ("error", "Choose a file to import.")
    async with sessionmaker() as session:
        assert await nlu_admin.intent_count(session) == 0

    kind, text = await flash_after(client, await upload(client, GOOD_YAML.encode()))
    assert kind == "info" and text.startswith("Imported: 1 new intents, 2 examples, 1 answers. Synonyms 0,"), text
    async with sessionmaker() as session:
        intent = await nlu_admin.get_intent(session, "fiber_promo")
        assert sorted(e.language for e in intent.examples) == ["en", "ru"]

    exported = await client.get("/console/admin/intents-data/export")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="nlu.yml"'
    assert "intent: fiber_promo" in exported.text and "акция на оптику" in exported.text
    # What was exported imports again (replacing everything) to the same data.
    kind, text = await flash_after(client, await upload(client, exported.content, replace=True))
    assert kind == "info"
    async with sessionmaker() as session:
        assert [i["examples"] for i in await nlu_admin.list_intents(session)] == [{"en": 1, "ru": 1}]


UNTRANSLATED = re.compile(r"\b(?:intents?|training|report|cv|versions|jobs?|suggestions|import|export|review|source"
                          r"|nlu)\.[a-z_]+\b")


async def test_pages_in_russian(client: httpx.AsyncClient, people: People,
                                sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        await nlu_admin.create_intent(session, "roaming", "", None)
        await nlu_admin.add_example(session, "roaming", "роуминг в Турции", None)
        job = NluTrainingJob(state=JobState.succeeded, progress=1.0, stage="done", version="v1", activate=False,
                             created_at=utcnow(), finished_at=utcnow(), report=REPORT)
        session.add(job)
    await login(client, "admin@test.example")
    await post_form(client, INTENTS, "/console/language", {"language": "ru"})
    for url in (INTENTS, f"{INTENTS}/roaming", "/console/admin/training", f"/console/admin/training/jobs/{job.id}",
                "/console/admin/suggestions"):
        page = (await client.get(url)).text
        assert 'lang="ru"' in page and "Намерения" in page, url
        assert UNTRANSLATED.findall(page.replace("nlu.yml", "")) == [], url


async def test_versions_of_the_embedded_engine(db_url: str, db_engine: AsyncEngine, tmp_path: Path,
                                               trained_model_dir: Path, people: People) -> None:
    """Activate and roll back against the real engine's model directory: errors come back as messages."""
    await asyncio.to_thread(shutil.copytree, trained_model_dir, tmp_path / "models")
    app = create_app(make_settings(db_url, data_dir=tmp_path), configure_logs=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login(client, "admin@test.example")
        page = (await client.get("/console/admin/training")).text
        shipped = re.findall(r'<tr data-version="([^"]+)" class="active-version">', page)
        assert len(shipped) == 1
        r = await post_form(client, "/console/admin/training", "/console/admin/training/versions/nope/activate", {})
        assert await flash_after(client, r) == ("error", "model version 'nope' not found")
        r = await post_form(client, "/console/admin/training", "/console/admin/training/rollback", {})
        assert (await flash_after(client, r))[0] == "error"
        action = f"/console/admin/training/versions/{shipped[0]}/activate"
        r = await post_form(client, "/console/admin/training", action, {})
        assert await flash_after(client, r) == ("info", f"Model {shipped[0]} is active now.")
        audit = (await client.get("/console/admin/audit")).text
        assert "nlu.activate" in audit


async def test_hostile_rasa_uploads_are_an_error_with_the_reason(client: httpx.AsyncClient, people: People,
                                                                 sessionmaker: async_sessionmaker[AsyncSession]
                                                                 ) -> None:
    """A 100,000-deep list was a RecursionError (500); an alias bomb expanded when walked."""
    await login(client, "admin@test.example")
    deep = b"nlu: " + b"[" * 100_000 + b"]" * 100_000
    kind, text = await flash_after(client, await upload(client, deep, name="deep.yml"))
    assert kind == "error" and "nested deeper than 32 levels" in text, text
    bomb = "a0: &a0 [hi, hi, hi, hi, hi, hi, hi, hi, hi]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)) + "nlu: *a8\n"
    kind, text = await flash_after(client, await upload(client, bomb.encode(), name="bomb.yml"))
    assert kind == "error" and "more than 1000000 values" in text, text
    async with sessionmaker() as session:
        assert await nlu_admin.intent_count(session) == 0


async def test_an_imported_rasa_project_is_shown_whole(client: httpx.AsyncClient, people: People,
                                                       sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Issue 18: the console shows retrieval intents, entities inside examples, synonyms, regexes and lookups, asks
    for merge or replace, and shows the entity scores of a training."""
    from nlu.data import dump_rasa_yaml, load_training_data, merge

    fixtures = Path(__file__).parents[1] / "nlu" / "fixtures" / "rasa"
    project = merge(load_training_data(fixtures / name) for name in ("sara_like", "retrieval", "formbot"))
    await login(client, "admin@test.example")
    page = await client.get(INTENTS)
    assert 'name="mode" value="merge" required' in page.text and 'name="mode" value="replace" required' in page.text
    r = await client.post("/console/admin/intents-data/import", data={"csrf_token": csrf_of(page.text)},
                          files={"file": ("nlu.yml", dump_rasa_yaml(project).encode(), "application/x-yaml")},
                          headers={"Referer": f"http://testserver{INTENTS}"})
    assert await flash_after(client, r) == ("error", "Choose whether the file replaces the intents here or is "
                                                     "merged into them.")
    kind, text = await flash_after(client, await upload(client, dump_rasa_yaml(project).encode(), replace=True))
    assert kind == "info" and "Synonyms 4, regexes 2, lookup values 8" in text, text
    page = (await client.get(INTENTS)).text
    assert '<a href="/console/admin/intents/faq/ask_channels"><code>faq/ask_channels</code></a> <span class="badge"' \
        in page
    assert '<tr data-lookup="product">' in page and "<code>rasa enterprise</code>" in page
    assert '<tr data-synonym="gastropub">' in page and "<code>[0-9]{5}</code>" in page
    retrieval = await client.get("/console/admin/intents/faq/ask_channels")
    assert retrieval.status_code == 200 and "I can be connected to Facebook Messenger" in retrieval.text
    flights = (await client.get("/console/admin/intents/book_flight")).text
    assert ('<mark class="entity" title="city role=departure">London<sup class="small-text">city role=departure'
            '</sup></mark>') in flights
    async with sessionmaker() as session:
        example = next(e for e in (await nlu_admin.get_intent(session, "faq/ask_languages")).examples)
    r = await post_form(client, "/console/admin/intents/faq/ask_languages",
                        f"/console/admin/intents/faq/ask_languages/examples/{example.id}/delete", {})
    assert await flash_after(client, r) == ("info", "Example deleted.")

    report = REPORT | {"cross_validation": REPORT["cross_validation"] | {"entities": {
        "city": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 20.0},
        "micro": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 20.0}}}}
    async with sessionmaker() as session, session.begin():
        job = NluTrainingJob(state=JobState.succeeded, progress=1.0, stage="done", version="20260101-000001",
                             activate=False, created_at=utcnow(), finished_at=utcnow(), report=report)
        session.add(job)
    page = (await client.get(f"/console/admin/training/jobs/{job.id}")).text
    assert re.findall(r'data-report-entity="([^"]+)"', page) == ["city", "micro"]
    assert "Entities learned from annotations" in page and "0.85" in page
