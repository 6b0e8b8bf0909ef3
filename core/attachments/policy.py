"""The one attachment policy of every channel and every upload: what a file may be called, and what is refused.

`safe_filename` keeps the name the customer gave (Cyrillic, CJK, spaces: `договор.pdf` stays `договор.pdf`) and
removes what could hurt whoever saves or opens the file: path separators, control and bidi characters, leading
dots, characters Windows refuses, reserved Windows device names; it caps the name in bytes, keeping the extension.

`AttachmentPolicy.check` decides, file by file: size, count per message, the one list of blocked extensions and
content types, executable content under an innocent name, a declared type the content contradicts, HTML or SVG
that carries scripts, and (e-mail's setting) an allow-list of types. A refusal carries its reason.

What a channel does with a refused file is the same everywhere a customer writes (e-mail, Telegram, REST): the
message is kept, the file is not stored, and the message lists it under `extra["rejected_attachments"]` with the
reason, which agents see in the conversation. An agent's upload that is refused is a 413 or 415 with the reason.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.attachments.errors import AttachmentRefusedError, AttachmentTooLargeError
from core.errors import DomainError
from core.ingest.schemas import AttachmentInfo

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Bytes, not characters: most file systems cap a name at 255 bytes, and Cyrillic takes two per letter.
MAX_NAME_BYTES = 150
MAX_EXTENSION_BYTES = 16
MAX_ATTACHMENTS = 20  # per message
# Executables, scripts, installers, shortcuts and disk images: what a double click runs on Windows, macOS or in a
# browser. One list for every channel and every upload.
BLOCKED_EXTENSIONS = frozenset({
    "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "sys", "js", "jse", "vbs", "vbe", "wsf",
    "wsh", "ps1", "psm1", "hta", "lnk", "jar", "reg", "iso", "img", "vhd", "application", "appref-ms", "gadget",
})
BLOCKED_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer", "application/x-msi",
    "application/javascript", "text/javascript", "application/x-javascript", "application/ecmascript",
    "application/hta", "application/x-ms-shortcut", "application/java-archive", "application/x-bat",
})
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xce",
                     b"\xfe\xed\xfa\xcf", b"\xca\xfe\xba\xbe")
# Types whose content is easy to recognise: a file that claims one of them and is something else is refused.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
}
_GENERIC_TYPES = frozenset({DEFAULT_CONTENT_TYPE, "application/x-download", "application/force-download"})
_MARKUP_EXTENSIONS = frozenset({"html", "htm", "xhtml", "shtml", "svg", "xml", "mht", "mhtml"})
_MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"})
# What makes markup active: script elements, inline event handlers, javascript: URLs, embedded frames.
_ACTIVE_MARKUP = re.compile(
    rb"<\s*(script|iframe|object|embed|foreignobject)\b|\bon[a-z]+\s*=|javascript\s*:|<\s*meta[^>]+http-equiv",
    re.IGNORECASE,
)
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')
# `CON.txt` opens the console, not a file, on the agent's Windows PC (and `nul.tar.gz` is the null device).
_WINDOWS_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\.|$)", re.IGNORECASE)

RefusalCode = Literal["too_large", "too_many", "blocked_extension", "blocked_type", "executable",
                      "content_mismatch", "active_markup", "type_not_allowed"]


# --- names ----------------------------------------------------------------------------------------------------


def safe_filename(name: str | None, content_type: str | None = None) -> str:
    """A name safe to store, show and save: the last path component, Unicode kept, at most MAX_NAME_BYTES.

    An empty result becomes `file` with the extension of `content_type` when there is one. Its own result comes
    back unchanged.
    """
    result = name or ""
    for _ in range(4):  # removing a character can leave a sequence that NFC composes: once more then
        safe = _safe_filename_once(result)
        if safe == result:
            break
        result = safe
    if not result:
        extension = mimetypes.guess_extension(content_type or "", strict=False) if content_type else None
        result = f"file{extension}" if extension and _safe_filename_once(f"file{extension}") == f"file{extension}" \
            else "file"
    return result


def _safe_filename_once(name: str) -> str:
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for ch in name:
        category = unicodedata.category(ch)
        if category[0] == "C" or category in ("Zl", "Zp"):  # controls, bidi overrides, zero-width, line breaks
            continue
        kept.append(" " if category == "Zs" else ch)  # no-break and other odd spaces read as a plain one
    name = re.sub(r" {2,}", " ", _WINDOWS_RESERVED.sub("_", "".join(kept))).strip(" .")
    if _WINDOWS_DEVICE.match(name):
        name = f"_{name}"
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and stem and len(ext.encode()) <= MAX_EXTENSION_BYTES else ""
        budget = MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
        stem = (stem if ext else name).encode()[:budget].decode(errors="ignore").rstrip(" .")
        name = f"{stem}.{ext}" if ext and stem else stem
    return name


def is_plain_name(name: str) -> bool:
    """Whether `name` is one file name and nothing more: no separator, control character or leading dot.

    Looser than `safe_filename(name) == name`: names stored by earlier versions (before reserved Windows names
    were prefixed, or runs of spaces joined) are still plain names.
    """
    return (0 < len(name.encode()) <= MAX_NAME_BYTES and "/" not in name and "\\" not in name
            and name == name.strip(" .") and not _WINDOWS_RESERVED.search(name)
            and unicodedata.normalize("NFC", name) == name
            and not any(unicodedata.category(ch)[0] == "C" for ch in name))


def extension_of(filename: str) -> str:
    """The last extension, lower case, without the dot (the one the opening OS goes by)."""
    return filename.rpartition(".")[2].lower() if "." in filename else ""


def normalise_content_type(content_type: str | None) -> str:
    """`type/subtype` in lower case without parameters; anything malformed becomes application/octet-stream."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value if _CONTENT_TYPE.match(value) and len(value) <= 255 else DEFAULT_CONTENT_TYPE


# --- the check ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file is refused: a code for programs, a reason for people."""

    code: RefusalCode
    reason: str
    limit: int | None = None  # too_large: the limit in bytes; too_many: the most files

    def error(self) -> DomainError:
        """The error an upload answers with: 413 for the size, 415 for the kind of file."""
        if self.code == "too_large":
            return AttachmentTooLargeError(self.reason, reason=self.code, limit=self.limit)
        return AttachmentRefusedError(self.reason, reason=self.code)

    def record(self, filename: str, content_type: str, size: int | None) -> dict[str, Any]:
        """The entry of `extra["rejected_attachments"]` a kept message lists the refused file under."""
        return {"filename": filename, "content_type": content_type, "size": size, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The content type to record (sniffed when the declared one was generic or wrong), and any refusal."""

    content_type: str
    refusal: Refusal | None = None


@dataclass(frozen=True)
class AttachmentPolicy:
    """The limits of one channel or upload route (the lists are shared; sizes and e-mail's allow-list are not).

    Args:
        max_bytes: the size limit of one file.
        max_count: the most files of one message; the ones after are refused.
        allowed_types: if given, only these content types (`type/*` and `*/*` wildcards allowed) are accepted.
        blocked_extensions: extensions refused (lower case, no dot).
        verify_types: with the bytes, refuse a file whose content contradicts its declared type (a "PDF" that
            is not one) and record the sniffed type; what customers send is verified, agents' uploads keep the
            type their browser declared.
    """

    max_bytes: int
    max_count: int = MAX_ATTACHMENTS
    allowed_types: tuple[str, ...] | None = None
    blocked_extensions: frozenset[str] = BLOCKED_EXTENSIONS
    verify_types: bool = True

    def check(self, filename: str, content_type: str | None, size: int | None, *, index: int = 0,
              data: bytes | None = None) -> Verdict:
        """The verdict on one file; with `data`, its content is looked at too.

        Args:
            filename: the safe name (`safe_filename`); its last extension counts.
            content_type: as declared; normalised here.
            size: the size in bytes, if known (`data` gives it otherwise).
            index: the file's position in its message, from 0 (for the count).
            data: the bytes, if the caller has them (the content checks need them).
        """
        ctype = normalise_content_type(content_type)
        if data is not None:
            size = len(data)
        if index >= self.max_count:
            return Verdict(ctype, Refusal("too_many", f"more than {self.max_count} files in one message",
                                           self.max_count))
        if size is not None and size > self.max_bytes:
            return Verdict(ctype, Refusal("too_large", f"the file is {size} bytes; the limit is {self.max_bytes}",
                                          self.max_bytes))
        extension = extension_of(filename)
        if extension and extension in self.blocked_extensions:
            return Verdict(ctype, Refusal("blocked_extension", f"files of type .{extension} are not accepted: "
                                                               "they can run code"))
        if ctype in BLOCKED_TYPES:
            return Verdict(ctype, Refusal("blocked_type", f"files of type {ctype} are not accepted: they can run code"))
        if data is not None:
            if data.startswith(_EXECUTABLE_MAGIC):
                return Verdict(ctype, Refusal("executable", "executable content is not accepted"))
            if self.verify_types:
                if ctype in _GENERIC_TYPES:
                    ctype = mimetypes.guess_type(filename, strict=False)[0] or ctype
                sniffed = next((t for t, magics in _MAGIC.items() if data.startswith(magics)), None)
                if ctype in _MAGIC and sniffed != ctype:
                    if sniffed is None:
                        return Verdict(ctype, Refusal("content_mismatch",
                                                      f"content does not match its declared type {ctype}"))
                    ctype = sniffed  # a PNG labelled JPEG: harmless, record the truth
            if ((extension in _MARKUP_EXTENSIONS or ctype in _MARKUP_TYPES
                 or data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html", b"<svg")))
                    and _ACTIVE_MARKUP.search(data)):
                return Verdict(ctype, Refusal("active_markup", "HTML or SVG with scripts is not accepted"))
        if self.allowed_types is not None and not type_allowed(ctype, self.allowed_types):
            return Verdict(ctype, Refusal("type_not_allowed", f"files of type {ctype} are not accepted"))
        return Verdict(ctype)


def type_allowed(content_type: str, patterns: Collection[str]) -> bool:
    major = content_type.split("/", 1)[0]
    return any(p == content_type or p == "*/*" or (p.endswith("/*") and p[:-2] == major)
               or (p.endswith(".*") and content_type.startswith(p[:-1])) for p in patterns)


def screen(attachments: Sequence[AttachmentInfo], policy: AttachmentPolicy
           ) -> tuple[list[AttachmentInfo], list[dict[str, Any]]]:
    """Files a channel only refers to (a URL, no bytes here) by their declared name, type and size:
    (the accepted ones, named safely; the records of the refused ones for `extra["rejected_attachments"]`)."""
    accepted: list[AttachmentInfo] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(attachments):
        name = safe_filename(item.filename, item.content_type)
        verdict = policy.check(name, item.content_type, item.size, index=index)
        if verdict.refusal is not None:
            rejected.append(verdict.refusal.record(name, verdict.content_type, item.size))
        else:
            accepted.append(item.model_copy(update={"filename": name, "content_type": verdict.content_type}))
    return accepted, rejected
