"""Agents upload files for their replies and download what customers sent; never rendered in our origin."""

from __future__ import annotations

import mimetypes
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Header, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.deps import Agent, State
from api.errors import error_body
from api.openapi import error
from core.attachments import service
from core.attachments.backends import AttachmentBackend
from core.attachments.store import digest_of
from core.ingest.schemas import AttachmentInfo

router = APIRouter(prefix="/attachments", tags=["attachments"], responses={
    415: error("A type that could run code on the agent's or the customer's machine")})


@router.post("", response_model=AttachmentInfo, response_model_exclude_none=True, status_code=201)
async def upload(file: Annotated[UploadFile, File()], state: State, _user: Agent) -> AttachmentInfo:
    limit = state.settings.max_attachment_bytes
    data = await file.read(limit + 1)  # one byte more than allowed is enough to know it is too large
    return await service.save_upload(state.files, file.filename or "", file.content_type, data, max_bytes=limit)


@router.get("/{storage_key:path}", responses={
    206: {"description": "The byte range the Range header asked for"},
    404: error("No such attachment (or not a key of the store)"),
    416: error("A Range header that is malformed, asks for several ranges, or lies past the end of the file")})
async def download(storage_key: str, state: State, _user: Agent,
                   range: Annotated[str | None, Header()] = None,
                   if_range: Annotated[str | None, Header()] = None) -> Response:
    return await download_response(state.files, storage_key, range, if_range)


class RangeRefused(ValueError):
    """A Range header this server will not serve (the message says why)."""


_RANGE = re.compile(r"bytes=(?P<start>\d*)-(?P<end>\d*)\Z")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """The byte range `[start, end)` of one RFC 9110 range spec (`bytes=a-b`, `bytes=a-`, `bytes=-n`).

    Only one range is served: a multipart/byteranges answer is not worth its code for attachments, and a client
    that asks for several gets a 416 saying so rather than the whole file it did not ask for.
    """
    spec = header.strip().replace(" ", "")
    if "," in spec:
        raise RangeRefused("only one byte range per request is served")
    match = _RANGE.match(spec) if len(spec) <= 64 else None
    if match is None:
        raise RangeRefused("malformed Range header: expected bytes=<start>-<end>, bytes=<start>- or bytes=-<n>")
    first, last = match["start"], match["end"]
    if not first:
        if not last or int(last) == 0:
            raise RangeRefused("a suffix range needs a length above 0")
        return max(0, size - int(last)), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        raise RangeRefused("the range ends before it starts")
    if start >= size:
        raise RangeRefused(f"the range starts at or past the end of the file ({size} bytes)")
    return start, min(end, size)


async def download_response(files: AttachmentBackend, storage_key: str, range_header: str | None = None,
                            if_range: str | None = None) -> Response:
    """The file, streamed from whichever backend holds it; with a Range header, 206 and only those bytes.

    Always a download, never rendered: HTML or SVG a customer sent must not run in the console's origin. The
    ETag is the key's content digest (keys are content-addressed), so `If-Range` resumes only the same bytes.
    """
    stored = await files.stat(storage_key)  # 404 for a missing file or anything that is not a key
    name = storage_key.rsplit("/", 1)[-1]
    etag = f'"{digest_of(storage_key)}"'
    quoted = quote(name)
    disposition = f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
               "Cache-Control": "private, no-store", "Accept-Ranges": "bytes", "ETag": etag,
               "Content-Disposition": disposition}
    start, end, status = 0, stored.size, 200
    if range_header is not None and (if_range is None or if_range.strip() == etag):
        try:
            start, end = parse_range(range_header, stored.size)
        except RangeRefused as exc:
            return JSONResponse(error_body("range_not_satisfiable", str(exc), size=stored.size), 416,
                                headers={"Content-Range": f"bytes */{stored.size}", "Accept-Ranges": "bytes"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(files.stream(storage_key, start, end), status_code=status, headers=headers,
                             media_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
