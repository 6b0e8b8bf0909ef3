"""Downloads are streamed from whichever backend holds the file, with single byte ranges (206) and a 416 with the
reason for a Range header that is garbage, asks for several ranges or lies past the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from core.attachments.settings import AttachmentStorageSettings
from tests.conftest import make_settings
from tests.support.s3 import s3_backend, s3_server, s3_settings

pytestmark = pytest.mark.slow(seconds=60)

Auth = tuple[Any, dict[str, str]]
SIZE = 200_003


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "postgres", "s3"])
async def settings(request: pytest.FixtureRequest, db_url: str, tmp_path: Path,
                   s3_endpoint: str) -> Settings:
    storage = AttachmentStorageSettings(backend=request.param)
    if request.param == "s3":
        storage = s3_settings(s3_endpoint)
        await (await s3_backend(s3_endpoint, storage.s3.bucket)).close()  # the bucket, created once
    return make_settings(db_url, data_dir=tmp_path / "data", attachments=storage)


async def test_ranges_and_refusals(app_client: httpx.AsyncClient, agent: Auth, settings: Settings) -> None:
    _, h = agent
    data = os.urandom(SIZE)
    r = await app_client.post("/attachments", headers=h, files={"file": ("запись звонка.wav", data, "audio/wav")})
    assert r.status_code == 201, r.text
    key = r.json()["storage_key"]
    url = f"/attachments/{key}"
    if settings.attachments.backend != "local":  # nothing on this instance's disk: another one can serve it
        root = settings.attachments_root
        assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))

    whole = await app_client.get(url, headers=h)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-length"] == str(SIZE)
    assert whole.headers["content-disposition"].startswith("attachment; filename*=utf-8''")
    etag = whole.headers["etag"]

    for spec, start, end in [("bytes=0-99", 0, 100), ("bytes=-10", SIZE - 10, SIZE), ("bytes=199990-", 199_990, SIZE),
                             ("bytes=100-10000000", 100, SIZE), ("bytes = 70000-140000", 70_000, 140_001),
                             ("bytes=-999999999", 0, SIZE)]:
        part = await app_client.get(url, headers={**h, "Range": spec})
        assert part.status_code == 206, (spec, part.text)
        assert part.content == data[start:end], spec
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
        assert part.headers["content-length"] == str(end - start)

    for spec, reason in [("bytes=abc", "malformed"), ("bytes=5-1", "ends before"), ("items=0-1", "malformed"),
                         ("bytes=0-1,5-6", "one byte range"), (f"bytes={SIZE}-", "past the end"),
                         ("bytes=-0", "above 0"), ("bytes=" + "9" * 200 + "-", "malformed"), ("", "malformed"),
                         ("bytes=--1", "malformed")]:
        refused = await app_client.get(url, headers={**h, "Range": spec})
        assert refused.status_code == 416, spec
        assert refused.json()["error"] == "range_not_satisfiable" and reason in refused.json()["message"], spec
        assert refused.headers["content-range"] == f"bytes */{SIZE}"

    # If-Range: a range of the same bytes only; anything else gets the whole file.
    assert (await app_client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": etag})).status_code == 206
    stale = await app_client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": '"another"'})
    assert stale.status_code == 200 and stale.content == data

    for bad in ("uploads/../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", key.replace("uploads/", "models/"),
                key[:-1] + "X"):
        assert (await app_client.get(f"/attachments/{bad}", headers={**h, "Range": "bytes=0-1"})).status_code == 404
