"""The rules for agents' files: what an upload may be, and what a reply may attach."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.attachments import store
from core.attachments.backends import AttachmentBackend
from core.attachments.policy import AttachmentPolicy, safe_filename
from core.attachments.schemas import AttachmentRef
from core.ingest.schemas import AttachmentInfo

UPLOADS = "uploads"


async def save_upload(files: AttachmentBackend, filename: str, content_type: str | None, data: bytes, *,
                max_bytes: int) -> AttachmentInfo:
    """Store an agent's upload under `uploads/`, by the attachment policy (executables, scripts, HTML/SVG with
    scripts and files over the limit are refused).

    Args:
        files: the attachment store.
        filename: as sent by the browser; reduced to a safe name.
        content_type: as sent by the browser; normalised.
        data: the bytes (the caller reads at most `max_bytes + 1`).
        max_bytes: the size limit (settings.max_attachment_bytes).

    Returns:
        The stored file's AttachmentInfo; AttachmentTooLargeError (413) or AttachmentRefusedError (415) otherwise.
    """
    name = safe_filename(filename, content_type)
    verdict = AttachmentPolicy(max_bytes=max_bytes, verify_types=False).check(name, content_type, len(data),
                                                                             data=data)
    if verdict.refusal is not None:
        raise verdict.refusal.error()
    return await files.save(name, verdict.content_type, data, namespace=UPLOADS)


async def resolve_for_reply(files: AttachmentBackend, refs: Sequence[AttachmentRef]) -> list[dict[str, Any]]:
    """The outbound attachment list of a reply; NotFoundError (404) for a key not in the store.

    The size is the stored one (ValidationFailedError, 422, if the caller declared another) and the name is made
    safe again, so what the channel sends is exactly what the store holds.
    """
    items: list[dict[str, Any]] = []
    for ref in refs:
        size = await files.verify(ref.storage_key, ref.size)
        items.append({"filename": safe_filename(ref.filename),
                      "content_type": store.normalise_content_type(ref.content_type),
                      "size": size, "storage_key": ref.storage_key})
    return items
