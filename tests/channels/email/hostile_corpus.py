"""A corpus of hostile e-mails, built as bytes: bombs, deep nesting, lying encodings, header injection, huge
headers, hostile attachment names. Each entry is (name, raw bytes); `corpus()` gives them all."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable

CRLF = b"\r\n"
SENDER = "hostile@example.org"


def _headers(
    name: str,
    *,
    subject: bytes | None = None,
    extra: bytes = b"",
    sender: bytes | None = None,
    content_type: bytes = b"text/plain; charset=utf-8",
) -> bytes:
    lines = [
        b"From: " + (sender if sender is not None else f"Hostile <{SENDER}>".encode()),
        b"To: support@support.example",
        b"Subject: " + (subject if subject is not None else f"corpus {name}".encode()),
        b"Date: Thu, 26 Nov 2026 10:00:00 +0000",
        f"Message-ID: <{name}@hostile.example>".encode(),
        b"MIME-Version: 1.0",
    ]
    if content_type:
        lines.append(b"Content-Type: " + content_type)
    head = CRLF.join(lines) + CRLF
    return head + extra


def _mail(name: str, body: bytes = b"hello", **kwargs: object) -> bytes:
    return _headers(name, **kwargs) + CRLF + body + CRLF  # type: ignore[arg-type]


def _multipart(
    name: str, parts: list[bytes], *, subtype: bytes = b"mixed", boundary: bytes = b"==b==", **kwargs: object
) -> bytes:
    body = b"".join(b"--" + boundary + CRLF + part + CRLF for part in parts) + b"--" + boundary + b"--" + CRLF
    return (
        _headers(name, content_type=b"multipart/" + subtype + b'; boundary="' + boundary + b'"', **kwargs) + CRLF + body
    )  # type: ignore[arg-type]


def _part(body: bytes, content_type: bytes = b"text/plain; charset=utf-8", extra: bytes = b"") -> bytes:
    return b"Content-Type: " + content_type + CRLF + extra + CRLF + body


def _attachment(filename: bytes, data: bytes = b"data", content_type: bytes = b"application/octet-stream") -> bytes:
    return (
        b"Content-Type: "
        + content_type
        + CRLF
        + b'Content-Disposition: attachment; filename="'
        + filename
        + b'"'
        + CRLF
        + b"Content-Transfer-Encoding: base64"
        + CRLF
        + CRLF
        + base64.encodebytes(data)
    )


def _nested_multipart(name: str, depth: int) -> bytes:
    head = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i) for i in range(1, depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth - 1)))
    leaf = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep down\r\n--b%d--\r\n" % (depth - 1, depth - 1)
    return _headers(name, content_type=b'multipart/mixed; boundary="b0"') + CRLF + head + leaf + tail


def _nested_rfc822(name: str, depth: int) -> bytes:
    inner = b"From: inner@example.org\r\nSubject: innermost\r\n\r\nthe innermost text\r\n"
    for level in range(depth):
        inner = (b"From: fw%d@example.org\r\nSubject: Fwd\r\nContent-Type: message/rfc822\r\n\r\n" % level) + inner
    return _multipart(name, [_part(b"see the forwarded mail"), _part(inner, b"message/rfc822")])


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * 20_000_000)
    return buffer.getvalue()


def _tnef() -> bytes:
    # The TNEF signature and a few bytes: what Outlook's winmail.dat starts with.
    return b"\x78\x9f\x3e\x22" + b"\x01\x06\x90\x08\x00\x04\x00\x00\x00\x00\x00\x01\x00\x01\x00" * 20


CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1@x\r\n"
    b"DTSTART:20261126T100000Z\r\nSUMMARY:Meeting\\nInjected: yes\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
DOUBLE_CRLF = b"=?utf-8?q?a=0D=0ABcc:_victim@evil.example?="
RUSSIAN = "Здравствуйте, у меня не работает интернет уже третий день, помогите пожалуйста"

BUILDERS: dict[str, Callable[[str], bytes]] = {
    # --- bombs and size ---
    "mime-bomb-base64-text": lambda n: (
        _headers(n, extra=b"Content-Transfer-Encoding: base64\r\n") + CRLF + base64.encodebytes(b"A" * 6_000_000)
    ),
    "mime-bomb-zip": lambda n: _multipart(
        n, [_part(b"see the archive"), _attachment(b"bomb.zip", _zip_bomb(), b"application/zip")]
    ),
    "mime-bomb-many-text-parts": lambda n: _multipart(n, [_part(b"x" * 200_000) for _ in range(20)]),
    "parts-10000": lambda n: _multipart(n, [_part(b"hi")] + [_attachment(b"f%d.txt" % i, b"x") for i in range(10_000)]),
    "parts-400-inline-text": lambda n: _multipart(n, [_part(b"part %d" % i) for i in range(400)]),
    "nested-multipart-1000": lambda n: _nested_multipart(n, 1000),
    "nested-multipart-5000": lambda n: _nested_multipart(n, 5000),
    "nested-multipart-20": lambda n: _nested_multipart(n, 20),
    "nested-rfc822-1000": lambda n: _nested_rfc822(n, 1000),
    "nested-rfc822-10": lambda n: _nested_rfc822(n, 10),
    "content-type-params-800k": lambda n: (
        _headers(n, content_type=b"text/plain; " + b'a="b;"; ' * 100_000) + CRLF + b"body"
    ),
    "filename-rfc2231-20000-pieces": lambda n: _multipart(
        n,
        [
            _part(b"hi"),
            b"Content-Disposition: attachment; "
            + b"".join(b"filename*%d*=utf-8''a%%2F;" % i for i in range(20_000))
            + CRLF
            + CRLF
            + b"x",
        ],
    ),
    "html-unclosed-tags": lambda n: _mail(n, b"<html><body>help " + b"<a " * 100_000, content_type=b"text/html"),
    "html-unclosed-bang": lambda n: _mail(n, b"<!" * 100_000 + b"help", content_type=b"text/html"),
    "html-200k-divs": lambda n: _mail(n, b"<div>" * 200_000 + b"help", content_type=b"text/html"),
    "text-quote-lines": lambda n: _mail(n, b"my words\r\n" + b"> q\r\n" * 300_000),
    # lines shaped like reply attributions: a pattern with two bounded wildcards backtracked 300x300 per line
    "text-attribution-shaped-lines": lambda n: _mail(n, b"my words\r\n" + (b"On 1 @ " * 56 + b"\r\n") * 1_000),
    "text-one-line-of-on": lambda n: _mail(n, b"x " + b"On 1 " * 80_000 + b"wrote:\r\n> q"),
    # --- broken and lying encodings ---
    "cp1251-declared-utf8": lambda n: _mail(n, RUSSIAN.encode("cp1251")),
    "koi8r-declared-utf8": lambda n: _mail(n, RUSSIAN.encode("koi8-r")),
    "utf8-declared-cp1251": lambda n: _mail(n, RUSSIAN.encode(), content_type=b"text/plain; charset=windows-1251"),
    "koi8r-declared-cp1251": lambda n: _mail(n, RUSSIAN.encode("koi8-r"), content_type=b"text/plain; charset=cp1251"),
    "unknown-charset": lambda n: _mail(n, RUSSIAN.encode("cp1251"), content_type=b"text/plain; charset=x-klingon"),
    "charset-zlib": lambda n: _mail(
        n, b"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15", content_type=b"text/plain; charset=zlib"
    ),
    "charset-undefined": lambda n: _mail(n, b"caf\xe9", content_type=b"text/plain; charset=undefined"),
    "charset-unicode-escape": lambda n: _mail(
        n, b"\\ud800 lone \\x00 nul", content_type=b"text/plain; charset=unicode_escape"
    ),
    "charset-utf7-lone-surrogate": lambda n: _mail(n, b"+2AA- lone", content_type=b"text/plain; charset=utf-7"),
    "charset-utf16-odd": lambda n: _mail(n, b"\xff\xfeh\x00i\x00\x00\xd8", content_type=b"text/plain; charset=utf-16"),
    "invalid-base64": lambda n: (
        _headers(n, extra=b"Content-Transfer-Encoding: base64\r\n") + CRLF + b"!!!@@@###=\r\nQUJD*\r\n"
    ),
    "invalid-quoted-printable": lambda n: (
        _headers(n, extra=b"Content-Transfer-Encoding: quoted-printable\r\n") + CRLF + b"=ZZ=4=\r\n=E0=A4=\r\nsoft=\r\n"
    ),
    "unknown-transfer-encoding": lambda n: (
        _headers(n, extra=b"Content-Transfer-Encoding: x-gzip64\r\n") + CRLF + b"H4sI"
    ),
    "raw-8bit-headers": lambda n: _mail(
        n, b"body", subject="Тема письма".encode("cp1251"), sender="Иван <ivan@example.org>".encode("koi8-r")
    ),
    "nul-bytes": lambda n: _mail(n, b"he\x00llo\x00 world", subject=b"nul\x00subject"),
    "nul-in-html": lambda n: _mail(n, b"<p>he\x00llo</p>", content_type=b"text/html; charset=utf-8"),
    "lone-surrogate-encoded-word": lambda n: _mail(n, b"body", subject=b"=?utf-7?q?+2AA-?= =?utf-8?b?7aCA?="),
    # --- header injection into reply subjects ---
    "subject-encoded-crlf": lambda n: _mail(
        n, b"please reply", subject=b"=?utf-8?q?Hi=0D=0ABcc:_victim@evil.example?="
    ),
    "subject-encoded-lf-base64": lambda n: _mail(
        n, b"please reply", subject=b"=?utf-8?b?" + base64.b64encode(b"Hi\nX-Injected: 1") + b"?="
    ),
    "subject-unicode-line-separators": lambda n: _mail(
        n, b"please reply", subject="Hi\u2028X-Injected: 1\u0085Bcc: a@evil.example".encode()
    ),
    "subject-folded-bare-cr": lambda n: _mail(n, b"please reply", subject=b"Hi\rX-Injected: 1"),
    # an encoded word that decodes to another one, which EmailMessage would decode again in our reply
    "subject-double-encoded-crlf": lambda n: _mail(
        n, b"please reply", subject=b"=?utf-8?b?" + base64.b64encode(DOUBLE_CRLF) + b"?="
    ),
    "message-id-double-encoded-crlf": lambda n: _mail(n, b"please reply").replace(
        f"<{n}@hostile.example>".encode(), b"<=?utf-8?b?" + base64.b64encode(DOUBLE_CRLF) + b"?=@hostile.example>"
    ),
    "from-double-encoded-crlf": lambda n: _mail(
        n, b"please reply", sender=b"=?utf-8?b?" + base64.b64encode(b"=?utf-8?q?a=0ABcc:v?=") + b"?=@evil.example"
    ),
    # --- huge headers ---
    "subject-1mb": lambda n: _mail(n, b"body", subject=b"A" * 1_000_000),
    "subject-1mb-encoded-words": lambda n: _mail(n, b"body", subject=b"=?utf-8?b?0J/RgA==?= " * 50_000),
    "received-10000": lambda n: (
        _headers(
            n,
            extra=b"".join(b"Received: from h%d by x; Thu, 26 Nov 2026 10:00:00 +0000\r\n" % i for i in range(10_000)),
        )
        + CRLF
        + b"body"
    ),
    "to-100k-addresses": lambda n: _mail(n, b"body", extra=b"Cc: " + b"a@b.example, " * 100_000 + CRLF),
    "references-1mb": lambda n: _mail(n, b"body", extra=b"References: " + b"<r@x> " * 170_000 + CRLF),
    "message-id-huge": lambda n: _mail(n, b"body").replace(
        f"<{n}@hostile.example>".encode(), b"<" + b"m" * 5000 + b"@x>"
    ),
    # --- hostile attachment names ---
    "attachment-dotdot": lambda n: _multipart(n, [_part(b"see file"), _attachment(b"../../../etc/passwd")]),
    "attachment-rtl-override": lambda n: _multipart(
        n, [_part(b"see file"), _attachment("invoice\u202efdp.exe".encode())]
    ),
    "attachment-300-bytes": lambda n: _multipart(
        n, [_part(b"see file"), _attachment(b"n" * 300 + b".pdf", b"%PDF-1.4")]
    ),
    "attachment-windows-reserved": lambda n: _multipart(
        n, [_part(b"see files"), _attachment(b"CON.txt"), _attachment(b"nul"), _attachment(b"LPT1.log")]
    ),
    "attachment-nul-and-controls": lambda n: _multipart(n, [_part(b"see file"), _attachment(b"a\x00b\x07\x1bc.txt")]),
    "attachment-encoded-word-path": lambda n: _multipart(
        n, [_part(b"see file"), _attachment(b"=?utf-8?b?" + base64.b64encode(b"..\\..\\win.ini") + b"?=")]
    ),
    # --- empty and odd ---
    "empty-body": lambda n: _headers(n),
    "headers-only-no-blank-line": lambda n: _headers(n).rstrip(),
    "no-sender": lambda n: _mail(n, b"who am I", sender=b""),
    "only-garbage": lambda n: b"\x00\xff\xfe" * 1000,
    "empty-multipart": lambda n: _multipart(n, []),
    "multipart-without-boundary": lambda n: _headers(n, content_type=b"multipart/mixed") + CRLF + b"--x\r\n\r\nbody",
    "calendar-invite": lambda n: _multipart(
        n, [_part(b"invite"), _part(CALENDAR, b"text/calendar; method=REQUEST")], subtype=b"alternative"
    ),
    "tnef-winmail": lambda n: _multipart(
        n, [_part(b"see winmail"), _attachment(b"winmail.dat", _tnef(), b"application/ms-tnef")]
    ),
    "digest-of-nested-digests": lambda n: (
        _headers(n, content_type=b'multipart/digest; boundary="d0"')
        + CRLF
        + b"".join(
            b'--d%d\r\n\r\nContent-Type: multipart/digest; boundary="d%d"\r\n\r\n' % (i, i + 1) for i in range(300)
        )
    ),
}


def corpus() -> list[tuple[str, bytes]]:
    return [(name, build(name)) for name, build in BUILDERS.items()]


# The one normal mail appended after the corpus: it must be stored like any other.
def normal_mail(name: str = "normal-after-corpus") -> bytes:
    return _mail(name, b"My internet is down, please help", subject=b"Internet")
