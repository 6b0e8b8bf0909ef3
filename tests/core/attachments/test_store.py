"""The attachment store: safe names, content addressing, atomic writes, keys that cannot leave the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.attachments import store
from core.attachments.errors import AttachmentRefusedError, AttachmentTooLargeError
from core.errors import NotFoundError, ValidationFailedError


def test_save_is_content_addressed_and_deduplicated(tmp_path: Path) -> None:
    first = store.save(tmp_path, "invoice.pdf", "application/pdf", b"%PDF-1.4 a", namespace="uploads")
    assert first.storage_key is not None and first.storage_key.startswith("uploads/")
    assert first.filename == "invoice.pdf" and first.size == 10 and first.content_type == "application/pdf"
    path = store.open_path(tmp_path, first.storage_key)
    assert path.read_bytes() == b"%PDF-1.4 a"
    inode = path.stat().st_ino
    again = store.save(tmp_path, "invoice.pdf", "application/pdf", b"%PDF-1.4 a", namespace="uploads")
    assert again == first and path.stat().st_ino == inode  # not rewritten (only touched: see the upload sweep)
    other = store.save(tmp_path, "invoice.pdf", "application/pdf", b"%PDF-1.4 b", namespace="uploads")
    assert other.storage_key != first.storage_key
    # No temporary files are left behind.
    assert not [p for p in tmp_path.rglob(".part-*")]


@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\report.docx", "report.docx"),
    ("/abs/path/a.txt", "a.txt"),
    ("bad\x00na\x1bme\r\n.txt", "badname.txt"),
    ("rtl\u202egnp.exe", "rtlgnp.exe"),
    ("...", "file"),
    ("", "file"),
    (".bashrc", "bashrc"),
    ('a<b>c:d"e|f?g*.txt', "a_b_c_d_e_f_g_.txt"),
    ("счёт за май.pdf", "счёт за май.pdf"),
])
def test_safe_filename(given: str, expected: str) -> None:
    assert store.safe_filename(given) == expected


def test_long_names_are_capped_in_bytes_keeping_the_extension() -> None:
    name = store.safe_filename("я" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= store.MAX_NAME_BYTES
    assert name[:-4] == "я" * len(name[:-4])  # never a broken UTF-8 sequence


def test_content_type_is_normalised(tmp_path: Path) -> None:
    assert store.save(tmp_path, "a.txt", "Text/Plain; charset=utf-8", b"x", namespace="uploads").content_type \
        == "text/plain"
    assert store.save(tmp_path, "b.txt", "<script>", b"x", namespace="uploads").content_type \
        == "application/octet-stream"


@pytest.mark.parametrize("key", [
    "../../etc/passwd", "uploads/../../etc/passwd", "/etc/passwd", "C:/Windows/win.ini", "uploads\\..\\x",
    "", "uploads//x", "uploads/.part-abc", "uploads/a\x00b", ".", "uploads/..",
])
def test_open_path_refuses_keys_outside_the_store(tmp_path: Path, key: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret").write_text("no")
    (root / "uploads").mkdir()
    (root / "uploads" / ".part-abc").write_text("half")
    with pytest.raises(NotFoundError):
        store.open_path(root, key)


def test_open_path_refuses_symlinks_out_of_the_store_and_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "uploads").mkdir(parents=True)
    (tmp_path / "secret").write_text("no")
    (root / "uploads" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(NotFoundError):
        store.open_path(root, "uploads/link")
    with pytest.raises(NotFoundError):
        store.open_path(root, "uploads/missing.pdf")
    with pytest.raises(NotFoundError):
        store.open_path(root, "uploads")  # a folder is not a file


def test_verify_checks_the_declared_size(tmp_path: Path) -> None:
    info = store.save(tmp_path, "a.txt", "text/plain", b"abc", namespace="uploads")
    assert info.storage_key is not None
    assert store.verify(tmp_path, info.storage_key) == 3
    assert store.verify(tmp_path, info.storage_key, 3) == 3
    with pytest.raises(ValidationFailedError):
        store.verify(tmp_path, info.storage_key, 4)


def test_limits(tmp_path: Path) -> None:
    with pytest.raises(AttachmentTooLargeError):
        store.save(tmp_path, "a.bin", None, b"x" * 11, namespace="uploads", max_bytes=10)
    for name in ("setup.exe", "invoice.pdf.exe", "run.PS1", "x.js", "y.bat", "z.cmd", "s.scr", "v.vbs", "i.msi"):
        with pytest.raises(AttachmentRefusedError) as caught:
            store.save(tmp_path, name, None, b"MZ", namespace="uploads",
                       blocked_extensions=store.DANGEROUS_EXTENSIONS)
        assert caught.value.details["reason"] == "blocked_extension"
    with pytest.raises(AttachmentRefusedError):
        store.save(tmp_path, "x.bin", "application/x-msdownload", b"MZ", namespace="uploads",
                   blocked_types=store.DANGEROUS_TYPES)
    with pytest.raises(AttachmentRefusedError):
        store.save(tmp_path, "a.zip", "application/zip", b"PK", namespace="uploads", allowed_types=("image/*",))
    assert store.save(tmp_path, "a.png", "image/png", b"png", namespace="uploads", allowed_types=("image/*",)).size
    assert not list((tmp_path / "uploads").rglob("*.exe"))


@pytest.mark.parametrize("body", [
    b"<html><body><script>alert(1)</script></body></html>",
    b'<img src=x onerror="alert(1)">',
    b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)">x</a></svg>',
    b"<!DOCTYPE html><iframe src=//evil></iframe>",
])
def test_active_markup_is_refused(tmp_path: Path, body: bytes) -> None:
    for name, ctype in (("page.html", "text/html"), ("pic.svg", "image/svg+xml"), ("note.txt", "text/plain")):
        if name == "note.txt" and not body.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<svg")):
            continue  # plain text that merely mentions a tag is not markup
        with pytest.raises(AttachmentRefusedError) as caught:
            store.save(tmp_path, name, ctype, body, namespace="uploads", refuse_active_markup=True)
        assert caught.value.details["reason"] == "active_markup"


def test_plain_html_is_accepted(tmp_path: Path) -> None:
    info = store.save(tmp_path, "menu.html", "text/html", b"<html><body><p>Menu</p></body></html>",
                      namespace="uploads", refuse_active_markup=True)
    assert info.storage_key is not None and info.storage_key.endswith("/menu.html")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure between writing and renaming leaves neither the final file nor the temporary one."""

    def broken_replace(_src: str, _dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save(tmp_path, "a.txt", "text/plain", b"data", namespace="uploads")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_namespace_is_checked(tmp_path: Path) -> None:
    for namespace in ("../x", "Uploads", "", "a//b", "/abs"):
        with pytest.raises(ValueError, match="namespace"):
            store.save(tmp_path, "a.txt", None, b"x", namespace=namespace)
