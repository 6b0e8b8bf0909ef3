"""Property tests of the e-mail parser: arbitrary bytes and arbitrary MIME trees (nested multiparts, lying and
unknown charsets, broken base64/quoted-printable, folded and encoded headers, missing and duplicate headers,
hostile file names) give a ParsedEmail whose text is storable and bounded, or UnparseableEmail: nothing else."""

from __future__ import annotations

import base64
import binascii
import quopri
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.compose import compose
from channels.email.inbound import parse_to_inbound
from channels.email.parser import UnparseableEmail, defuse_html, html_to_text, parse_email
from channels.email.settings import EmailChannelSettings
from core.attachments.store import AttachmentStore
from tests.channels.email.test_hostile_corpus import assert_sane
from tests.channels.email.test_send import envelope

# Bounded for CI (well under a minute together); the deadline is generous, only a hang or a blow-up meets it.
BOUNDED = settings(max_examples=200, deadline=timedelta(seconds=20), derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CHARSETS = ["utf-8", "UTF8", "cp1251", "windows-1251", "koi8-r", "koi8", "iso-8859-5", "us-ascii", "latin1",
            "utf-16", "utf-7", "gb2312", "shift_jis", "x-unknown", "zlib", "base64", "undefined", "unicode_escape",
            "", '"utf-8"', "utf-8\x00", "\xff\xfe", "a" * 200]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "BASE64", "x-bogus", ""]
TEXT = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Z", "S", "Cc"]), max_size=120) | \
    st.sampled_from(["Здравствуйте, не работает интернет", "Re: [T-000123] hi", "> quoted\n> more",
                     "<p>hi<a <b", "-- \nsig", "\r\n.\r\n", "=?utf-8?q?=0D=0AX-Injected:_1?="])
NAMES = st.text(max_size=40) | st.sampled_from(["../../etc/passwd", "..\\win.ini", "invoice\u202efdp.exe",
                                                "CON", "nul.txt", "x" * 300, ".htaccess", "a\x00b", ""])
HEADER_NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "References", "In-Reply-To", "Reply-To", "Sender",
                "Date", "Auto-Submitted", "Precedence", "Content-Language", "Return-Path", "List-Id"]


def encoded_word(text: str, charset: str) -> str:
    try:
        data = text.encode(charset if charset in ("utf-8", "cp1251", "koi8-r") else "utf-8", errors="replace")
    except LookupError:
        data = text.encode("utf-8")
    return f"=?{charset}?b?{base64.b64encode(data).decode()}?="


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    text = draw(TEXT)
    kind = draw(st.sampled_from(["plain", "encoded", "raw8bit", "folded", "address", "garbage"]))
    if kind == "encoded":
        return encoded_word(text, draw(st.sampled_from(CHARSETS))).encode("utf-8", "surrogateescape")
    if kind == "raw8bit":
        return text.encode(draw(st.sampled_from(["cp1251", "koi8-r", "utf-8"])), errors="replace")
    if kind == "folded":
        return text.encode("utf-8", "replace").replace(b" ", b"\r\n ")
    if kind == "address":
        return f'"{text}" <{draw(st.sampled_from(["a@example.org", "b@x", "<>", "noreply@x.org", "@@"]))}>'.encode(
            "utf-8", "replace")
    return draw(st.binary(max_size=60)).replace(b"\n", b" ")


def encode_body(data: bytes, encoding: str, broken: bool) -> bytes:
    if encoding.lower() == "base64":
        out = base64.encodebytes(data)
        return out[: len(out) // 2] + b"*!\r\n" if broken else out
    if encoding == "quoted-printable":
        out = quopri.encodestring(data)
        return out + b"=Z\r\n=" if broken else out
    if encoding == "x-uuencode":
        return b"begin 644 f\n" + binascii.b2a_uu(data[:45]) + b"end\n"
    return data


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    ctype = draw(st.sampled_from(["text/plain", "text/html", "application/octet-stream", "image/png",
                                  "text/calendar", "application/ms-tnef", "message/rfc822", "x/y", "text"]))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    if draw(st.booleans()):
        body = draw(TEXT).encode(draw(st.sampled_from(["utf-8", "cp1251", "koi8-r", "utf-16"])), errors="replace")
    else:
        body = draw(st.binary(max_size=200))
    lines = [f"Content-Type: {ctype}; charset=\"{charset}\"".encode("utf-8", "surrogateescape")]
    if encoding:
        lines.append(b"Content-Transfer-Encoding: " + encoding.encode())
    if draw(st.booleans()):
        name = draw(NAMES)
        form = draw(st.sampled_from(["quoted", "encoded", "2231", "raw"]))
        value = {"quoted": f'filename="{name}"', "encoded": f'filename="{encoded_word(name, "utf-8")}"',
                 "2231": f"filename*=utf-8''{name}", "raw": f"filename={name}"}[form]
        lines.append(b"Content-Disposition: attachment; " + value.encode("utf-8", "surrogateescape"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + encode_body(body, encoding, draw(st.booleans()))


def tree() -> st.SearchStrategy[bytes]:
    def multipart(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
        @st.composite
        def build(draw: st.DrawFn) -> bytes:
            parts = draw(children)
            boundary = draw(st.sampled_from(["b1", "=_x", "a b", "", "--"])) + str(len(parts))
            subtype = draw(st.sampled_from(["mixed", "alternative", "related", "digest", "report"]))
            body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
            if draw(st.booleans()):
                body += b"--" + boundary.encode() + b"--\r\n"
            return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode() + body
        return build()

    return st.recursive(leaf(), lambda children: multipart(st.lists(children, max_size=4)), max_leaves=12)


@st.composite
def email_bytes(draw: st.DrawFn) -> bytes:
    headers: list[bytes] = []
    for name in HEADER_NAMES:
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):  # missing, present, duplicated
            headers.append(name.encode() + b": " + draw(header_value()))
    if draw(st.booleans()):
        headers.insert(0, b"From: Customer <customer@example.org>")
    body = draw(tree())
    separator = draw(st.sampled_from([b"\r\n", b"\n"]))
    raw = b"\r\n".join(headers) + b"\r\nMIME-Version: 1.0\r\n" + body
    return raw.replace(b"\r\n", separator)


def check(raw: bytes) -> None:
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return
    assert_sane(parsed)
    with tempfile.TemporaryDirectory() as folder:  # the inbound message the reader would ingest builds too
        parse_to_inbound(raw, EmailChannelSettings(), files=AttachmentStore(Path(folder)), mailbox="m", raw_ref="r",
                         received_at=datetime.now(UTC))


@BOUNDED
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


@BOUNDED
@given(st.lists(st.tuples(st.sampled_from([*HEADER_NAMES, "Content-Type", "Content-Disposition", "X"]),
                          st.binary(max_size=80)), max_size=12), st.binary(max_size=300))
def test_arbitrary_header_lines(headers: list[tuple[str, bytes]], body: bytes) -> None:
    check(b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body)


@BOUNDED
@given(email_bytes())
def test_arbitrary_mime_trees(raw: bytes) -> None:
    check(raw)


REPLY_HEADERS = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references", "x-switchboard-ticket",
                 "content-language", "mime-version", "content-type", "content-transfer-encoding"}


@st.composite
def threading_headers(draw: st.DrawFn) -> bytes:
    """From, Subject, Message-ID and References as a customer may write them, encoded words within encoded words
    included (what we decode once, EmailMessage would decode again)."""
    def value() -> st.SearchStrategy[bytes]:
        inner = st.sampled_from([b"=?utf-8?q?a=0D=0ABcc:_x@evil.example?=", b"=?utf-8?b?SGkKWC1JbmplY3RlZDogMQ==?=",
                                 b"a\r\nBcc: x@evil.example", b"\xe2\x80\xa8X: 1", b"\xc2\x85X: 1"])
        twice = inner.map(lambda b: b"=?utf-8?b?" + base64.b64encode(b) + b"?=")
        return st.one_of(header_value(), inner, twice)
    subject, mid, ref = draw(value()), draw(value()), draw(value())
    return (b"From: c@example.org\r\nSubject: " + subject + b"\r\nMessage-ID: <" + mid + b"@x.org>\r\n"
            b"References: <" + ref + b"@x.org> <ok@x.org>\r\n\r\nhi\r\n")


@BOUNDED
@given(threading_headers())
def test_a_reply_to_any_mail_carries_no_injected_header(raw: bytes) -> None:
    """What a customer's mail puts in the ticket (subject, Message-ID, References) comes back in our reply's
    headers: it must never add a header or a line of its own (CR/LF, U+2028, NEL, encoded newlines)."""
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return
    reply = envelope(subject=parsed.subject, in_reply_to=parsed.message_id, references=list(parsed.references))
    message, _message_id = compose(reply, from_address="support@support.example", from_name="Support",
                                   domain="support.example")
    head = message.as_bytes().split(b"\n\n", 1)[0]
    names = {line.split(b":", 1)[0].decode().lower() for line in head.split(b"\n")
             if line and not line[:1].isspace()}
    assert names <= REPLY_HEADERS, names
    assert [n for n in message.keys() if n.lower() == "subject"] == ["Subject"]


@BOUNDED
@given(st.lists(st.sampled_from(["<", ">", "<a ", "<!--", "-->", "<![if x]>", "<![", "]>", "<!", "<?", "</",
                                 "<p>", "</p>", "<script>", "</script>", '"', "x", " ", "&lt;"]), max_size=60)
       .map("".join))
def test_defused_html_leaves_the_html_parser_only_complete_tags(html: str) -> None:
    """Python's HTMLParser backtracks on a `<` it cannot close (12 KB of `<a ` took 6 s): after defuse_html,
    every `<` opens a tag whose `>` comes before the next `<`, or a closed comment."""
    out = defuse_html(html)
    i = out.find("<")
    while i >= 0:
        if out.startswith("<!--", i):
            end = out.find("-->", i + 4)
            assert end >= 0
            i = out.find("<", end + 3)
            continue
        gt, nxt = out.find(">", i + 1), out.find("<", i + 1)
        assert gt >= 0 and (nxt < 0 or gt < nxt), (html, out)
        i = nxt
    html_to_text(html)
