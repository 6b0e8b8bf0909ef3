"""Agents' files through the API: upload, download, the limits, and replies that attach them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from tests.conftest import REST_HEADERS, make_settings, rest_message

Auth = tuple[Any, dict[str, str]]
LIMIT = 64 * 1024


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, data_dir=tmp_path / "data", max_attachment_bytes=LIMIT)


async def upload(client: httpx.AsyncClient, headers: dict[str, str], name: str, data: bytes,
                 ctype: str = "application/octet-stream") -> httpx.Response:
    return await client.post("/attachments", headers=headers, files={"file": (name, data, ctype)})


async def test_upload_and_download(app_client: httpx.AsyncClient, agent: Auth, settings: Settings) -> None:
    _, h = agent
    r = await upload(app_client, h, "../../счёт май.pdf", b"%PDF-1.4 hello", "application/pdf")
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["filename"] == "счёт май.pdf" and info["size"] == 14 and info["content_type"] == "application/pdf"
    assert info["storage_key"].startswith("uploads/") and info["storage_key"].endswith("/счёт май.pdf")
    assert (settings.attachments_root / info["storage_key"]).read_bytes() == b"%PDF-1.4 hello"
    # The same file again: the same key, nothing rewritten.
    assert (await upload(app_client, h, "счёт май.pdf", b"%PDF-1.4 hello", "application/pdf")).json() == info

    r = await app_client.get(f"/attachments/{info['storage_key']}", headers=h)
    assert r.status_code == 200 and r.content == b"%PDF-1.4 hello"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "application/pdf"


async def test_html_is_served_as_a_download_never_inline(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    info = (await upload(app_client, h, "menu.html", b"<html><p>menu</p></html>", "text/html")).json()
    r = await app_client.get(f"/attachments/{info['storage_key']}", headers=h)
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in r.headers["content-security-policy"]


async def test_roles(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    key = (await upload(app_client, h, "a.txt", b"hello", "text/plain")).json()["storage_key"]
    for headers in ({}, {"Authorization": "Bearer nope"}, REST_HEADERS):
        assert (await upload(app_client, headers, "a.txt", b"x")).status_code == 401
        assert (await app_client.get(f"/attachments/{key}", headers=headers)).status_code == 401


async def test_limits(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    r = await upload(app_client, h, "big.bin", b"x" * (LIMIT + 1))
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert (await upload(app_client, h, "exact.bin", b"x" * LIMIT)).status_code == 201
    # Beyond the file limit plus the framing allowance the body middleware answers before the route runs.
    r = await upload(app_client, h, "huge.bin", b"x" * (LIMIT + 1_048_576 + 1))
    assert r.status_code == 413
    # The larger limit is for uploads only: every other route keeps the 1 MB body limit.
    r = await app_client.post("/tickets/1/reply", headers={**h, "content-type": "application/json"},
                              content=b'{"text": "' + b"x" * (LIMIT + 1_048_576) + b'"}')
    assert r.status_code == 413


@pytest.mark.parametrize(("name", "ctype", "data"), [
    ("setup.exe", "application/octet-stream", b"MZ"),
    ("invoice.pdf.exe", "application/pdf", b"MZ"),
    ("x.js", "text/plain", b"alert(1)"),
    ("run.bat", "text/plain", b"del"),
    ("run.CMD", "text/plain", b"del"),
    ("s.scr", "application/octet-stream", b"MZ"),
    ("v.vbs", "text/plain", b"x"),
    ("i.msi", "application/octet-stream", b"x"),
    ("p.ps1", "text/plain", b"x"),
    ("noext", "application/x-msdownload", b"MZ"),
    ("page.html", "text/html", b"<html><script>alert(1)</script></html>"),
    ("page.txt", "text/plain", b"<!DOCTYPE html><img src=x onerror=alert(1)>"),
    ("pic.svg", "image/svg+xml", b"<svg onload=alert(1)></svg>"),
])
async def test_dangerous_files_are_refused(app_client: httpx.AsyncClient, agent: Auth, settings: Settings,
                                           name: str, ctype: str, data: bytes) -> None:
    _, h = agent
    r = await upload(app_client, h, name, data, ctype)
    assert r.status_code == 415, r.text
    assert r.json()["error"] == "unsupported_media_type" and r.json()["message"]
    assert not (settings.attachments_root / "uploads").exists()


@pytest.mark.parametrize("key", [
    "uploads/00/missing/a.txt", "..%2F..%2Fetc%2Fpasswd", "uploads/..%2F..%2F..%2Fetc%2Fpasswd",
    "%2Fetc%2Fpasswd", "uploads%5C..%5C..%5Cx",
])
async def test_unknown_and_escaping_keys(app_client: httpx.AsyncClient, agent: Auth, key: str) -> None:
    _, h = agent
    r = await app_client.get(f"/attachments/{key}", headers=h)
    assert r.status_code == 404, r.text
    assert "root" not in r.text


async def test_upload_needs_a_file_field(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    r = await app_client.post("/attachments", headers=h, files={"other": ("a.txt", b"x", "text/plain")})
    assert r.status_code == 422


async def test_reply_with_attachments(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message("1", "hello"))
    number = r.json()["ticket_number"]
    info = (await upload(app_client, h, "guide.pdf", b"%PDF guide", "application/pdf")).json()

    bad = {**info, "storage_key": "uploads/00/0000/nothing.pdf"}
    r = await app_client.post(f"/tickets/{number}/reply", headers=h, json={"text": "see", "attachments": [bad]})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    escaping = {**info, "storage_key": "../../etc/passwd"}
    r = await app_client.post(f"/tickets/{number}/reply", headers=h, json={"text": "see", "attachments": [escaping]})
    assert r.status_code == 404
    for wrong in ({**info, "url": "http://evil"}, {"filename": "a"}, {**info, "size": -1},
                  {**info, "content_type": "text/html\r\nX-Evil: 1"}):
        r = await app_client.post(f"/tickets/{number}/reply", headers=h, json={"text": "see", "attachments": [wrong]})
        assert r.status_code == 422, (wrong, r.text)
    r = await app_client.post(f"/tickets/{number}/reply", headers=h,
                              json={"text": "see", "attachments": [{**info, "size": 999}]})
    assert r.status_code == 422
    r = await app_client.get(f"/tickets/{number}", headers=h)
    assert [m for m in r.json()["messages"] if m["author_kind"] == "agent"] == []  # nothing half-sent

    r = await app_client.post(f"/tickets/{number}/reply", headers=h, json={"text": "see", "attachments": [info]})
    assert r.status_code == 201, r.text
    assert r.json()["attachments"] == [{"filename": "guide.pdf", "content_type": "application/pdf", "size": 10,
                                        "storage_key": info["storage_key"]}]


async def test_reply_cannot_attach_another_conversations_file(app_client: httpx.AsyncClient, agent: Auth,
                                                              settings: Settings) -> None:
    """A customer's file may be forwarded within its own conversation, never into someone else's."""
    from core.ingest.schemas import InboundMessage, SenderInfo

    _, h = agent
    state = app_client.app.state.switchboard  # type: ignore[attr-defined]
    info = await state.files.save("passport.jpg", "image/jpeg", b"\xff\xd8secret", namespace="email")
    theirs = await state.ingest.ingest(InboundMessage(channel="email", external_message_id="<p@x>",
                                                      sender=SenderInfo(external_id="a@x"), text="my passport",
                                                      attachments=(info,)))
    mine = (await app_client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message("2", "hello", sender="other"))).json()
    ref = {"filename": info.filename, "content_type": info.content_type, "size": info.size,
           "storage_key": info.storage_key}
    r = await app_client.post(f"/tickets/{mine['ticket_number']}/reply", headers=h,
                              json={"text": "here", "attachments": [ref]})
    assert r.status_code == 403
    assert "another conversation" in r.json()["message"]
    r = await app_client.post(f"/tickets/{theirs.ticket_number}/reply", headers=h,
                              json={"text": "we got it", "attachments": [ref]})
    assert r.status_code == 201, r.text


DIGEST = "0123456789abcdef0123456789abcdef"
# What lived next to the files in the data dir (issue 9): the database, its write-ahead log, the NLU models.
LEAKS = [
    "switchboard.sqlite3", "switchboard.sqlite3-wal", "models/v1/model.joblib", "models/ACTIVE",
    "telegram/offset-1.json", "./switchboard.sqlite3", "uploads/../switchboard.sqlite3",
    "uploads/00/../../switchboard.sqlite3", "attachments/../switchboard.sqlite3", "..%2Fswitchboard.sqlite3",
    "%2E%2E/switchboard.sqlite3", "uploads%2F..%2Fswitchboard.sqlite3", "uploads/%2e%2e/switchboard.sqlite3",
    "..%2Fdata%2Fswitchboard.sqlite3", "%2e/switchboard.sqlite3", f"models/ab/{DIGEST}/model.joblib",
    "%2E%2E", "attachments/..%2F..%2Fdata%2Fswitchboard.sqlite3",
]


def plant_secrets(data_dir: Path) -> None:
    """The layout `make run` leaves: the SQLite database, its -wal file and the NLU models in the data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "switchboard.sqlite3").write_bytes(b"SQLite format 3\x00 password hashes")
    (data_dir / "switchboard.sqlite3-wal").write_bytes(b"wal with tokens")
    (data_dir / "models" / "v1").mkdir(parents=True, exist_ok=True)
    (data_dir / "models" / "v1" / "model.joblib").write_bytes(b"model")
    (data_dir / "models" / "ACTIVE").write_text("v1")
    (data_dir / "models" / "ab" / DIGEST).mkdir(parents=True, exist_ok=True)
    (data_dir / "models" / "ab" / DIGEST / "model.joblib").write_bytes(b"model")
    (data_dir / "telegram").mkdir(exist_ok=True)
    (data_dir / "telegram" / "offset-1.json").write_text("{}")


@pytest.mark.parametrize("key", LEAKS)
async def test_the_database_and_the_models_cannot_be_downloaded(app_client: httpx.AsyncClient, agent: Auth,
                                                               settings: Settings, key: str) -> None:
    """Issue 9, item 1: an agent asked for the data dir's database file and got it. Keys are resolved only in the
    store's own folder and only in the form the store writes."""
    _, h = agent
    plant_secrets(Path(settings.data_dir))
    r = await app_client.get(f"/attachments/{key}", headers=h)
    assert r.status_code == 404, (key, r.status_code)
    assert b"SQLite format" not in r.content and b"wal with tokens" not in r.content


async def test_files_of_the_old_layout_are_moved_and_still_download(settings: Settings, agent: Auth) -> None:
    """Before the store had a folder of its own, files lived under the data dir itself: start-up moves them in, they
    keep their keys (messages refer to them), and the database next to them stays where it is."""
    from api.app import create_app
    from core.attachments.store import AttachmentStore
    from tests.conftest import keyword_engine, responses

    data_dir = Path(settings.data_dir)
    plant_secrets(data_dir)
    old = AttachmentStore(data_dir).save("скан.pdf", "application/pdf", b"%PDF old", namespace="email")
    assert old.storage_key is not None
    _, h = agent
    for _ in range(2):  # a second start finds nothing left to move
        app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            r = await client.get(f"/attachments/{old.storage_key}", headers=h)
            assert r.status_code == 200 and r.content == b"%PDF old"
            assert (await client.get("/attachments/switchboard.sqlite3", headers=h)).status_code == 404
        assert not (data_dir / old.storage_key).exists()
        assert (settings.attachments_root / old.storage_key).read_bytes() == b"%PDF old"
        assert (data_dir / "switchboard.sqlite3").exists() and (data_dir / "telegram" / "offset-1.json").exists()


async def test_erasure_deletes_the_customers_files(app_client: httpx.AsyncClient, agent: Auth, admin: Auth) -> None:
    """Erasing a customer removes the files of their conversations from the store; a file another customer's
    message refers to too (the same bytes under the same name) stays for them."""
    from core.ingest.schemas import InboundMessage, SenderInfo

    _, h = agent
    state = app_client.app.state.switchboard  # type: ignore[attr-defined]
    passport = await state.files.save("паспорт.jpg", "image/jpeg", b"\xff\xd8 passport", namespace="email")
    shared = await state.files.save("tariffs.pdf", "application/pdf", b"%PDF tariffs", namespace="email")
    theirs = await state.ingest.ingest(InboundMessage(
        channel="email", external_message_id="<a@x>", sender=SenderInfo(external_id="a@x", email="a@x"),
        text="my passport", attachments=(passport, shared)))
    await state.ingest.ingest(InboundMessage(
        channel="email", external_message_id="<b@x>", sender=SenderInfo(external_id="b@x", email="b@x"),
        text="which tariff?", attachments=(shared,)))
    guide = (await upload(app_client, h, "guide.pdf", b"%PDF guide for a", "application/pdf")).json()
    r = await app_client.post(f"/tickets/{theirs.ticket_number}/reply", headers=h,
                              json={"text": "see", "attachments": [guide]})
    assert r.status_code == 201, r.text
    customer_id = (await app_client.get(f"/tickets/{theirs.ticket_number}", headers=h)).json()["customer"]["id"]

    r = await app_client.post(f"/customers/{customer_id}/erase", headers=admin[1])
    assert r.status_code == 200, r.text
    for gone in (passport.storage_key, guide["storage_key"]):
        assert (await app_client.get(f"/attachments/{gone}", headers=h)).status_code == 404
        assert not (state.files.files.root / gone).exists()
    assert (await app_client.get(f"/attachments/{shared.storage_key}", headers=h)).content == b"%PDF tariffs"
