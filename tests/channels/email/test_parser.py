"""The email parser against a corpus of real-world-shaped messages, and its pure helpers one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.email.inbound import build_inbound, parse_to_inbound, policy_of
from channels.email.parser import (
    UnparseableEmail,
    check_attachment,
    decode_bytes,
    decode_header_value,
    html_to_text,
    normalize_message_id,
    parse_email,
    parse_message_ids,
    safe_filename,
    strip_quoted_text,
    ticket_number_in,
)
from channels.email.settings import EmailChannelSettings
from core.attachments.policy import AttachmentPolicy
from core.attachments.store import AttachmentStore
from tests.channels.email.conftest import fixture_bytes


def parse(name: str):  # type: ignore[no-untyped-def]
    return parse_email(fixture_bytes(name), policy_of(EmailChannelSettings()))


# --- charsets ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "subject", "text", "sender", "sender_name"), [
    ("plain_utf8.eml", "Не работает интернет",
     "Здравствуйте! С утра не работает интернет, роутер мигает красным.\nДоговор 12345.",
     "ivan.petrov@example.ru", "Иван Петров"),
    ("cp1251.eml", "Счёт за ноябрь",
     "Добрый день! Пришёл счёт за ноябрь на 1500 рублей, а тариф стоит 700. Почему?", "olga@example.ru", "Ольга"),
    ("koi8r.eml", "Где мой заказ?", "Здравствуйте, где мой заказ ORD-2024-0042? Жду уже неделю.",
     "sergey@example.ru", "Сергей"),
    ("misdeclared_latin1_is_cp1251.eml", "Вопрос по тарифу",
     "Подскажите, какие у вас часы работы офиса на Ленина?", "anna@example.ru", "Anna"),
    ("misdeclared_cp1251_is_koi8.eml", "Re: test", "Хочу подключить домашний интернет, сколько это стоит?",
     "boris@example.ru", "Boris"),
    ("utf8_declared_is_cp1251.eml", "help", "Не могу оплатить счёт картой, пишет ошибку.", "gleb@example.ru", "Gleb"),
    ("rfc2047_subjects.eml", "Re: Жалоба на скорость [T-000042]", "Скорость по-прежнему низкая, 2 Мбит/с вместо 100.",
     "maria@example.ru", "Мария Сидорова"),
])
def test_charsets_and_encoded_words(name: str, subject: str, text: str, sender: str, sender_name: str) -> None:
    parsed = parse(name)
    assert parsed.subject == subject
    assert parsed.text == text
    assert parsed.sender_email == sender
    assert parsed.sender_name == sender_name
    assert parsed.auto_reply_reason is None
    assert parsed.language_hint == "ru"


@pytest.mark.parametrize(("data", "declared", "expected"), [
    ("привет".encode(), "utf-8", "привет"),
    ("привет".encode("cp1251"), "windows-1251", "привет"),
    ("привет".encode("cp1251"), "cp-1251", "привет"),          # an alias Python does not know
    ("привет мир".encode("koi8-r"), "koi8r", "привет мир"),
    ("привет мир".encode("koi8-r"), "windows-1251", "привет мир"),  # mislabelled the other way round
    ("привет мир".encode("cp1251"), None, "привет мир"),
    ("привет мир".encode("cp1251"), "us-ascii", "привет мир"),
    ("привет мир".encode(), "iso-8859-1", "привет мир"),       # UTF-8 labelled Latin-1
    ("café crème".encode("latin-1"), "iso-8859-1", "café crème"),  # real Latin-1 stays Latin-1
    ("naïve résumé".encode("cp1252"), None, "naïve résumé"),
    ("日本語".encode("shift_jis"), "shift_jis", "日本語"),
    (b"plain", "x-bogus-charset", "plain"),
])
def test_decode_bytes(data: bytes, declared: str | None, expected: str) -> None:
    assert decode_bytes(data, declared) == expected


def test_decode_bytes_never_raises_on_junk() -> None:
    assert decode_bytes(b"\xff\xfe\xfd abc", "utf-8")
    assert decode_bytes(b"\x81\x98", "x-unknown") is not None


@pytest.mark.parametrize(("raw", "expected"), [
    ("=?utf-8?B?0J/RgNC40LLQtdGC?=", "Привет"),
    ("=?windows-1251?Q?=CF=F0=E8=E2=E5=F2?= world", "Привет world"),
    ("=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"),  # whitespace between encoded words is dropped
    ("Re: =?koi8-r?B?8NLJ18XU?=\r\n [T-000001]", "Re: Привет [T-000001]"),
    ("=?utf-8?B?broken", "=?utf-8?B?broken"),
    ("Вопрос".encode("cp1251").decode("ascii", "surrogateescape"), "Вопрос"),  # raw 8-bit header
    (None, ""),
])
def test_decode_header_value(raw: str | None, expected: str) -> None:
    assert decode_header_value(raw) == expected


# --- quoted history --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text"), [
    ("gmail_html_reply.eml", "Thanks, the router works again after the reset."),
    ("outlook_html_reply.eml", "I still have no invoice for October.\n\nRegards,\nPeter"),
    ("outlook_plain_original_message.eml", "Please resend the invoice as PDF."),
    ("yandex_html_reply.eml", "Спасибо, всё заработало!"),
    ("mailru_plain_reply.eml", "Нет, проблема осталась."),
])
def test_quoted_history_is_stripped(name: str, text: str) -> None:
    parsed = parse(name)
    assert parsed.text == text


def test_html_only_reply_keeps_html_and_gives_clean_text() -> None:
    parsed = parse("yandex_html_reply.eml")
    assert parsed.html is not None and "<blockquote>" in parsed.html
    assert "Перезагрузите" not in parsed.text


@pytest.mark.parametrize(("html", "text"), [
    ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
    ("a<br>b<br/>c", "a\nb\nc"),
    ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
    ("<p>x &amp; y &lt;z&gt; &nbsp;&#1087;</p>", "x & y <z> п"),
    ("<div>Top</div><blockquote type=\"cite\"><div>quoted</div><blockquote>deeper</blockquote>tail</blockquote>",
     "Top"),
    ("<div>Mine</div><div class=\"moz-cite-prefix\">On 1/1 X wrote:</div><blockquote>old</blockquote>", "Mine"),
    ("<div>Mine<div class=\"gmail_quote\"><div>nested <div>deep</div></div>still quote</div></div><p>after</p>",
     "Mine\n\nafter"),
    ("<pre>  keep   spacing</pre>", "keep   spacing"),
    ("<p>unclosed <b>bold <i>italic", "unclosed bold italic"),
])
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_hostile_html_text_is_clean() -> None:
    parsed = parse("hostile_html.eml")
    assert parsed.html is not None and "<script>" in parsed.html  # kept as received; renderers sanitise
    for needle in ("alert", "document", "cookie", "display:none", "steal", "enable js", "<", "evil"):
        assert needle not in parsed.text
    assert "My internet does not work." in parsed.text
    assert "Contract 777." in parsed.text


@pytest.mark.parametrize(("text", "expected"), [
    ("Answer\n\nOn Mon, 1 Jan 2026 at 10:00, Bob <b@x.example> wrote:\n> old", "Answer"),
    ("Answer\n\nOn Mon, 1 Jan 2026 at 10:00, Bob <b@x.example>\nwrote:\n> old", "Answer"),
    ("Ответ\n\n1 января 2026 г., в 10:00, Служба <s@x.example> написал(а):\n> старое", "Ответ"),
    ("Ответ\n\nПн, 01 янв 2026 10:00 Иван <i@x.example> пишет:\n> старое", "Ответ"),
    ("Answer\n-----Original Message-----\nFrom: x\nSent: y\n\nold", "Answer"),
    ("Ответ\n-----Исходное сообщение-----\nОт: x\nОтправлено: y", "Ответ"),
    ("Answer\n________________________________\nFrom: Support\nSent: today\nold", "Answer"),
    ("Answer\nFrom: Support <s@x.example>\nSent: Monday\nTo: me\nSubject: hi\n\nold", "Answer"),
    ("Answer\n-- \nJohn\nCEO", "Answer"),
    ("> only a quote", "> only a quote"),  # nothing of their own: keep what we have
    ("From: my neighbour I heard the tariff changed", "From: my neighbour I heard the tariff changed"),
])
def test_strip_quoted_text(text: str, expected: str) -> None:
    assert strip_quoted_text(text) == expected


# --- auto-replies and bounces ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "reason"), [
    ("vacation_autoreply.eml", "Auto-Submitted: auto-replied"),
    ("precedence_bulk.eml", "Precedence: bulk"),
    ("dsn_bounce.eml", "Auto-Submitted: auto-replied"),
])
def test_auto_replies_are_recognised(name: str, reason: str) -> None:
    assert parse(name).auto_reply_reason == reason


@pytest.mark.parametrize(("headers", "expected"), [
    ("X-Autoreply: yes\n", "X-Autoreply header"),
    ("Precedence: junk\n", "Precedence: junk"),
    ("Precedence: list\n", "Precedence: list"),
    ("Auto-Submitted: auto-generated\n", "Auto-Submitted: auto-generated"),
    ("Auto-Submitted: no\n", None),
    ("Return-Path: <>\n", "bounce (null return path)"),
    ("X-Failed-Recipients: a@b.example\n", "bounce (X-Failed-Recipients)"),
    ("List-Id: <list.example>\n", "mailing list"),
    ("", None),
])
def test_auto_reply_headers(headers: str, expected: str | None) -> None:
    raw = f"From: a@b.example\n{headers}Subject: hello\nMessage-ID: <h@b.example>\n\nbody\n".encode()
    assert parse_email(raw).auto_reply_reason == expected


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example", "postmaster@mx.example", "noreply@shop.example"])
def test_robot_senders(sender: str) -> None:
    raw = f"From: {sender}\nSubject: x\nMessage-ID: <r@x>\n\nbody\n".encode()
    assert parse_email(raw).auto_reply_reason is not None


@pytest.mark.parametrize("subject", ["Automatic reply: hi", "Автоматический ответ: Ваше обращение",
                                     "Out of Office: back Monday", "Undeliverable: Re: invoice"])
def test_auto_reply_subjects(subject: str) -> None:
    raw = f"From: a@b.example\nSubject: {subject}\nMessage-ID: <s@x>\n\nbody\n".encode()
    assert parse_email(raw).auto_reply_reason == "auto-reply subject"


def test_dsn_is_attributed_to_the_failed_customer_and_threads_to_the_bounced_mail() -> None:
    parsed = parse("dsn_bounce.eml")
    assert parsed.sender_email == "gone@customer.example"
    assert parsed.references == ("sb.20261126100000.13.13@support.example",)
    assert parsed.bounce["status"] == "5.1.1"
    assert parsed.bounce["action"] == "failed"
    assert "User unknown" in parsed.bounce["diagnostic"]


# --- ids, threading, ticket numbers --------------------------------------------------------------------------------

def test_references_put_the_direct_parent_last() -> None:
    parsed = parse("rfc2047_subjects.eml")
    assert parsed.references == ("first-0001@example.ru", "sb.20261126100000.7.7@support.example")
    assert parsed.ticket_number_hint == "T-000042"


@pytest.mark.parametrize(("subject", "hint"), [
    ("Re: Internet [T-000123]", "T-000123"),
    ("Re: [ t-42 ] slow", "T-42"),
    ("Fwd: about T-000777 again", "T-000777"),
    ("Model T-1000 router", None),  # short bare numbers are too likely something else
    ("[TT-000123]", None),
    ("", None),
])
def test_ticket_number_in_subject(subject: str, hint: str | None) -> None:
    assert ticket_number_in(subject) == hint


@pytest.mark.parametrize(("value", "expected"), [
    ("<abc@host.example>", "abc@host.example"),
    ("  <abc@host.example> (comment)", "abc@host.example"),
    ("abc@host.example", "abc@host.example"),
    ("", None),
    (None, None),
])
def test_normalize_message_id(value: str | None, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


def test_parse_message_ids() -> None:
    assert parse_message_ids("<a@x> <b@y>\r\n <c@z>") == ["a@x", "b@y", "c@z"]
    assert parse_message_ids("a@x, b@y") == ["a@x", "b@y"]
    assert parse_message_ids(None) == []


def test_missing_message_id_gets_a_stable_synthetic_id() -> None:
    first = parse("no_message_id.eml")
    again = parse_email(b"Received: from relay.example by mx; today\r\n" + fixture_bytes("no_message_id.eml"))
    assert first.synthetic_id
    assert first.message_id.startswith("sha256-")
    assert first.message_id == again.message_id  # a relay's extra Received header changes nothing
    other = parse_email(fixture_bytes("no_message_id.eml").replace(b"A mail", b"Another mail"))
    assert other.message_id != first.message_id


# --- attachments --------------------------------------------------------------------------------------------------

def test_attachments_are_checked_and_named_safely() -> None:
    parsed = parse("attachments.eml")
    by_name = {a.filename: a for a in parsed.attachments}
    assert set(by_name) == {"Договор №5.pdf", "роутер.png", "invoice.exe", "fake.pdf"}
    assert by_name["Договор №5.pdf"].rejected is None
    assert by_name["Договор №5.pdf"].data.startswith(b"%PDF-")
    assert by_name["роутер.png"].content_type == "image/png"
    assert by_name["роутер.png"].rejected is None
    assert by_name["invoice.exe"].rejected is not None  # path stripped, executable refused
    assert by_name["fake.pdf"].rejected == "content does not match its declared type application/pdf"
    assert parsed.text == "Please find my contract and a photo of the router attached."


def test_attachments_are_stored_in_the_attachment_store(tmp_path: Path) -> None:
    parsed = parse("attachments.eml")
    inbound = build_inbound(parsed, files=AttachmentStore(tmp_path), mailbox="support",
                            raw_ref="imap:support/1/1", received_at=datetime.now(UTC))
    assert [a.filename for a in inbound.attachments] == ["Договор №5.pdf", "роутер.png"]
    for info in inbound.attachments:
        assert info.storage_key is not None and info.storage_key.startswith("email/")
        stored = tmp_path / info.storage_key
        assert stored.resolve().is_relative_to(tmp_path.resolve())
        assert stored.stat().st_size == info.size
    rejected = {r["filename"]: r["reason"] for r in inbound.extra["rejected_attachments"]}
    assert set(rejected) == {"invoice.exe", "fake.pdf"}
    # A redelivery writes the same content-addressed files again, harmlessly.
    again = build_inbound(parsed, files=AttachmentStore(tmp_path), mailbox="support", raw_ref="x",
                          received_at=datetime.now(UTC))
    assert again.attachments == inbound.attachments


@pytest.mark.parametrize(("filename", "ctype", "data", "policy", "reason"), [
    ("a.pdf", "application/pdf", b"%PDF-1.4", AttachmentPolicy(max_bytes=100), None),
    ("big.pdf", "application/pdf", b"%PDF-" + b"0" * 100, AttachmentPolicy(max_bytes=50),
     "the file is 105 bytes; the limit is 50"),
    ("run.js", "text/plain", b"alert(1)", AttachmentPolicy(max_bytes=100),
     "files of type .js are not accepted: they can run code"),
    ("doc.txt", "text/plain", b"\x7fELF\x02", AttachmentPolicy(max_bytes=100), "executable content is not accepted"),
    ("x.html", "text/html", b"<html>", AttachmentPolicy(max_bytes=100, allowed_types=("image/*",)),
     "files of type text/html are not accepted"),
    ("img.jpg", "image/jpeg", b"\x89PNG\r\n\x1a\n....", AttachmentPolicy(max_bytes=100, allowed_types=("image/*",)),
     None),
])
def test_check_attachment(filename: str, ctype: str, data: bytes, policy: AttachmentPolicy,
                          reason: str | None) -> None:
    assert check_attachment(filename, ctype, data, policy)[1] == reason


def test_check_attachment_records_the_sniffed_type() -> None:
    policy = AttachmentPolicy(max_bytes=100)
    assert check_attachment("img.jpg", "image/jpeg", b"\x89PNG\r\n\x1a\n..", policy)[0] == "image/png"
    assert check_attachment("a.pdf", "application/octet-stream", b"%PDF-1", policy)[0] == "application/pdf"


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\report.docx", "report.docx"),
    ("evil\u202egnp.exe", "evilgnp.exe"),  # the right-to-left override that disguises extensions
    ("a<b>c:d|e?.txt", "a_b_c_d_e_.txt"),
    ("...hidden", "hidden"),
    ("", "file.pdf"),
    ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
    ("Отчёт за май.xlsx", "Отчёт за май.xlsx"),
    ("Договор №5.pdf", "Договор №5.pdf"),
    ("CON.txt", "_CON.txt"),
])
def test_safe_filename(name: str, expected: str) -> None:
    """The parser names files by the one attachment policy (core/attachments/policy.py)."""
    assert safe_filename(name, "application/pdf") == expected


# --- broken input -------------------------------------------------------------------------------------------------

def test_broken_mime_still_yields_the_text() -> None:
    parsed = parse("broken_mime.eml")
    assert parsed.text == "Hello, my internet is very slow. Please help!"
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


@pytest.mark.parametrize(("name", "reason"), [
    ("not_an_email.eml", "no headers"),
    ("no_sender.eml", "no sender address"),
])
def test_unparseable(name: str, reason: str) -> None:
    with pytest.raises(UnparseableEmail, match=reason):
        parse(name)


def test_empty_payload_is_unparseable() -> None:
    with pytest.raises(UnparseableEmail):
        parse_email(b"  \r\n")


def test_every_fixture_parses_or_is_refused_cleanly(tmp_path: Path) -> None:
    for path in sorted((Path(__file__).parent / "fixtures").glob("*.eml")):
        try:
            parsed = parse_email(path.read_bytes())
        except UnparseableEmail:
            continue
        inbound = build_inbound(parsed, files=AttachmentStore(tmp_path), mailbox="m", raw_ref="r",
                                received_at=datetime.now(UTC))
        assert inbound.channel == "email"
        assert inbound.thread_key is None
        assert inbound.sender.external_id == inbound.sender.external_id.lower()
        assert inbound.auto_reply == (parsed.auto_reply_reason is not None)


def test_contact_form_mail_is_attributed_to_the_person_in_reply_to() -> None:
    parsed = parse("contact_form.eml")
    assert parsed.sender_email == "olga.smirnova@example.ru"
    assert parsed.sender_name == "Olga Smirnova"
    assert parsed.auto_reply_reason is None


def test_noreply_without_reply_to_stays_a_robot() -> None:
    raw = (b"From: noreply@shop.example\r\nReply-To: mailer-daemon@shop.example\r\nSubject: x\r\n"
           b"Message-ID: <n@x>\r\n\r\nb")
    parsed = parse_email(raw)
    assert parsed.sender_email == "noreply@shop.example"
    assert parsed.auto_reply_reason == "robot sender noreply"


def test_our_own_mail_coming_back_is_never_answered(tmp_path: Path) -> None:
    raw = (b"From: Support <Support@Support.Example>\r\nTo: customer@example.org\r\nSubject: Re: x [T-000001]\r\n"
           b"Message-ID: <sb.1.2.3@support.example>\r\n\r\nour answer\r\n")
    settings = EmailChannelSettings(from_address="support@support.example")
    inbound = parse_to_inbound(raw, settings, files=AttachmentStore(tmp_path), mailbox="m", raw_ref="r",
                               received_at=datetime.now(UTC))
    assert inbound.auto_reply
    assert inbound.extra["auto_reply_reason"] == "sent from this channel's own address"
