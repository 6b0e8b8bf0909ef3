"""Moving attachments between backends (`switchboard attachments migrate --to postgres|s3`).

Keys are the same in every backend, so a copied file keeps every message's reference valid. Each file is copied
whole or not at all (one transaction, one PUT or one completed multipart upload, a temporary file renamed into
place), and a key already in the target is skipped without being read: an interrupted run goes on from where it
was when run again, and re-running a finished one copies nothing. The source is left as it was; the operator
switches `attachments.backend` once the copy is done (and may run the command again afterwards, to pick up what
arrived in between).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from core.attachments.backends import AttachmentBackend
from core.attachments.store import StoredFile

log = logging.getLogger(__name__)


@dataclass
class MigrationProgress:
    total: int = 0
    copied: int = 0
    skipped: int = 0  # already in the target (an earlier, interrupted run; or the same bytes stored twice)
    failed: int = 0
    bytes_copied: int = 0

    @property
    def done(self) -> int:
        return self.copied + self.skipped + self.failed


async def migrate(source: AttachmentBackend, target: AttachmentBackend,
                  progress: Callable[[MigrationProgress], None] | None = None) -> MigrationProgress:
    """Copy every object of `source` into `target`; a file that fails (unreadable, or bytes that do not match its
    key) is counted and logged, and the others go on."""
    state = MigrationProgress()
    listed: list[StoredFile] = []
    for namespace in sorted(source.namespaces & target.namespaces):
        listed.extend([stored async for stored in source.iter(namespace)])
    state.total = len(listed)
    if progress:
        progress(state)
    for stored in listed:
        try:
            copied = await target.put(stored.key, functools.partial(source.stream, stored.key), size=stored.size,
                                      modified=stored.modified)
        except Exception as exc:
            state.failed += 1
            log.warning("attachment not migrated", extra={"storage_key": stored.key,
                                                           "error": f"{type(exc).__name__}: {exc}"[:300]})
        else:
            if copied:
                state.copied += 1
                state.bytes_copied += stored.size
            else:
                state.skipped += 1
        if progress:
            progress(state)
    return state
