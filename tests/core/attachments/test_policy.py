"""The one attachment policy: safe names that keep Unicode, and what every channel and upload refuses."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import strategies as st

from core.attachments import policy
from core.attachments.errors import AttachmentRefusedError, AttachmentTooLargeError
from core.attachments.policy import AttachmentPolicy, safe_filename, screen
from core.ingest.schemas import AttachmentInfo

LIMIT = 1000


@pytest.mark.parametrize(("given", "expected"), [
    ("договор.pdf", "договор.pdf"),
    ("Договор №5 от 01.02.pdf", "Договор №5 от 01.02.pdf"),
    ("счёт за май.pdf", "счёт за май.pdf"),
    ("请求.docx", "请求.docx"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\x", "x"),
    ("C:\\Users\\x\\report.docx", "report.docx"),
    ("/abs/path/a.txt", "a.txt"),
    ("bad\x00na\x1bme\r\n.txt", "badname.txt"),
    ("rtl\u202egnp.exe", "rtlgnp.exe"),  # the right-to-left override that disguises an extension
    ("zero\u200bwidth.pdf", "zerowidth.pdf"),
    ("no\u00a0break  spaces.pdf", "no break spaces.pdf"),
    ("...", "file"),
    ("", "file"),
    (".bashrc", "bashrc"),
    ("...hidden.pdf", "hidden.pdf"),
    ("trailing. . ", "trailing"),
    ('a<b>c:d"e|f?g*.txt', "a_b_c_d_e_f_g_.txt"),
    ("CON", "_CON"),
    ("con.txt", "_con.txt"),
    ("NUL.tar.gz", "_NUL.tar.gz"),
    ("LPT1.doc", "_LPT1.doc"),
    ("console.txt", "console.txt"),
])
def test_safe_filename(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_an_empty_name_takes_the_extension_of_its_type() -> None:
    assert safe_filename("", "application/pdf") == "file.pdf"
    assert safe_filename("/", "image/png") == "file.png"
    assert safe_filename(None, "no/such-type") == "file"


@pytest.mark.parametrize("stem", ["я" * 300, "x" * 300, "请" * 300, "я" * 149 + "x"])
def test_long_names_are_capped_in_bytes_keeping_the_extension(stem: str) -> None:
    name = safe_filename(stem + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= policy.MAX_NAME_BYTES
    assert stem.startswith(name[:-4])  # never a broken UTF-8 sequence: a prefix of whole characters
    assert len(name.encode()) > policy.MAX_NAME_BYTES - 4  # only what had to go went


def test_a_300_byte_name_without_extension_is_cut_at_a_character() -> None:
    name = safe_filename("ж" * 150)
    assert name == "ж" * 75 and len(name.encode()) == policy.MAX_NAME_BYTES


@hypothesis.given(st.text(max_size=300))
def test_safe_names_are_their_own_safe_name(name: str) -> None:
    """The store recognises its keys by their names: whatever it was given, the name it keeps is safe and stable."""
    safe = safe_filename(name)
    assert safe_filename(safe) == safe
    assert policy.is_plain_name(safe)
    assert 0 < len(safe.encode()) <= policy.MAX_NAME_BYTES and "/" not in safe and not safe.startswith(".")


@pytest.mark.parametrize("name", ["setup.exe", "invoice.pdf.exe", "run.PS1", "x.js", "y.bat", "z.cmd", "s.scr",
                                  "v.vbs", "i.msi", "disk.iso", "l.lnk", "d.dll"])
def test_blocked_extensions(name: str) -> None:
    refusal = AttachmentPolicy(max_bytes=LIMIT).check(name, None, 10).refusal
    assert refusal is not None and refusal.code == "blocked_extension"
    assert isinstance(refusal.error(), AttachmentRefusedError)


def test_size_count_and_types() -> None:
    rules = AttachmentPolicy(max_bytes=LIMIT, max_count=2)
    assert rules.check("a.pdf", "application/pdf", LIMIT).refusal is None
    too_large = rules.check("a.pdf", "application/pdf", LIMIT + 1).refusal
    assert too_large is not None and too_large.code == "too_large"
    assert isinstance(too_large.error(), AttachmentTooLargeError)
    too_many = rules.check("a.pdf", "application/pdf", 1, index=2).refusal
    assert too_many is not None and too_many.code == "too_many"
    blocked = rules.check("x.bin", "application/x-msdownload", 1).refusal
    assert blocked is not None and blocked.code == "blocked_type"
    allow = AttachmentPolicy(max_bytes=LIMIT, allowed_types=("image/*",))
    not_allowed = allow.check("a.zip", "application/zip", 2).refusal
    assert not_allowed is not None and not_allowed.code == "type_not_allowed"
    assert allow.check("a.png", "image/png", 3).refusal is None


def test_content_is_looked_at_when_there() -> None:
    rules = AttachmentPolicy(max_bytes=LIMIT)
    exe = rules.check("invoice.pdf", "application/pdf", None, data=b"MZ\x90\x00").refusal
    assert exe is not None and exe.code == "executable"
    fake = rules.check("fake.pdf", "application/pdf", None, data=b"not a pdf").refusal
    assert fake is not None and fake.reason == "content does not match its declared type application/pdf"
    assert rules.check("img.jpg", "image/jpeg", None, data=b"\x89PNG\r\n\x1a\n..").content_type == "image/png"
    assert rules.check("a.pdf", "application/octet-stream", None, data=b"%PDF-1").content_type == "application/pdf"


@pytest.mark.parametrize("body", [
    b"<html><body><script>alert(1)</script></body></html>",
    b'<img src=x onerror="alert(1)">',
    b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)">x</a></svg>',
    b"<!DOCTYPE html><iframe src=//evil></iframe>",
])
def test_active_markup_is_refused(body: bytes) -> None:
    rules = AttachmentPolicy(max_bytes=LIMIT)
    for name, ctype in (("page.html", "text/html"), ("pic.svg", "image/svg+xml"), ("note.txt", "text/plain")):
        if name == "note.txt" and not body.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<svg")):
            continue  # plain text that merely mentions a tag is not markup
        refusal = rules.check(name, ctype, None, data=body).refusal
        assert refusal is not None and refusal.code == "active_markup"


def test_plain_html_is_accepted() -> None:
    assert AttachmentPolicy(max_bytes=LIMIT).check(
        "menu.html", "text/html", None, data=b"<html><body><p>Menu</p></body></html>").refusal is None


def test_screen_declared_files() -> None:
    """Files a channel only refers to (REST): accepted ones named safely, refused ones recorded with the reason."""
    given = [AttachmentInfo(filename="..\\..\\договор.pdf", content_type="application/pdf", size=10,
                            url="https://files.example/1"),
             AttachmentInfo(filename="setup.exe", size=10, url="https://files.example/2"),
             AttachmentInfo(filename="big.pdf", content_type="application/pdf", size=LIMIT + 1,
                            url="https://files.example/3")]
    accepted, rejected = screen(given, AttachmentPolicy(max_bytes=LIMIT))
    assert [(a.filename, a.url) for a in accepted] == [("договор.pdf", "https://files.example/1")]
    assert [(r["filename"], r["reason"]) for r in rejected] == [
        ("setup.exe", "files of type .exe are not accepted: they can run code"),
        ("big.pdf", f"the file is {LIMIT + 1} bytes; the limit is {LIMIT}")]
