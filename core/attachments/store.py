"""The attachment store: a root directory of its own (`<data_dir>/attachments/`) and keys into it.

Keys look like `<namespace>/<sha256[:2]>/<sha256[2:34]>/<safe file name>`: the same bytes under the same name
always land on the same key, so a redelivered email or Telegram update rewrites nothing. Files are written to
a temporary file in the target folder and moved into place with `os.replace`, so a reader never sees half a
file. Everything that touches files does blocking I/O: call it through `asyncio.to_thread` from async code.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Protocol

from core.attachments.policy import is_plain_name, normalise_content_type, safe_filename
from core.errors import NotFoundError, ValidationFailedError
from core.ingest.schemas import AttachmentInfo

__all__ = ["NAMESPACES", "AttachmentStore", "SavesBlocking", "StoredFile", "digest_of", "is_key", "key_for",
           "normalise_content_type", "open_store", "safe_filename"]

log = logging.getLogger(__name__)

# The namespaces the store writes, one per writer: what customers send by email, Telegram, VK or WhatsApp, and
# agents' uploads.
NAMESPACES = frozenset({"email", "telegram", "uploads", "vk", "whatsapp"})


class SavesBlocking(Protocol):
    """A blocking `save`, for code that runs in a worker thread (the e-mail parser): the local store itself, or
    any backend's `blocking()` saver."""

    def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        """Store `data` under `namespace`; the AttachmentInfo with its key."""
        ...


@dataclass(frozen=True)
class StoredFile:
    """One file in the store, as `AttachmentStore.iter` lists it."""

    key: str
    size: int
    modified: float  # seconds since the epoch: written, or last stored again


class AttachmentStore:
    """The files of every channel and every upload, by key, under a root that holds nothing else.

    The root is a folder of its own (`<data_dir>/attachments/`), never the data directory: that one also holds
    the SQLite database and the NLU models, and a key is only ever resolved inside the root. Keys have one form,
    `<namespace>/<aa>/<hash>/<name>`, with a namespace this store writes; anything else is "not found" before
    the file system is asked. The interface (save, open, read, verify, delete, iter) is what another backend
    (PostgreSQL, S3) would implement.

    Every method does blocking file I/O: call it through `asyncio.to_thread` from async code.
    """

    def __init__(self, root: Path, namespaces: Collection[str] = NAMESPACES) -> None:
        self.root = Path(root)
        self.namespaces = frozenset(namespaces)

    def is_key(self, key: str) -> bool:
        """Whether `key` has the form this store writes (says nothing about whether the file exists)."""
        return is_key(key, self.namespaces)

    def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        """Store `data` under `namespace` and return its metadata; what may be stored is the policy's to say
        (core/attachments/policy.py): check before saving.

        Args:
            filename: the name as given by the sender; only a safe last component is kept.
            content_type: as declared by the sender (or as the policy's check recorded it); normalised.
            data: the bytes.
            namespace: one of the store's namespaces (`email`, `telegram`, `uploads`).

        Returns:
            The AttachmentInfo with the storage key (`/`-separated) and the size.
        """
        if namespace not in self.namespaces:
            raise ValueError(f"bad attachment namespace {namespace!r}: not one of {sorted(self.namespaces)}")
        name = safe_filename(filename)
        ctype = normalise_content_type(content_type)
        key = key_for(namespace, name, hashlib.sha256(data).hexdigest())
        path = self.root / key
        if path.is_file():
            # The same bytes again: the file counts as new for the sweep of unsent uploads (core/attachments/sweep.py).
            with contextlib.suppress(OSError):
                os.utime(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
        return AttachmentInfo(filename=name, content_type=ctype, size=len(data), storage_key=key)

    def open(self, key: str) -> Path:
        """The file of `key`; NotFoundError for a missing file or anything that is not one of the store's keys."""
        if not self.is_key(key):
            raise NotFoundError("attachment not found", storage_key=str(key)[:512])
        base = self.root.resolve()
        path = (base / key).resolve()  # resolves symlinks too: a link out of the store is refused
        if not path.is_relative_to(base) or not path.is_file():
            raise NotFoundError("attachment not found", storage_key=key)
        return path

    def read(self, key: str) -> bytes:
        """The bytes of `key`; NotFoundError as for `open`."""
        return self.open(key).read_bytes()

    def verify(self, key: str, size: int | None = None) -> int:
        """The stored size of `key` (NotFoundError if absent); ValidationFailedError if `size` disagrees."""
        actual = self.open(key).stat().st_size
        if size is not None and size != actual:
            raise ValidationFailedError(f"attachment {key!r} is {actual} bytes, not {size}", storage_key=key)
        return actual

    def delete(self, key: str) -> bool:
        """Remove `key` (and its digest folders once empty); False if there was nothing to remove."""
        if not self.is_key(key):
            return False
        path = self.root / key
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _remove_empty((path.parent, path.parent.parent))
        return True

    def iter(self, namespace: str) -> Iterator[StoredFile]:
        """Every file stored under `namespace` (temporary files and anything not shaped like a key are skipped)."""
        base = self.root / namespace
        if namespace not in self.namespaces or not base.is_dir():
            return
        for path in base.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if not self.is_key(key):
                continue
            try:
                stat = path.lstat()
            except FileNotFoundError:  # deleted meanwhile
                continue
            if S_ISREG(stat.st_mode):
                yield StoredFile(key, stat.st_size, stat.st_mtime)

    def adopt_legacy(self, old_root: Path) -> int:
        """Move files of the old layout (`<old_root>/<namespace>/<aa>/<hash>/<name>`) into this store's root.

        Safe to run at every start and by several processes at once: each file is moved with one rename (or
        copied to a temporary file, renamed into place and only then removed from the old place), so a crash at
        any point leaves every file in one place or both, and the next run finishes the job. Anything in the old
        folders that is not shaped like a key (the Telegram offset files, temporary files) stays where it is.
        Returns how many files were moved.
        """
        old_base = Path(old_root)
        if not old_base.is_dir() or old_base.resolve() == self.root.resolve():
            return 0
        moved = 0
        for namespace in sorted(self.namespaces):
            top = old_base / namespace
            if top.is_symlink() or not top.is_dir():
                continue
            for shard in _subdirs(top, _SHARD):
                for digest in _subdirs(shard, _DIGEST):
                    for path in sorted(digest.iterdir()):
                        key = f"{namespace}/{shard.name}/{digest.name}/{path.name}"
                        if path.is_symlink() or not path.is_file() or not self.is_key(key):
                            continue
                        if _move(path, self.root / key):
                            moved += 1
                    _remove_empty((digest,))
                _remove_empty((shard,))
            _remove_empty((top,))
        return moved


_KEY = re.compile(r"^(?P<namespace>[a-z0-9_-]+)/(?P<shard>[0-9a-f]{2})/(?P<digest>[0-9a-f]{32})/(?P<name>[^/]+)\Z")


def is_key(key: object, namespaces: Collection[str] = NAMESPACES) -> bool:
    """Whether `key` has the one form every backend writes, `<namespace>/<aa>/<hash>/<name>`, with one of
    `namespaces` and a plain file name: anything else (`..`, absolute paths, other folders) is never looked up."""
    if not isinstance(key, str) or len(key) > 512:
        return False
    match = _KEY.match(key)
    return match is not None and match["namespace"] in namespaces and is_plain_name(match["name"])


def key_for(namespace: str, name: str, sha256_hex: str) -> str:
    """The key of bytes with this SHA-256 stored under `name`: the same bytes and name always get the same key."""
    return f"{namespace}/{sha256_hex[:2]}/{sha256_hex[2:34]}/{name}"


def digest_of(key: str) -> str:
    """The content part of a valid key (`<aa><32 hex>`: the first 136 bits of the SHA-256 of the bytes)."""
    match = _KEY.match(key)
    if match is None:
        raise ValueError("not an attachment key")
    return match["shard"] + match["digest"]
_SHARD = re.compile(r"^[0-9a-f]{2}\Z")
_DIGEST = re.compile(r"^[0-9a-f]{32}\Z")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file next to `path` and rename it into place: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _subdirs(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if pattern.match(p.name) and p.is_dir() and not p.is_symlink())
    except FileNotFoundError:  # another process moved the last file and removed the folder
        return []


def _move(source: Path, target: Path) -> bool:
    """Move one file into the store; False if another process got there first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        # Content-addressed: the same key holds the same bytes (stored again, or moved by an earlier run that
        # stopped before removing the original).
        source.unlink(missing_ok=True)
        return False
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another file system: copy, then remove the original only once the copy is in place.
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            return False
        _write_atomically(target, data)
        with contextlib.suppress(OSError):
            shutil.copystat(source, target)  # the modification time: the upload sweep goes by it
        source.unlink(missing_ok=True)
    return True


def _remove_empty(folders: Collection[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone
            break


def open_store(root: Path, legacy_root: Path | None = None) -> AttachmentStore:
    """The store at `root`; files left under `legacy_root` by the old layout (the data dir itself) are moved in
    first, so they keep their keys and stay downloadable."""
    files = AttachmentStore(root)
    files.root.mkdir(parents=True, exist_ok=True)
    if legacy_root is not None:
        moved = files.adopt_legacy(legacy_root)
        if moved:
            log.warning("attachments moved into the attachment store's own folder",
                        extra={"count": moved, "from": str(legacy_root), "to": str(files.root)})
    return files
