"""Raw RFC 5322 bytes -> a parsed email: pure functions, no I/O.

Real mail is messy: mis-declared charsets, raw 8-bit headers, broken MIME, HTML-only bodies carrying the whole
quoted history. Everything here degrades gracefully; only a message we cannot attribute to a sender raises
`UnparseableEmail` (the adapter quarantines it).
"""

from __future__ import annotations

import codecs
import email
import email.utils
import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from html.parser import HTMLParser
from typing import Any

import charset_normalizer

from core.attachments.policy import AttachmentPolicy, safe_filename

__all__ = [
    "ParsedAttachment", "ParsedEmail", "UnparseableEmail", "auto_reply_reason",
    "check_attachment", "clean_text", "decode_bytes", "decode_header_value", "defuse_html", "html_to_text",
    "normalize_message_id",
    "parse_email", "parse_message_ids", "safe_filename", "strip_quoted_text", "ticket_number_in",
]

MAX_TEXT_CHARS = 200_000
MAX_QUOTED_CHARS = 50_000  # of the quoted history kept with a message (long threads repeat all of it)
DEFAULT_MAX_ATTACHMENT_BYTES = 15 * 1024 * 1024
MAX_HTML_CHARS = 1_000_000
MAX_REFERENCES = 50
# Bounds that keep the work per mail linear and small whatever arrives (each one met by a hostile mail in the
# tests): Python's email package recurses per nesting level and re-scans long parameter headers, so mail past
# these is quarantined before it reaches it; header values are cut before decoding.
MAX_MIME_CONTAINERS = 100  # multipart and message parts, nested or not; real mail has a handful
MAX_PARTS = 500
MAX_DECODED_BYTES = 64 * 1024 * 1024
MAX_PARAM_HEADER_BYTES = 16_384  # one Content-Type / Content-Disposition header
MAX_HEADER_CHARS = 16_384  # what is decoded of any other header
_TEXT_SAMPLE_BYTES = 65_536  # enough to tell cp1251 from koi8-r


class UnparseableEmail(ValueError):
    """The payload cannot become an inbound message (no sender, not an email at all)."""


# --- charsets -------------------------------------------------------------------------------------------

# Labels real mailers write that Python's codec registry does not know, or knows under another name.
_CHARSET_ALIASES = {
    "win-1251": "cp1251", "windows1251": "cp1251", "cp-1251": "cp1251", "x-cp1251": "cp1251",
    "win1251": "cp1251", "koi8": "koi8-r", "koi8r": "koi8-r", "x-koi8-r": "koi8-r", "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8", "ks_c_5601-1987": "cp949",
    # GB2312 mail is nearly always GBK in practice (Outlook, Foxmail); gb18030 reads both and more.
    "gb2312": "gb18030", "iso-gb2312": "gb18030", "x-gb2312": "gb18030", "gb_2312-80": "gb18030", "cn-gb": "gb18030",
    "euc-cn": "gb18030", "x-euc-cn": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932", "ms_kanji": "cp932",
    "x-euc-jp": "euc-jp", "x-mac-cyrillic": "mac-cyrillic", "iso-8859-8-i": "iso-8859-8", "ansi_x3.4-1968": "ascii",
}
# Labels that say little: lazy defaults of mailers which often carry other 8-bit text.
_WEAK_CODECS = {"ascii", "latin-1", "iso8859-1", "cp1252", None}
_LATIN_CODECS = {"latin-1", "iso8859-1", "cp1252"}
_CYRILLIC_CODECS = ("cp1251", "koi8-r", "koi8-u")
# What an ISO-2022 text (7-bit, switched by escape sequences) starts its non-ASCII runs with.
_ISO2022_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b$(D", b"\x1b$A", b"\x1b$(C", b"\x1b$)C", b"\x1b(J", b"\x1b(I")
_RUSSIAN_LETTER = re.compile("[А-Яа-яЁёІіЇїЄєҐґ]")
_WORD_BYTES = re.compile(rb"[A-Za-z\x80-\xff]+")  # a word in any single-byte table
_WORDS = re.compile(r"\w+")
_C1_CONTROL = re.compile("[\x80-\x9f]")
_DETECT_SAMPLE_BYTES = 16_384  # charset-normalizer's cost grows with the sample; 16 KB tells any script apart


# Codecs Python knows that are no mail charset: escape decoders that make lone surrogates, and 'undefined',
# which fails on every byte whatever the error handler.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode", "palmos"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()[:64]
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None
    # bytes-to-bytes codecs (zlib, base64, rot13...) are no text encoding: `bytes.decode` refuses them
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text every database stores: no NUL (PostgreSQL refuses it), lone surrogates (UTF-8 cannot encode them)
    replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _LONE_SURROGATE.sub("\ufffd", text)


def _russian_shaped(sample: bytes) -> bool:
    """Whether the 8-bit bytes form whole words, as Russian in a single-byte table does.

    Western text has its accented letters inside words of ASCII letters (`Été`, `Grüße`); Russian in cp1251 or
    koi8-r is words made only of 8-bit bytes. Counting the two kinds of words tells them apart even in a
    three-word subject, where letter statistics say nothing.
    """
    whole = mixed = 0
    for word in _WORD_BYTES.findall(sample):
        high = sum(1 for b in word if b >= 0x80)
        if high == len(word) and high >= 2:
            whole += 1
        elif high:
            mixed += 1
    return whole >= 1 and whole >= mixed


def _cyrillic_reading(data: bytes) -> tuple[str, str] | None:
    """The cp1251/koi8-r/koi8-u reading of `data` if one of them reads as Russian (or Ukrainian) text, else None.

    In the right table nearly every 8-bit byte is a Cyrillic letter and most letters are lowercase; in the other
    table Russian turns mostly uppercase, and CJK or Western bytes read as Cyrillic leave symbols, box drawing
    and rare letters between them. The choice is made on a sample: counting the letters of a whole 30 MB part
    cost seconds and gigabytes.
    """
    sample = data[:_TEXT_SAMPLE_BYTES]
    high = sum(1 for b in sample if b >= 0x80)
    if not high or not _russian_shaped(sample):
        return None
    best: tuple[float, str, str] | None = None
    for codec in _CYRILLIC_CODECS:
        text = sample.decode(codec, errors="replace")
        letters = [c for c in text if c >= "\x80" and _RUSSIAN_LETTER.match(c)]
        if len(letters) < 0.9 * high:
            continue
        lower = sum(1 for c in letters if c.islower()) / len(letters)
        if lower >= 0.55 and (best is None or lower > best[0]):
            best = (lower, codec, text)
    if best is None:
        return None
    return best[1], (best[2] if len(data) <= _TEXT_SAMPLE_BYTES else data.decode(best[1], errors="replace"))


def _western_reading(data: bytes) -> str | None:
    """The windows-1252 reading of `data` if it reads as Western text (accents inside mostly-ASCII words)."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: not Western text
        return None
    sample = text[:_TEXT_SAMPLE_BYTES]
    letters = [c for c in sample if c.isalpha()]
    accented = sum(1 for c in letters if c >= "\x80")
    if not letters or accented >= 0.5 * len(letters) or _C1_CONTROL.search(sample):
        return None
    return text


def _detected_reading(data: bytes) -> str | None:
    """charset-normalizer's reading of `data` (CJK and every other script), judged on a sample."""
    sample = _cut_bytes(data, _DETECT_SAMPLE_BYTES)
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return None
    try:
        return data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return data.decode(best.encoding, errors="replace") if len(data) > len(sample) else None


def _iso2022(data: bytes, codec: str | None) -> str | None:
    """7-bit ISO-2022 text (Japanese phones and old mailers; Korean), declared or recognised by its escapes."""
    candidates = [codec] if codec and codec.startswith("iso2022") else []
    if any(e in data for e in _ISO2022_ESCAPES):
        candidates += ["iso2022_jp_2", "iso2022_kr"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode text bytes under their declared charset, repairing the usual lies; the result is `clean_text`.

    A declared charset that reads the bytes as text of its own kind is kept. It gives way only where its
    reading is not text: bytes it cannot decode (8-bit under US-ASCII, cp1251 under UTF-8), UTF-8 under a
    Latin or Cyrillic label (those tables read it as `Ã©`/`п≈п╢` mojibake), Russian under a Latin-1 label (the
    Latin-1 reading is words of accented letters only) and koi8-r under cp1251 or the other way round (the
    declared table reads it as mostly capitals and symbols). Undeclared text is detected: UTF-8, Russian,
    Western, then charset-normalizer for the rest (CJK).
    """
    return clean_text(_decode_bytes(data, declared))


def _decode_bytes(data: bytes, declared: str | None) -> str:
    if not data:
        return ""
    codec = _codec(declared)
    if data.isascii():
        if b"\x1b" in data:
            text = _iso2022(data, codec)
            if text is not None:
                return text
        if codec is not None and codec not in _WEAK_CODECS and codec != "utf-8":
            try:  # 7-bit charsets: UTF-7, UTF-16 of ASCII text
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                pass
        return data.decode("ascii")
    if codec in _WEAK_CODECS or codec == "utf-8" or codec in _CYRILLIC_CODECS:
        try:
            return data.decode("utf-8")  # valid 8-bit UTF-8 is practically never an accident
        except UnicodeDecodeError:
            pass
    if codec in _CYRILLIC_CODECS:
        guess = _cyrillic_reading(data)
        if guess is not None and guess[0] != codec and not (codec == "koi8-u" and guess[0] == "koi8-r"):
            return guess[1]  # koi8-r labelled as cp1251 or the other way round
        return data.decode(codec, errors="replace")
    if codec in _LATIN_CODECS:
        guess = _cyrillic_reading(data)
        if guess is not None:
            return guess[1]  # Russian mailers labelled cp1251 as Latin-1 for years
        return data.decode(codec, errors="replace")
    if codec is not None and codec not in _WEAK_CODECS and codec != "utf-8":
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass  # the label is wrong: detect
    guess = _cyrillic_reading(data)
    if guess is not None:
        return guess[1]
    western = _western_reading(data)
    if western is not None:
        return western
    detected = _detected_reading(data)
    if detected is not None:
        return detected
    return data.decode("cp1252", errors="replace")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", " ")


def decode_header_value(value: str | Header | None, *, max_chars: int = MAX_HEADER_CHARS) -> str:
    """A header value as text: RFC 2047 encoded words, raw 8-bit bytes, folding, all resolved.

    Only the first `max_chars` are decoded: `email.header.decode_header` joins adjacent encoded words
    quadratically (a 1 MB Subject of them took 20 s).
    """
    if value is None:
        return ""
    chunks: list[tuple[bytes | str, str | None]]
    raw = value if isinstance(value, Header) else _unfold(str(value)[:max_chars])
    try:
        chunks = decode_header(raw)
    except Exception:  # malformed encoded words: keep the raw text rather than fail
        chunks = [(str(raw), None)]
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            if any("\udc80" <= c <= "\udcff" for c in chunk):
                chunk = decode_bytes(chunk.encode("ascii", "surrogateescape"), charset)
            parts.append(chunk)
        else:
            parts.append(decode_bytes(chunk, charset))
    text = clean_text("".join(parts))
    return re.sub(r"\s+", " ", "".join(c for c in text if c == "\t" or unicodedata.category(c) != "Cc")).strip()


def _raw_header(msg: Message, name: str, *, tail: bool = False) -> str | None:
    """The header as it arrived (8-bit bytes kept as surrogates), not compat32's lossy Header object; at most
    MAX_HEADER_CHARS of it (the end of it with `tail`, where References keep the direct parent)."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            text = str(value) if not isinstance(value, Header) else value.encode()
            return text[-MAX_HEADER_CHARS:] if tail else text[:MAX_HEADER_CHARS]
    return None


def _header(msg: Message, name: str, *, tail: bool = False) -> str:
    return decode_header_value(_raw_header(msg, name, tail=tail))


# --- message ids and ticket numbers ----------------------------------------------------------------------

_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")


def normalize_message_id(value: str | None) -> str | None:
    """`<abc@host>` -> `abc@host`; None when there is no usable id."""
    if not value:
        return None
    found = _MSGID_RE.search(value)
    token = found.group(1) if found else value.strip().split()[0] if value.strip() else ""
    token = token.strip("<>")
    return token[:500] or None


def parse_message_ids(value: str | None) -> list[str]:
    """All Message-IDs of a References / In-Reply-To header, in order."""
    if not value:
        return []
    ids = _MSGID_RE.findall(value)
    if not ids:  # some mailers drop the angle brackets
        ids = [t for t in re.split(r"[\s,]+", value) if "@" in t]
    return [i.strip("<>")[:500] for i in ids if i.strip("<>")]


_TICKET_BRACKETED = re.compile(r"\[\s*#?\s*(T-\d{1,12})\s*\]", re.IGNORECASE)
_TICKET_BARE = re.compile(r"(?<![\w-])#?(T-\d{6,12})(?!\w)", re.IGNORECASE)


def ticket_number_in(subject: str | None) -> str | None:
    """`Re: Internet is down [T-000123]` -> `T-000123`."""
    if not subject:
        return None
    found = _TICKET_BRACKETED.search(subject) or _TICKET_BARE.search(subject)
    return found.group(1).upper() if found else None


# --- HTML to text ------------------------------------------------------------------------------------------

_SKIPPED_TAGS = {"script", "style", "head", "title", "noscript", "template", "svg", "math", "object", "embed",
                 "iframe", "applet", "frameset", "frame", "select", "button", "textarea"}
_BLOCK_TAGS = {"p", "div", "section", "article", "header", "footer", "aside", "nav", "main", "ul", "ol", "dl",
               "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "address", "form", "fieldset", "center", "figure", "figcaption", "caption", "hr", "body", "html"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source", "track", "param"}
# Containers of the quoted history: Gmail, Thunderbird, Yahoo, ProtonMail, Apple Mail, Yandex/Mail.ru.
_QUOTE_CLASSES = ("gmail_quote", "gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote",
                  "x_gmail_quote", "ms-outlook-mobile-reference-message", "zmail_extra")
# Outlook starts the history with one of these; everything after it is the quote.
_HISTORY_IDS = ("divrplyfwdmsg", "appendonsend", "x_divrplyfwdmsg", "mail-editor-reference-message-container")


class _TextExtractor(HTMLParser):
    """Text of an HTML body; with `strip_quotes`, the quoted history (blockquotes, the quote containers of
    the big clients, everything after Outlook's history marker) goes to `quoted` instead, except a container
    that holds a forwarded mail (its text starts with a forward marker), which stays where it is."""

    def __init__(self, *, strip_quotes: bool, forwarded: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.strip_quotes = strip_quotes
        self.forwarded = forwarded
        self.out: list[str] = []
        self.quoted: list[str] = []
        self._skip: list[Any] | None = None  # [tag, nesting depth] of a script/style/... being skipped
        self._quote: list[Any] | None = None  # [tag, nesting depth] of the quote container being read
        self._sink = self.out
        self._pre = 0

    def _is_quote(self, tag: str, attrs: dict[str, str]) -> bool:
        if not self.strip_quotes:
            return False
        if tag == "blockquote":
            return True
        classes = attrs.get("class", "").lower()
        return any(c in classes for c in _QUOTE_CLASSES)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip is not None:
            if tag == self._skip[0] and tag not in _VOID_TAGS:
                self._skip[1] += 1
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag in _SKIPPED_TAGS:
            if tag not in _VOID_TAGS:
                self._skip = [tag, 1]
            return
        if self._quote is not None:
            if tag == self._quote[0] and tag not in _VOID_TAGS:
                self._quote[1] += 1
        elif self.strip_quotes and values.get("id", "").lower() in _HISTORY_IDS:
            self._open_quote("", -1)  # Outlook: the rest of the body is the history (or the forwarded mail)
        elif self._is_quote(tag, values) and tag not in _VOID_TAGS:
            self._open_quote(tag, 1)
        self._format(tag)

    def _open_quote(self, tag: str, depth: int) -> None:
        self._quote = [tag, depth]
        self._sink = []

    def _close_quote(self) -> None:
        block = self._sink
        self._quote, self._sink = None, self.out
        text = "".join(block)
        first = next((ln.strip() for ln in text.replace("\xa0", " ").split("\n") if ln.strip()), "")
        if self.forwarded or _FORWARD_SEPARATOR.match(first):
            self.out.extend(block)  # a forwarded mail is what the customer sends us
        else:
            self.quoted.append(text)
            self.out.append("\n")

    def _format(self, tag: str) -> None:
        if tag == "br":
            self._sink.append("\n")
        elif tag == "li":
            self._sink.append("\n- ")
        elif tag in ("td", "th"):
            self._sink.append(" ")
        elif tag in _BLOCK_TAGS:
            self._sink.append("\n")
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            self.handle_starttag(tag, attrs)
        else:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip is not None:
            if tag == self._skip[0]:
                self._skip[1] -= 1
                if self._skip[1] <= 0:
                    self._skip = None
            return
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _BLOCK_TAGS:
            self._sink.append("\n")
        if self._quote is not None and tag == self._quote[0]:
            self._quote[1] -= 1
            if self._quote[1] <= 0:
                self._close_quote()

    def handle_data(self, data: str) -> None:
        if self._skip is not None:
            return
        self._sink.append(data if self._pre else re.sub(r"\s+", " ", data))

    def close(self) -> None:
        super().close()
        if self._quote is not None:
            self._close_quote()

    @staticmethod
    def _tidy(text: str) -> str:
        lines = [line.strip() for line in text.replace("\xa0", " ").split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    def text(self) -> str:
        return self._tidy("".join(self.out))

    def quoted_text(self) -> str:
        return "\n\n".join(t for t in (self._tidy(q) for q in self.quoted) if t)


_MAX_TAG_CHARS = 4000


def defuse_html(html: str) -> str:
    """`html` with every `<` that does not open a complete tag escaped, and overlong tags dropped.

    Python's HTMLParser backtracks on a `<` it cannot close: 12 KB of `<a ` took 6 s and 40 KB would take hours
    (CPython gh-135462). Here each `<` whose `>` does not come before the next `<` becomes text, so the parser
    only sees tags it matches at once. Linear: the next `>` is found once and reused while it lies ahead.
    """
    out: list[str] = []
    i, n = 0, len(html)
    gt = -2  # position of the next '>' at or after the current '<', -1 when there is none left
    while i < n:
        lt = html.find("<", i)
        if lt < 0:
            out.append(html[i:])
            break
        out.append(html[i:lt])
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            if end < 0:
                break  # an unclosed comment hides the rest, as in a browser
            out.append(html[lt:end + 3])
            i = end + 3
            continue
        if gt != -1 and gt <= lt:
            gt = html.find(">", lt + 1)
        after = html.find("<", lt + 1)
        complete = gt != -1 and (after < 0 or gt < after)
        if complete and html.startswith("<![", lt) and html[gt - 1] != "]":
            complete = False  # a marked section the parser would look for `]>` after, to the end
        if not complete:
            out.append("&lt;")
            i = lt + 1
        elif gt - lt > _MAX_TAG_CHARS:
            out.append(" ")  # a data: URL in an <img> says nothing to the reader
            i = gt + 1
        else:
            out.append(html[lt:gt + 1])
            i = gt + 1
    return "".join(out)


def html_to_text(html: str, *, strip_quotes: bool = True) -> str:
    """Readable text of an HTML body: no scripts, styles or markup; the quoted history dropped if asked."""
    return split_html(html)[0] if strip_quotes else _extract_html(html, strip_quotes=False)[0]


def _extract_html(html: str, *, strip_quotes: bool, forwarded: bool = False) -> tuple[str, str]:
    parser = _TextExtractor(strip_quotes=strip_quotes, forwarded=forwarded)
    html = defuse_html(html[:MAX_HTML_CHARS])
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; anything else still must not lose the customer's words
        return re.sub(r"<[^>]*>", " ", html).strip(), ""
    return parser.text(), parser.quoted_text()


def split_html(html: str, *, forwarded: bool = False) -> tuple[str, str]:
    """(what the customer wrote now with any forwarded content, the quoted history) of an HTML body: the quote
    containers first, then `split_quoted_text` on the rest (clients that mark the history with text only)."""
    text, quoted = _extract_html(html, strip_quotes=True, forwarded=forwarded)
    text, more = split_quoted_text(text, forwarded=forwarded)
    if not text.strip() and quoted:  # nothing but a quote: keep it as it was
        return _extract_html(html, strip_quotes=False)[0], ""
    return text, "\n\n".join(q for q in (more, quoted) if q)


# --- quoted history in text ---------------------------------------------------------------------------------
#
# A mail's text is split three ways: what the customer wrote now, forwarded content (kept with it: for a support
# desk the forward is usually the appeal), and the quoted history of the conversation (returned apart, so the
# console can fold it away). The history starts at the first marker a mail client writes above it; the words
# below are the same in every client, only translated, so the patterns list the translations.

_VERBS = (r"wrote|sent|schrieb|geschrieben|geschreven|a écrit|escribió|ha escrito|scrisse|ha scritto|schreef|escreveu|"
          r"napisał\(a\)|napisała|napisał|skrev|kirjoitti|napsal\(a\)|napsala|napsal|írta|yazdı|"
          r"пишет|написал\(а\)|написала|написал|написали|писал\(а\)|писала|писал")
# Words an attribution line opens with: "On", "Am", "Le", "El", "Il giorno", "Op", "Em", "W dniu", "Den", "På"...
_OPENERS = r"on|am|le|el|il giorno|il|op|em|w dniu|dnia|den|på|dne|в|во"
_DATE = (r"(\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}\.?\s+[^\W\d_]{3,}\.?,?\s+\d{4}|"
         r"[^\W\d_]{3,}\.?\s+\d{1,2},?\s+\d{4})")
# Each attribution shape is tested as a few linear searches, never one pattern with two unbounded-ish wildcards:
# `^.{0,300}\d.{0,300}wrote:$` backtracked 300x300 steps per line (a hostile 400 KB text of such lines took 36 s).
_OPENER = re.compile(rf"^[-\s]*({_OPENERS})\s", re.IGNORECASE)
_VERB = re.compile(rf"\b({_VERBS})(?!\w)", re.IGNORECASE)
_VERB_COLON_END = re.compile(rf"\s({_VERBS})\s*:$", re.IGNORECASE)
_VERB_DASHES_END = re.compile(rf"\s({_VERBS})\s*:?\s*-{{2,}}$", re.IGNORECASE)
_DATE_RE = re.compile(_DATE.replace("{3,}", "{3,12}"), re.IGNORECASE)
_TIME = re.compile(r"\d{1,2}[:.]\d{2}")
_OLD_GMAIL = re.compile(r"^\d{4}[/-]\d{1,2}[/-]\d{1,2}\s")
_ANGLE_ADDRESS_END = re.compile(r"<[^<>\s]{1,200}@[^<>\s]{1,200}>:?$")
_INLINE_ON = re.compile(r"(?:^|[\s-])On\s")
_MAX_MARKER_CHARS = 400  # real attributions and separators are far shorter; longer lines are never looked at


def _is_attribution(line: str) -> bool:
    """Whether one (joined) line is an attribution: `On <date>, <person> wrote:` and its translations, `<date>,
    <person> пишет:`, Yandex/Mail.ru/Gmail-RU `<date> <time>, <person> <address>:`, `---- X wrote ----`, and
    Gmail's old `2011/4/7 Name <address>`."""
    if len(line) > 2 * _MAX_MARKER_CHARS:
        return False
    if _OPENER.match(line) and line.endswith((":", "--")) and _VERB.search(line):
        return True  # On ... wrote:   Le ... a écrit :   Am ... schrieb <person>:   ------On ... wrote-----
    if line.endswith(":") and _VERB_COLON_END.search(line) and any(c.isdigit() or c == "@" for c in line):
        return True  # 30.11.2026 09:00, Поддержка пишет:   15. marts 2017 kl. 11.00 skrev <person>:
    if line.endswith(":") and ("@" in line or "<" in line) and _DATE_RE.search(line) and _TIME.search(line):
        return True  # пн, 23 нояб. 2026 г. в 10:00, Иван <ivan@example.ru>:   (no verb at all)
    if line.startswith("--") and line.endswith("--") and _VERB_DASHES_END.search(line.rstrip("-").rstrip() + " --"):
        return True  # ---- Support wrote ----
    return bool(_OLD_GMAIL.match(line) and _ANGLE_ADDRESS_END.search(line))


def _inline_attribution(line: str) -> str | None:
    """The customer's text before an English attribution on the same line (`reply On ..., bob wrote:`), or None."""
    if len(line) > 2 * _MAX_MARKER_CHARS or not line.endswith(":") or not _VERB_COLON_END.search(line):
        return None
    for found in _INLINE_ON.finditer(line):
        attribution = line[found.start():].lstrip(" -")
        own = line[:found.start()].rstrip(" -")
        if own and any(c.isdigit() for c in attribution) and len(attribution) <= _MAX_MARKER_CHARS:
            return own
    return None


# The start of a line that may go on over the next lines as an attribution (wrapped by the mail client).
_ATTRIBUTION_HEAD = re.compile(rf"^[-\s]*(({_OPENERS})\s|\d|[^\W\d_]{{2,3}}\.?,\s+\d)", re.IGNORECASE)
_ORIGINAL = (r"original message|reply message|original e-?mail message|исходное сообщение|ursprüngliche nachricht|"
             r"antwort nachricht|originalnachricht|oprindelig meddelelse|message d'origine|message original|"
             r"mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande|opprinnelig melding|"
             r"wiadomość oryginalna|oryginalna wiadomość|mensagem original|původní zpráva|alkuperäinen viesti|"
             r"eredeti üzenet|orijinal ileti")
_FORWARDED = (r"forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transféré|mensaje reenviado|"
              r"messaggio inoltrato|doorgestuurd bericht|videresendt meddelelse|vidarebefordrat meddelande|"
              r"videresendt melding|przekazana wiadomość|wiadomość przekazana|mensagem encaminhada|"
              r"přeposlaná zpráva|välitetty viesti|továbbított üzenet|пересылаемое сообщение|"
              r"пересланное сообщение|перенаправленное сообщение|переадресованное сообщение")
_ORIGINAL_SEPARATOR = re.compile(rf"^[-=\s]*-{{2,}}\s*({_ORIGINAL})\s*-{{2,}}[-=\s]*$", re.IGNORECASE)
_FORWARD_SEPARATOR = re.compile(
    rf"^[-=_\s]*({_FORWARDED})[-=_\s:]*$|^(begin forwarded message|начало переадресованного сообщения|"
    rf"anfang der weitergeleiteten nachricht|début du message réexpédié|inicio del mensaje reenviado)\s*:$",
    re.IGNORECASE)
_LONG_RULE = re.compile(r"^_{20,}$")
_BARE_RULE = re.compile(r"^([-_=*]\s?){3,}$")
# Header blocks (Outlook and every client that copies its shape): field names in the languages they are sent in.
_FIELD_KINDS = {
    "from": r"from|von|de|от|od|fra|från|van|da|mittente|lähettäjä|feladó|kimden",
    "date": r"sent|date|gesendet|datum|envoyé|enviado|enviada em|enviada|data|inviato|verzonden|sendt|skickat|"
            r"отправлено|дата|wysłano|odesláno|lähetetty|elküldve|gönderildi",
    "to": r"to|an|à|a|para|aan|til|till|кому|do|komu|per|címzett|kime",
    "cc": r"cc|копия|kopie|kopia|cci",
    "subject": r"subject|betreff|objet|asunto|assunto|oggetto|onderwerp|emne|ämne|тема|temat|předmět|aihe|tárgy|konu",
    "reply-to": r"reply-to|antwort an|ответить",
}
_FIELD = re.compile(r"^\s*\*?\s*(?:" + "|".join(f"(?P<{k.replace('-', '_')}>{v})" for k, v in _FIELD_KINDS.items())
                    + r")\s*\*?\s*:", re.IGNORECASE)
_INLINE_FIELDS = re.compile(r"\s(from|to|subject|sent|date|cc):\s", re.IGNORECASE)
_SIGNATURE = re.compile(r"^--\s?$")
_DEVICE_LINE = re.compile(
    r"^(sent from my [^,;!?]{1,40}|sent from (mail|yahoo mail|outlook|gmail|samsung mobile)( for [\w ]{1,20})?|"
    r"sent (with|via) [\w .]{1,30}|get outlook for (ios|android)|"
    r"отправлено (с|со|из) [^,;!?]{1,50}|"
    r"von meinem [\w ]{1,30} gesendet|envoyé de mon [\w ]{1,30}|enviado desde mi [\w ]{1,30}|"
    r"inviato da(l mio)? [\w ]{1,30}|verzonden (vanaf|met) (mijn )?[\w ]{1,30})\.?$",
    re.IGNORECASE)
_MAX_MARKER_LINES = 3


@dataclass(frozen=True)
class _Marker:
    kind: str  # "reply" (the history starts here) or "forward" (forwarded content starts here)
    lines: int  # how many lines the marker takes
    own: str | None = None  # text of the customer's before the marker on the same line


def _field_kind(line: str) -> str | None:
    found = _FIELD.match(line)
    if found is None:
        return None
    return next(k.replace("_", "-") for k, v in found.groupdict().items() if v is not None)


def _header_block(lines: Sequence[str], i: int) -> bool:
    """A From/Date line followed by other header fields: the header block of a quoted or forwarded mail."""
    first = _field_kind(lines[i])
    if first not in ("from", "date"):
        return False
    if len({m.lower() for m in _INLINE_FIELDS.findall(lines[i])}) >= 2:
        return True  # `Date: ... From: ... To: ... Subject: ...` on one line
    kinds, has_address, loose = {first}, "@" in lines[i], 0
    for line in lines[i + 1:i + 7]:
        if not line.strip():
            break
        kind = _field_kind(line)
        if kind is None:
            loose += 1  # a field value the client wrapped (`[mailto:` / `bob@example.com]`)
            if loose > 1:
                break
            has_address = has_address or "@" in line
            continue
        kinds.add(kind)
        has_address = has_address or "@" in line
    return len(kinds) >= 3 or (len(kinds) == 2 and has_address)


def _attribution(lines: Sequence[str], i: int) -> int:
    """How many lines (1-3) an attribution starting at line i takes, or 0."""
    line = lines[i].strip()
    if _is_attribution(line):
        return 1
    if not _ATTRIBUTION_HEAD.match(line):
        return 0
    joined = line
    for extra in range(1, _MAX_MARKER_LINES):
        if i + extra >= len(lines) or not lines[i + extra].strip():
            return 0
        nxt = lines[i + extra].strip()
        if len(nxt) > _MAX_MARKER_CHARS:
            return 0
        # a wrapped address (`<` / `416ffd...@example.com>`) joins without a space
        joined = f"{joined}{nxt}" if joined.endswith(("<", "-", ".")) and "@" in nxt else f"{joined} {nxt}"
        if _is_attribution(joined):
            return extra + 1
    return 0


def _marker_at(lines: Sequence[str], i: int) -> _Marker | None:
    line = lines[i].strip().strip("*").strip()
    if not line or line.startswith(">") or len(line) > _MAX_MARKER_CHARS:
        return None
    if _FORWARD_SEPARATOR.match(line):
        return _Marker("forward", 1)
    if _ORIGINAL_SEPARATOR.match(line) or _LONG_RULE.match(line):
        return _Marker("reply", 1)
    if _BARE_RULE.match(line):
        block = next((j for j in range(i + 1, min(i + 3, len(lines))) if lines[j].strip()), None)
        return _Marker("reply", 1) if block is not None and _header_block(lines, block) else None
    if _header_block(lines, i):
        return _Marker("reply", 1)
    own = _inline_attribution(line)
    if own is not None:
        following = next((ln for ln in lines[i + 1:i + 3] if ln.strip()), "")
        if following.lstrip().startswith(">"):
            return _Marker("reply", 1, own=own)
    taken = _attribution(lines, i)
    return _Marker("reply", taken) if taken else None


def _is_quote_line(line: str) -> bool:
    return line.lstrip().startswith(">")


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _without_tail(lines: list[str]) -> list[str]:
    """The customer's lines without the `-- ` signature, "Sent from my iPhone" and a bare rule at the end."""
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line.rstrip()) and i > 0:
            lines = lines[:i]
            break
    lines = _trim(lines)
    while lines and (_DEVICE_LINE.match(lines[-1].strip()) or _BARE_RULE.match(lines[-1].strip())):
        lines = _trim(lines[:-1])
    return lines


def split_quoted_text(text: str, *, forwarded: bool = False) -> tuple[str, str]:
    """(what the customer wrote now with any forwarded content, the quoted history) of a plain-text body.

    The history starts at the first attribution ("On ... wrote:", "23.11.2026, Иван <...>:"), separator
    ("-----Original Message-----") or header block ("From:/Sent:/To:/Subject:" in a dozen languages). Text the
    customer wrote below a quote (bottom posting) is theirs, and so are `>` lines between their own lines (a
    pasted shell prompt, answers inline): only the `>` block at the end is history. A forward marker before any
    history keeps everything from it on: forwarded content is the appeal. With `forwarded` (the subject says
    Fwd) a header block or separator starts forwarded content too. A text that is nothing but a quote stays as
    it was. Only the start of a huge text is looked at (a few regular expressions per line: 5 MB of '> '
    lines took 10 s).
    """
    text = text[:2 * MAX_TEXT_CHARS]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept, quoted = lines, []
    for i in range(len(lines)):
        marker = _marker_at(lines, i)
        if marker is None:
            continue
        if marker.kind == "forward" or forwarded:
            break  # forwarded content, and whatever it quotes, is what the customer sends us
        kept, quoted = lines[:i] + ([marker.own] if marker.own else []), lines[i:]
        j = i + marker.lines
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and _is_quote_line(lines[j]):
            while j < len(lines) and (_is_quote_line(lines[j]) or not lines[j].strip()):
                j += 1
            below = _trim(lines[j:])
            # The customer's text below the quote ends the mail; a `>` line after it means the quote went on
            # (a link the client wrapped out of the quote).
            if below and not _is_quote_line(below[-1]) and not any(_marker_at(below, k) for k in range(len(below))):
                kept, quoted = [*kept, "", *below], lines[i:j]  # the customer wrote below the quote
        break
    kept = _trim(list(kept))
    end = len(kept)
    while end > 0 and (_is_quote_line(kept[end - 1]) or not kept[end - 1].strip()):
        end -= 1
    if sum(1 for ln in kept[end:] if ln.strip()) >= 2:  # one `>` line at the end may be a prompt; two are a quote
        kept, quoted = kept[:end], kept[end:] + quoted
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(ln.rstrip() for ln in _without_tail(kept))).strip()
    if not result:
        return text.strip(), ""
    return result, "\n".join(_trim([ln.rstrip() for ln in quoted]))


def strip_quoted_text(text: str, *, forwarded: bool = False) -> str:
    """The customer's own words (and forwarded content): `split_quoted_text` without the history."""
    return split_quoted_text(text, forwarded=forwarded)[0]


# --- auto-replies and bounces -------------------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(auto:|automatic reply|autoreply|auto-reply|auto reply|out of (the )?office|abwesenheitsnotiz|"
    r"undeliverable:|undelivered mail|delivery status notification|mail delivery failed|"
    r"returned mail|автоматический ответ|автоответ|недоставленное сообщение|отчет о доставке)",
    re.IGNORECASE,
)
_NOREPLY_LOCALPARTS = {"noreply", "no-reply", "donotreply", "do-not-reply"}
_ROBOT_LOCALPARTS = {"mailer-daemon", "postmaster", "bounce", "bounces", "mail-daemon", *_NOREPLY_LOCALPARTS}


def auto_reply_reason(msg: Message, sender: str | None) -> str | None:
    """Why this message must never be answered automatically (RFC 3834, DSNs, lists), or None."""
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto[:50]}"
    precedence = _header(msg, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply", "auto-reply"):
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder", "X-Autogenerated"):
        if _raw_header(msg, name) is not None:
            return f"{name} header"
    if msg.get_content_type() == "multipart/report":
        return "delivery/disposition report"
    if _raw_header(msg, "X-Failed-Recipients") is not None:
        return "bounce (X-Failed-Recipients)"
    if _header(msg, "Return-Path").replace(" ", "") == "<>":
        return "bounce (null return path)"
    if sender and sender.split("@", 1)[0].lower() in _ROBOT_LOCALPARTS:
        return f"robot sender {sender.split('@', 1)[0].lower()}"
    if _raw_header(msg, "List-Id") is not None or _raw_header(msg, "List-Unsubscribe") is not None:
        return "mailing list"
    if _AUTO_SUBJECT.match(_header(msg, "Subject")):
        return "auto-reply subject"
    return None


# --- attachments --------------------------------------------------------------------------------------------

def check_attachment(filename: str, content_type: str, data: bytes, policy: AttachmentPolicy,
                     index: int = 0) -> tuple[str, str | None]:
    """(the content type to record, the reason to refuse the file or None), by the attachment policy."""
    verdict = policy.check(filename, content_type, len(data), index=index, data=data)
    return verdict.content_type, verdict.refusal.reason if verdict.refusal is not None else None


# --- the message ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    rejected: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    synthetic_id: bool
    sender_email: str
    sender_name: str | None
    subject: str
    text: str
    html: str | None
    references: tuple[str, ...]
    ticket_number_hint: str | None
    auto_reply_reason: str | None
    language_hint: str | None
    date: datetime | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    attachments: tuple[ParsedAttachment, ...] = ()
    bounce: dict[str, str] = field(default_factory=dict)
    defects: tuple[str, ...] = ()
    # The quoted history of the conversation, apart from `text` (what the customer wrote now, with any
    # forwarded content): the console folds it away and shows it on demand.
    quoted: str = ""


def _address(value: str | None) -> tuple[str | None, str | None]:
    """(display name, lower-cased addr-spec) of a From-like header."""
    if not value:
        return None, None
    name, addr = email.utils.parseaddr(_unfold(value))
    addr = decode_header_value(addr).strip().strip("<>").lower()
    if "=?" in addr or not re.fullmatch(r"[^@\s<>]{1,200}@[^@\s<>]{1,255}", addr):
        # "=?": an encoded word that decoded to another one; EmailMessage would decode that in our reply's To
        found = re.search(r"(?<![\w.+'=?-])\w[\w.+'=-]{0,199}@[\w-]+(\.[\w-]+)+", decode_header_value(value))
        addr = found.group(0).lower() if found else ""
    display = decode_header_value(name) if name else None
    return (display or None), (addr or None)


def _addresses(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(a.lower() for _n, a in email.utils.getaddresses([_unfold(value)]) if "@" in a)[:50]


_FORWARD_SUBJECT = re.compile(r"^\s*(\[[^\]]{0,80}\]\s*)?(fwd?|wg|tr|rv|enc|doorst|pd|vs|vb|пересл|перес)\s*:",
                              re.IGNORECASE)
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
               "image/bmp": ".bmp", "image/tiff": ".tif", "image/svg+xml": ".svg", "image/heic": ".heic"}


def _param(part: Message, header: str, name: str) -> str:
    """A parameter of Content-Type/-Disposition as text, read from the header as it arrived.

    compat32 hands a header with raw 8-bit bytes over as a `Header` object or with the bytes as U+FFFD;
    decoding the bytes first (their charset guessed like any undeclared text) and parsing the parameters of
    that keeps a `filename="счёт.pdf"` written in UTF-8 or cp1251. RFC 2231 and RFC 2047 forms decode too.
    """
    raw = _raw_header(part, header)
    if raw is None:
        return ""
    if any("\udc80" <= c <= "\udcff" for c in raw):
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"), None)
    probe = Message()
    probe[header] = _unfold(raw)
    value = probe.get_param(name, header=header)
    if isinstance(value, tuple):
        # RFC 2231: percent-escaped bytes in a charset; text that arrived as raw 8-bit is decoded already
        value = value[2] if any(c > "\xff" for c in value[2]) else \
            email.utils.collapse_rfc2231_value(value, fallback_charset="utf-8")
    return decode_header_value(value) if isinstance(value, str) else ""


def _attachment_name(part: Message, ctype: str) -> str:
    """The file name of a part; an inline image without one is named from its Content-ID and type."""
    name = _param(part, "Content-Disposition", "filename") or _param(part, "Content-Type", "name")
    if name:
        return name
    if ctype == "message/rfc822":
        return "message.eml"
    content_id = (normalize_message_id(_header(part, "Content-ID")) or "").split("@", 1)[0]
    if content_id and part.get_content_maintype() == "image":
        stem = re.sub(r"[^\w.-]+", "_", content_id)[:80].strip("._") or "image"
        extension = _EXTENSIONS.get(ctype, "")
        return stem if extension and stem.lower().endswith(extension) else stem + extension
    return ""


def _is_attachment(part: Message) -> bool:
    disposition = (_raw_header(part, "Content-Disposition") or "").split(";", 1)[0].strip().lower()
    if disposition == "attachment":
        return True
    if _param(part, "Content-Disposition", "filename") or _param(part, "Content-Type", "name"):
        return True
    return part.get_content_maintype() not in ("text", "multipart")


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    """Leaf parts, without descending into attached messages or DSN field blocks."""
    if depth > 30:
        return
    if part.get_content_maintype() == "message":
        yield part
        return
    if part.is_multipart():
        for sub in _subparts(part):
            yield from _leaves(sub, depth + 1)
        return
    yield part


def _subparts(part: Message) -> list[Message]:
    """The parts of a multipart or message part; [] for a leaf.

    Never `get_payload()` on a leaf: it decodes 8-bit text under the declared charset and lets that codec's
    errors out (charset=undefined raised UnicodeError).
    """
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _part_bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = _subparts(part)
        if inner:
            return inner[0].as_bytes(policy=compat32)
        return part.as_bytes(policy=compat32).split(b"\n\n", 1)[-1]
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _cut_bytes(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes, not ending inside a UTF-8 sequence (a cut character would turn the guess away
    from UTF-8)."""
    if len(data) <= limit:
        return data
    end = limit
    while end > limit - 3 and 0x80 <= data[end] < 0xC0:
        end -= 1
    return data[:end]


def _bounce_details(msg: Message) -> tuple[dict[str, str], list[str]]:
    """For a DSN: the failed recipient, status and diagnostic, and the Message-ID of the mail that bounced."""
    details: dict[str, str] = {}
    references: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _subparts(part):
                for key, name in (("recipient", "Final-Recipient"), ("recipient", "Original-Recipient"),
                                  ("action", "Action"), ("status", "Status"),
                                  ("diagnostic", "Diagnostic-Code")):
                    value = decode_header_value(block.get(name))
                    if value and key not in details:
                        details[key] = value.split(";", 1)[-1].strip()[:300]
        elif ctype in ("text/rfc822-headers", "message/rfc822", "message/global-headers"):
            parsed = _subparts(part) if ctype == "message/rfc822" else []
            if parsed:
                inner: Message = parsed[0]
            else:
                inner = BytesHeaderParser(policy=compat32).parsebytes(_part_bytes(part))
            original = normalize_message_id(decode_header_value(inner.get("Message-ID")))
            if original and original not in references:
                references.append(original)
    failed = _raw_header(msg, "X-Failed-Recipients")
    if "recipient" not in details and failed:
        details["recipient"] = decode_header_value(failed).split(",")[0].strip()
    return details, references


def _synthetic_id(msg: Message, raw: bytes) -> str:
    """A stable id for mail without a Message-ID: the same mail redelivered hashes the same."""
    digest = hashlib.sha256()
    for name in ("From", "To", "Date", "Subject"):
        digest.update(name.encode() + b":" + _header(msg, name).encode() + b"\n")
    body = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)
    digest.update(body[1] if len(body) > 1 else body[0])
    return f"sha256-{digest.hexdigest()[:48]}@switchboard.invalid"


def _language(msg: Message, text: str) -> str | None:
    declared = _header(msg, "Content-Language").split(",")[0].strip()[:2].lower()
    if declared.isalpha() and len(declared) == 2:
        return declared
    letters = [c for c in text[:2000] if c.isalpha()]
    if letters and sum(1 for c in letters if "\u0400" <= c <= "\u04ff") > 0.3 * len(letters):
        return "ru"
    return None


def _date(msg: Message) -> datetime | None:
    value = _header(msg, "Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_CONTAINER_HEADER = re.compile(rb"^content-type[ \t]*:\s*(multipart|message)/", re.IGNORECASE | re.MULTILINE)
_PARAM_HEADER = re.compile(rb"^content-(type|disposition)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_NEXT_FIELD_LINE = re.compile(rb"\n(?![ \t])")


def _check_structure(raw: bytes) -> None:
    """Refuse, before Python's email package sees it, mail whose structure would cost it unbounded work.

    Every container (nested multipart, attached message) needs its own Content-Type line, so counting those
    lines bounds the nesting depth the package recurses into (it crashed at ~500-1,000 levels). Parameters
    of Content-Type/-Disposition are parsed quadratically (800 KB of them took 24 s).
    """
    containers = sum(1 for _ in itertools.islice(_CONTAINER_HEADER.finditer(raw), MAX_MIME_CONTAINERS + 1))
    if containers > MAX_MIME_CONTAINERS:
        raise UnparseableEmail(f"more than {MAX_MIME_CONTAINERS} nested MIME containers (multipart/message parts)")
    for found in _PARAM_HEADER.finditer(raw):
        end = _NEXT_FIELD_LINE.search(raw, found.end(), found.start() + MAX_PARAM_HEADER_BYTES + 2)
        if end is None and len(raw) - found.start() > MAX_PARAM_HEADER_BYTES:
            name = found.group(0).decode("ascii", "replace").rstrip(": \t")
            raise UnparseableEmail(f"a {name} header over {MAX_PARAM_HEADER_BYTES} bytes")


def parse_email(raw: bytes, policy: AttachmentPolicy | None = None) -> ParsedEmail:
    """Parse raw RFC 5322 bytes; the work is bounded (sizes, parts, nesting) and every text is `clean_text`.

    Raises:
        UnparseableEmail: there is no message here, no sender to attribute it to, or a structure past the
            bounds above (the only exception: the reader quarantines the mail with its message).
    """
    policy = policy or AttachmentPolicy(max_bytes=DEFAULT_MAX_ATTACHMENT_BYTES)
    if not raw or not raw.strip():
        raise UnparseableEmail("empty message")
    _check_structure(raw)
    try:
        return _parse(raw, policy)
    except RecursionError as exc:  # a structure _check_structure did not foresee; never a crash of the reader
        raise UnparseableEmail("MIME structure nested too deep") from exc


def _body_text(plain: str, html: str | None, *, forwarded: bool) -> tuple[str, str]:
    """(text, quoted history) of the richer of the plain and HTML bodies.

    Mailers send a plain alternative that is a stub of the HTML ("gate Service" for a whole invoice): the
    plain text wins unless the HTML says more than twice as many words.
    """
    plain_split = split_quoted_text(plain, forwarded=forwarded) if plain.strip() else None
    if html is None:
        return plain_split or ("", "")
    html_split = split_html(html, forwarded=forwarded)
    if plain_split is None or len(_WORDS.findall(html_split[0])) > 2 * len(_WORDS.findall(plain_split[0])):
        return html_split
    return plain_split


_HEADER_FIELD_LINE = re.compile(rb"^[!-9;-~]{1,100}[ \t]*:")


def _repair_headers(raw: bytes) -> tuple[bytes, list[str]]:
    """The raw mail with a broken header block mended, and what was mended.

    Python's parser ends the headers at the first line that is neither a field nor a continuation, so a mail
    relayed with a folded line that lost its leading whitespace (Exchange) arrives without From, and one that a
    client saved with a `---- Original email message ----` line above its headers has no headers at all.
    Lines before the first field are dropped; a line between two fields is a continuation of the field above.
    A line after the last field stays where it is: it is the body of a mail without the blank line.
    """
    head_end = len(raw)
    for separator in (b"\r\n\r\n", b"\n\n"):
        found = raw.find(separator)
        if 0 <= found < head_end:
            head_end = found
    lines = raw[:head_end].split(b"\n")
    if len(lines) > 1000 or all(_HEADER_FIELD_LINE.match(ln) or ln[:1] in (b" ", b"\t") for ln in lines):
        return raw, []
    fields = [i for i, ln in enumerate(lines) if _HEADER_FIELD_LINE.match(ln)]
    if not fields:
        return raw, []
    repairs: list[str] = []
    first = 0 if lines[0].startswith(b"From ") else fields[0]  # an mbox From_ line is Python's to handle
    if first:
        repairs.append("TextBeforeHeadersDropped")
    mended = lines[:1] if lines[0].startswith(b"From ") else []
    for i in range(first if not mended else 1, len(lines)):
        line = lines[i]
        if i > fields[-1] or _HEADER_FIELD_LINE.match(line) or line[:1] in (b" ", b"\t") or i < fields[0]:
            mended.append(line)
        else:
            mended.append(b" " + line)
            if "HeaderContinuationWithoutWhitespace" not in repairs:
                repairs.append("HeaderContinuationWithoutWhitespace")
    return b"\n".join(mended) + raw[head_end:], repairs


def _parse(raw: bytes, policy: AttachmentPolicy) -> ParsedEmail:
    raw, repairs = _repair_headers(raw)
    msg = email.message_from_bytes(raw, policy=compat32)
    if not msg.keys():
        raise UnparseableEmail("no headers: not an email message")
    sender_name, sender = _address(_raw_header(msg, "From"))
    if sender is None:
        _n, sender = _address(_raw_header(msg, "Sender"))
    if sender is None or sender.split("@", 1)[0] in _NOREPLY_LOCALPARTS:
        # Web forms and ticketing relays send as noreply@ with the person in Reply-To: answer the person.
        reply_name, reply_to = _address(_raw_header(msg, "Reply-To"))
        if reply_to is not None and reply_to.split("@", 1)[0] not in _ROBOT_LOCALPARTS:
            sender_name, sender = reply_name, reply_to
    bounce: dict[str, str] = {}
    bounce_refs: list[str] = []
    if msg.get_content_type() == "multipart/report":
        bounce, bounce_refs = _bounce_details(msg)
    reason = auto_reply_reason(msg, sender)
    if bounce.get("recipient") and "@" in bounce["recipient"] and (
            sender is None or sender.split("@", 1)[0] in _ROBOT_LOCALPARTS):
        # The bounce belongs to the conversation with the customer whose address failed.
        sender, sender_name = bounce["recipient"].lower().strip("<>"), None
    if sender is None:
        raise UnparseableEmail("no sender address (From/Sender missing or invalid)")

    plain: list[str] = []
    html: list[str] = []
    attachments: list[ParsedAttachment] = []
    leaves = list(itertools.islice(_leaves(msg), MAX_PARTS + 1))
    if len(leaves) > MAX_PARTS:
        raise UnparseableEmail(f"more than {MAX_PARTS} MIME parts")
    decoded = 0
    for part in leaves:
        ctype = part.get_content_type()
        if part.get_content_maintype() == "multipart":
            ctype = "text/plain"  # a multipart without its boundary lines: the body is the sender's text
        if not _is_attachment(part) and ctype in ("text/plain", "text/html"):
            data = _part_bytes(part)
            decoded += len(data)
            if decoded > MAX_DECODED_BYTES:
                raise UnparseableEmail(f"decoded content over {MAX_DECODED_BYTES} bytes")
            limit = 4 * (MAX_TEXT_CHARS if ctype == "text/plain" else MAX_HTML_CHARS)
            (plain if ctype == "text/plain" else html).append(
                decode_bytes(_cut_bytes(data, limit), part.get_content_charset()))
            continue
        if ctype in ("message/delivery-status", "text/rfc822-headers", "message/global-delivery-status"):
            continue  # summarised in `bounce`
        if part.is_multipart() and part.get_content_maintype() != "message":
            continue
        filename = safe_filename(_attachment_name(part, ctype), ctype)
        data = _part_bytes(part)
        decoded += len(data)
        if decoded > MAX_DECODED_BYTES:
            raise UnparseableEmail(f"decoded content over {MAX_DECODED_BYTES} bytes")
        recorded_type, rejected = check_attachment(filename, ctype, data, policy, len(attachments))
        inline = ((_raw_header(part, "Content-Disposition") or "").lower().startswith("inline")
                  or _raw_header(part, "Content-ID") is not None)
        attachments.append(ParsedAttachment(filename=filename, content_type=recorded_type, data=data,
                                            rejected=rejected, inline=inline))

    html_body = "\n".join(h for h in html if h.strip())[:MAX_HTML_CHARS] or None
    plain_body = "\n".join(p for p in plain if p.strip())
    forwarded = _FORWARD_SUBJECT.match(_header(msg, "Subject")) is not None
    text, quoted = _body_text(plain_body, html_body, forwarded=forwarded)
    message_id = normalize_message_id(_header(msg, "Message-ID"))
    synthetic = message_id is None
    if message_id is None:
        message_id = _synthetic_id(msg, raw)

    references: list[str] = []
    for ref in [*parse_message_ids(_header(msg, "References", tail=True)),
                *parse_message_ids(_header(msg, "In-Reply-To")), *bounce_refs]:
        if ref != message_id:
            if ref in references:
                references.remove(ref)
            references.append(ref)  # the direct parent last: core looks at the newest references
    subject = _header(msg, "Subject")
    references = [clean_text(r) for r in references]
    return ParsedEmail(
        message_id=clean_text(message_id), synthetic_id=synthetic, sender_email=clean_text(sender),
        sender_name=clean_text(sender_name) if sender_name else None,
        subject=subject, text=text[:MAX_TEXT_CHARS], html=html_body[:MAX_HTML_CHARS] if html_body else None,
        references=tuple(references[-MAX_REFERENCES:]), ticket_number_hint=ticket_number_in(subject),
        auto_reply_reason=reason, language_hint=_language(msg, text), date=_date(msg),
        to=tuple(map(clean_text, _addresses(_raw_header(msg, "To")))),
        cc=tuple(map(clean_text, _addresses(_raw_header(msg, "Cc")))),
        attachments=tuple(attachments), bounce={k: clean_text(v) for k, v in bounce.items()},
        defects=tuple(sorted({type(d).__name__ for p in msg.walk() for d in p.defects} | set(repairs))),
        quoted=quoted[:MAX_QUOTED_CHARS],
    )
