"""Agents upload files for their replies and download what customers sent; never rendered in our origin."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse

from api.deps import Agent, State
from api.openapi import error
from core.attachments import service
from core.ingest.schemas import AttachmentInfo

router = APIRouter(prefix="/attachments", tags=["attachments"], responses={
    415: error("A type that could run code on the agent's or the customer's machine")})


@router.post("", response_model=AttachmentInfo, response_model_exclude_none=True, status_code=201)
async def upload(file: Annotated[UploadFile, File()], state: State, _user: Agent) -> AttachmentInfo:
    limit = state.settings.max_attachment_bytes
    data = await file.read(limit + 1)  # one byte more than allowed is enough to know it is too large
    return await asyncio.to_thread(service.save_upload, state.files, file.filename or "", file.content_type, data,
                                   max_bytes=limit)


@router.get("/{storage_key:path}")
async def download(storage_key: str, state: State, _user: Agent) -> FileResponse:
    path = await asyncio.to_thread(state.files.open, storage_key)
    return download_response(path)


def download_response(path: Path) -> FileResponse:
    """Always a download, never rendered: HTML or SVG a customer sent must not run in the console's origin."""
    name = path.name
    return FileResponse(
        path, filename=name, content_disposition_type="attachment",
        media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
                 "Cache-Control": "private, no-store"},
    )
