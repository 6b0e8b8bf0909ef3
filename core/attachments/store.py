"""One attachment store over a root directory (the app's data dir).

Keys look like `<namespace>/<sha256[:2]>/<sha256[2:34]>/<safe file name>`: the same bytes under the same name
always land on the same key, so a redelivered email or Telegram update rewrites nothing. Files are written to
a temporary file in the target folder and moved into place with `os.replace`, so a reader never sees half a
file. Every function here does blocking file I/O: call it through `asyncio.to_thread` from async code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from core.attachments.errors import AttachmentRefusedError, AttachmentTooLargeError
from core.errors import NotFoundError, ValidationFailedError
from core.ingest.schemas import AttachmentInfo

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Bytes, not characters: most file systems cap a name at 255 bytes, and Cyrillic takes two per letter.
MAX_NAME_BYTES = 150
# Executables and scripts a double click runs on Windows, macOS or in a browser.
DANGEROUS_EXTENSIONS = frozenset({
    "exe", "js", "jse", "bat", "cmd", "com", "scr", "vbs", "vbe", "msi", "msp", "ps1", "psm1", "hta", "wsf",
    "wsh", "jar", "lnk", "pif", "cpl", "dll", "reg", "application", "appref-ms",
})
DANGEROUS_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer", "application/x-msi",
    "application/javascript", "text/javascript", "application/x-javascript", "application/ecmascript",
    "application/hta", "application/x-ms-shortcut", "application/java-archive", "application/x-bat",
})
_MARKUP_EXTENSIONS = frozenset({"html", "htm", "xhtml", "shtml", "svg", "xml", "mht", "mhtml"})
_MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"})
# What makes markup active: script elements, inline event handlers, javascript: URLs, embedded frames.
_ACTIVE_MARKUP = re.compile(
    rb"<\s*(script|iframe|object|embed|foreignobject)\b|\bon[a-z]+\s*=|javascript\s*:|<\s*meta[^>]+http-equiv",
    re.IGNORECASE,
)
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_NAMESPACE = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$")
_RESERVED = re.compile(r'[<>:"|?*\\/]')


def safe_filename(name: str) -> str:
    """The last path component of `name`, without control characters or reserved ones, at most 150 bytes."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # controls, bidi overrides, ...
    name = _RESERVED.sub("_", name).strip(" .")
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and stem and len(ext.encode()) <= 16 else ""
        budget = MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
        stem = (stem if ext else name).encode()[:budget].decode(errors="ignore").rstrip(" .")
        name = f"{stem}.{ext}" if ext else stem
    return name or "file"


def extension_of(filename: str) -> str:
    return filename.rpartition(".")[2].lower() if "." in filename else ""


def normalise_content_type(content_type: str | None) -> str:
    """`type/subtype` in lower case without parameters; anything malformed becomes application/octet-stream."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value if _CONTENT_TYPE.match(value) and len(value) <= 255 else DEFAULT_CONTENT_TYPE


def check(filename: str, content_type: str, data: bytes, *, max_bytes: int | None = None,
          blocked_extensions: Collection[str] = (), blocked_types: Collection[str] = (),
          allowed_types: Collection[str] | None = None, refuse_active_markup: bool = False) -> None:
    """Raise AttachmentTooLargeError or AttachmentRefusedError (with the reason) if the file is not acceptable.

    Args:
        filename: the (already safe) file name; its last extension counts, as it does for the OS that opens it.
        content_type: the normalised content type.
        data: the bytes.
        max_bytes: the size limit, or None for none.
        blocked_extensions: extensions refused, without the dot, lower case.
        blocked_types: content types refused.
        allowed_types: if given, only these content types (or `type/*` wildcards) are accepted.
        refuse_active_markup: refuse HTML, SVG and XML that carry scripts, event handlers or frames.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise AttachmentTooLargeError(f"the file is {len(data)} bytes; the limit is {max_bytes}",
                                      size=len(data), limit=max_bytes)
    extension = extension_of(filename)
    if extension and extension in {e.lower().lstrip(".") for e in blocked_extensions}:
        raise AttachmentRefusedError(f"files of type .{extension} are not accepted: they can run code",
                                     reason="blocked_extension")
    if content_type in blocked_types:
        raise AttachmentRefusedError(f"files of type {content_type} are not accepted: they can run code",
                                     reason="blocked_type")
    if allowed_types is not None and not any(
            content_type == t or (t.endswith("/*") and content_type.startswith(t[:-1])) for t in allowed_types):
        raise AttachmentRefusedError(f"files of type {content_type} are not accepted", reason="type_not_allowed")
    if refuse_active_markup and (extension in _MARKUP_EXTENSIONS or content_type in _MARKUP_TYPES
                                 or data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html", b"<svg"))):
        if _ACTIVE_MARKUP.search(data):
            raise AttachmentRefusedError("HTML or SVG with scripts is not accepted", reason="active_markup")


def save(root: Path, filename: str, content_type: str | None, data: bytes, *, namespace: str,
         max_bytes: int | None = None, blocked_extensions: Collection[str] = (),
         blocked_types: Collection[str] = (), allowed_types: Collection[str] | None = None,
         refuse_active_markup: bool = False) -> AttachmentInfo:
    """Store `data` under `namespace` and return its metadata; the limits are those of `check`.

    Args:
        root: the store's root folder (settings.data_dir), created if missing.
        filename: the name as given by the sender; only a safe last component is kept.
        content_type: as declared by the sender; normalised.
        data: the bytes.
        namespace: the first key component(s), e.g. `email`, `telegram`, `uploads` (lower-case, `[a-z0-9_-]`).

    Returns:
        The AttachmentInfo with the storage key (relative to root, `/`-separated) and the size.
    """
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"bad attachment namespace {namespace!r}")
    name = safe_filename(filename)
    ctype = normalise_content_type(content_type)
    check(name, ctype, data, max_bytes=max_bytes, blocked_extensions=blocked_extensions, blocked_types=blocked_types,
          allowed_types=allowed_types, refuse_active_markup=refuse_active_markup)
    digest = hashlib.sha256(data).hexdigest()
    key = f"{namespace}/{digest[:2]}/{digest[2:34]}/{name}"
    path = Path(root) / key
    if path.is_file():
        # The same bytes again: the file counts as new for the sweep of unsent uploads (core/attachments/sweep.py).
        with contextlib.suppress(OSError):
            os.utime(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
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
    return AttachmentInfo(filename=name, content_type=ctype, size=len(data), storage_key=key)


def open_path(root: Path, storage_key: str) -> Path:
    """The file of `storage_key`; NotFoundError for a missing file or a key that points outside `root`."""
    if not _key_is_well_formed(storage_key):
        raise NotFoundError("attachment not found", storage_key=storage_key[:512])
    base = Path(root).resolve()
    path = (base / storage_key).resolve()  # resolves symlinks too: a link out of the store is refused
    if not path.is_relative_to(base) or path == base or not path.is_file():
        raise NotFoundError("attachment not found", storage_key=storage_key[:512])
    return path


def verify(root: Path, storage_key: str, size: int | None = None) -> int:
    """The stored size of `storage_key` (NotFoundError if absent); ValidationFailedError if `size` disagrees."""
    actual = open_path(root, storage_key).stat().st_size
    if size is not None and size != actual:
        raise ValidationFailedError(f"attachment {storage_key!r} is {actual} bytes, not {size}",
                                    storage_key=storage_key)
    return actual


def _key_is_well_formed(key: str) -> bool:
    if not key or len(key) > 512 or "\\" in key or any(unicodedata.category(ch) == "Cc" for ch in key):
        return False
    parts = PurePosixPath(key).parts
    if PurePosixPath(key).is_absolute() or (parts and ":" in parts[0]):
        return False
    # No `..`, no empty components, no dot files (temporary `.part-` files are never served).
    return all(part and not part.startswith(".") for part in key.split("/"))
