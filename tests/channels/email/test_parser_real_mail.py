"""Issue 17: mail as real inboxes send it - quoted history in many languages, forwards, charsets, broken mail.

Each fixture is one shape a mail client or relay really produces; the expectations say what the ticket shows
(`text`: what the customer wrote now, with forwarded content) and what the console folds away (`quoted`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.email.inbound import build_inbound, policy_of
from channels.email.parser import decode_bytes, parse_email, split_quoted_text, strip_quoted_text
from channels.email.settings import EmailChannelSettings
from core.attachments.store import AttachmentStore
from tests.channels.email.conftest import fixture_bytes


def parse(name: str):  # type: ignore[no-untyped-def]
    return parse_email(fixture_bytes(name), policy_of(EmailChannelSettings()))


# --- 1. quoted history in many languages -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "quoted_starts"), [
    ("quote_de_outlook_block.eml",
     "Die Störung besteht weiterhin, der Router blinkt rot.\n\nMit freundlichen Grüßen\nJonas Weber",
     "Von: Support <support@support.example>\nGesendet: Montag"),
    ("quote_ru_original_message.eml", "Счёт так и не пришёл, проверьте, пожалуйста.",
     "-----Исходное сообщение-----\nОт: Поддержка [mailto:support@support.example]\nОтправлено:"),
    ("quote_ru_multiline_attribution.eml", "Перезагрузил, не помогло.",
     "30 нояб. 2026 г., в 9:00, Служба поддержки\n<support@support.example>\nнаписал(а):"),
    ("quote_thunderbird_schrieb.eml", "Ich möchte den Vertrag kündigen.", "Am 30.11.2026 09:00, schrieb Support:"),
    ("reply_html_blockquote.eml", "Спасибо, счёт получила.", '30.11.2026, 09:00, "Поддержка" <support@'),
])
def test_quoted_history_is_kept_apart(name: str, text: str, quoted_starts: str) -> None:
    parsed = parse(name)
    assert parsed.text == text
    assert parsed.quoted.startswith(quoted_starts)
    assert text not in parsed.quoted


@pytest.mark.parametrize(("body", "text"), [
    # German Outlook, French Outlook (wrapped [mailto:), Polish, Dutch, Swedish blocks
    ("Geht nicht.\n\nVon: a@b.de\nGesendet: Montag, 30. November 2026 09:00\nAn: Jonas\nBetreff: Test\n\nalt",
     "Geht nicht."),
    ("Toujours en panne.\n\nDe : Support [mailto:\nsupport@example.fr]\nEnvoyé : lundi 30 novembre 2026\n"
     "À : Anne\nObjet : RE: Internet\n\nancien", "Toujours en panne."),
    ("Nadal nie działa.\n\nW dniu 30 listopada 2026 09:00 użytkownik Support <s@example.pl>\nnapisał:\n\nstare",
     "Nadal nie działa."),
    ("Werkt niet.\n\nOp 30-nov.-2026, om 09:00 heeft Support <s@example.nl> het volgende geschreven:\n\noud",
     "Werkt niet."),
    ("Fungerar inte.\nFrån: Support [mailto:s@example.se]\nSkickat: den 30 november 2026 09:00\nTill: Anna\n"
     "Ämne: SV: Internet\n\ngammalt", "Fungerar inte."),
    # Russian attributions in their date formats
    ("Не работает.\n\n30.11.2026 09:00, Поддержка пишет:\n> старое", "Не работает."),
    ("Не работает.\n\nпн, 30 нояб. 2026 г. в 09:00, Поддержка <support@example.ru>:\n\n> старое", "Не работает."),
    ("Не работает.\n\nПонедельник, 30 ноября 2026, 9:00 +03:00 от Поддержка <support@example.ru>:\n> старое",
     "Не работает."),
    ("Не работает.\n\n30.11.2026, 09:00, \"Поддержка\" <support@example.ru>:\n> старое", "Не работает."),
    ("Не работает.\n\nОт: Поддержка\nОтправлено: 30 ноября 2026 г. 9:00\nКому: ivan@example.ru\nТема: Интернет\n\n"
     "старое", "Не работает."),
    # separators and attributions of other shapes
    ("Still broken.\n\n-----Reply Message-----\nold", "Still broken."),
    ("Still broken.\n\n---- Support wrote ----\nold", "Still broken."),
    ("Still broken.\n\nOn Mon, Nov 30, 2026 at 9:00 AM, Support <\nsupport@support.example>\nwrote:\n\nold",
     "Still broken."),
    ("Still broken.\n\n*From:* Support [mailto:\nsupport@support.example]\n*Sent:* Monday\n*To:* Ann\n"
     "*Subject:* Internet\n\nold", "Still broken."),
])
def test_attributions_and_header_blocks_of_many_clients(body: str, text: str) -> None:
    own, quoted = split_quoted_text(body)
    assert own == text
    assert quoted and text not in quoted


@pytest.mark.parametrize("body", [
    "From: Moscow\nTo: Saint Petersburg\n\nHow much is a ticket?",  # fields without an address: the customer's
    "On Monday the internet was down.\nOn Tuesday too.",
    "Мой сосед пишет:\nу него тоже нет интернета.",
    "Call me at 10:00 tomorrow.\nThanks",
])
def test_customer_text_that_only_looks_like_history_stays(body: str) -> None:
    assert split_quoted_text(body) == (body, "")


def test_the_customer_wrote_below_the_quote() -> None:
    body = "On Mon, Nov 30, 2026 at 9:00 AM, Support <s@example.com> wrote:\n> What is your contract?\n\n12345"
    assert split_quoted_text(body) == (
        "12345", "On Mon, Nov 30, 2026 at 9:00 AM, Support <s@example.com> wrote:\n> What is your contract?")


def test_a_mail_that_is_nothing_but_a_quote_stays_as_it_was() -> None:
    body = "On Mon, Nov 30, 2026 at 9:00 AM, Support <s@example.com> wrote:\n> hello"
    assert split_quoted_text(body) == (body, "")


# --- 2. forwarded content is the appeal ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "first", "forwarded"), [
    ("forward_gmail_plain.eml", "FYI, see the customer's complaint below.",
     "There has been no internet at Lenina 5 for three days. Contract 12345."),
    ("forward_outlook_fw.eml", "Пересылаю жалобу клиента.", "Третий день нет интернета, договор 12345."),
    ("forward_html_gmail_quote.eml", "Please look at this.", "The router does not get an IP address."),
])
def test_forwarded_content_stays_in_the_text(name: str, first: str, forwarded: str) -> None:
    parsed = parse(name)
    assert parsed.text.startswith(first)
    assert parsed.text.endswith(forwarded)
    assert parsed.quoted == ""


@pytest.mark.parametrize("marker", ["-------- Пересылаемое сообщение --------",
                                    "---------- Пересланное сообщение ----------",
                                    "-------- Weitergeleitete Nachricht --------", "Begin forwarded message:"])
def test_forward_markers_of_many_clients(marker: str) -> None:
    body = f"See below.\n\n{marker}\nFrom: c@example.org\nSubject: x\n\nThe complaint."
    assert strip_quoted_text(body) == body


def test_a_forward_inside_the_quoted_history_is_history() -> None:
    body = ("Thanks.\n\n-----Original Message-----\nFYI\n\n---------- Forwarded message ----------\n"
            "From: bob@example.com\n\nold")
    assert split_quoted_text(body)[0] == "Thanks."


# --- 3, 5. charsets -------------------------------------------------------------------------------------------

def test_latin1_subject_and_body_stay_latin1() -> None:
    parsed = parse("latin1_short_subject.eml")
    assert parsed.subject == "Été à Paris"
    assert parsed.text == "Grüße, à bientôt."
    raw = b"From: a@x.com\nSubject: =?iso-8859-1?Q?=C9t=E9_=E0_Paris?=\n\nx"
    assert parse_email(raw).subject == "Été à Paris"


@pytest.mark.parametrize(("data", "declared", "expected"), [
    ("Été à Paris".encode("latin-1"), "iso-8859-1", "Été à Paris"),
    ("Grüße aus München".encode("cp1252"), "windows-1252", "Grüße aus München"),
    ("¿Dónde está mi pedido?".encode("latin-1"), None, "¿Dónde está mi pedido?"),
    ("Привет".encode("cp1251"), None, "Привет"),                    # one short word
    ("Счёт за ноябрь".encode("koi8-r"), None, "Счёт за ноябрь"),
    ("Error 651: подключение прервано".encode("cp1251"), None, "Error 651: подключение прервано"),
    ("Где мой заказ?".encode("cp1251"), "iso-8859-1", "Где мой заказ?"),  # Russian labelled Latin-1: not Latin text
    ("Доброго дня! Не працює інтернет".encode("koi8-u"), None, "Доброго дня! Не працює інтернет"),
    ("日本語のメールです".encode("iso2022_jp"), "iso-2022-jp", "日本語のメールです"),
    ("日本語のメールです".encode("iso2022_jp"), None, "日本語のメールです"),  # 7-bit, undeclared
    ("日本語のメールです。よろしく。".encode("shift_jis"), None, "日本語のメールです。よろしく。"),
    ("你好，我的网络不能用了".encode("gbk"), "iso-gb2312", "你好，我的网络不能用了"),
    ("网络故障".encode("gbk"), "gb2312", "网络故障"),
    ("안녕하세요 인터넷이 안 됩니다".encode("euc-kr"), None, "안녕하세요 인터넷이 안 됩니다"),
])
def test_declared_charsets_are_kept_and_undeclared_ones_detected(data: bytes, declared: str | None,
                                                                expected: str) -> None:
    assert decode_bytes(data, declared) == expected


@pytest.mark.parametrize(("name", "subject", "text"), [
    ("iso2022jp.eml", "インターネット", "インターネットが使えません。よろしくお願いします。"),
    ("iso2022jp_undeclared.eml", "help", "インターネットが使えません。"),
    ("gb2312_alias.eml", "网络故障", "你好，我的网络不能用了，请帮忙检查一下。"),
    ("cjk_unknown_charset.eml", "help", "日本語のメールです。よろしくお願いします。"),
])
def test_cjk_mail(name: str, subject: str, text: str) -> None:
    parsed = parse(name)
    assert (parsed.subject, parsed.text) == (subject, text)


# --- 4. crashes and refusals ------------------------------------------------------------------------------------

def test_8bit_filename_is_decoded() -> None:
    parsed = parse("filename_8bit.eml")
    assert [(a.filename, a.content_type, a.rejected) for a in parsed.attachments] == [
        ("Счёт за ноябрь.pdf", "application/pdf", None)]
    assert parsed.text == "Счёт во вложении."


@pytest.mark.parametrize("encoding", ["utf-8", "cp1251"])
@pytest.mark.parametrize("header", [
    "Content-Type: application/pdf\nContent-Disposition: attachment; filename=счёт.pdf",
    "Content-Type: application/pdf\nContent-Disposition: attachment;\n filename=\"счёт.pdf\"",
    "Content-Type: application/pdf; name=\"счёт.pdf\"\nContent-Disposition: attachment",
    "Content-Type: application/pdf\nContent-Disposition: attachment; filename*=utf-8''счёт.pdf",
    "Content-Type: application/pdf\nContent-Disposition: attachment; filename*0=\"сч\"; filename*1=\"ёт.pdf\"",
])
def test_8bit_filename_in_any_charset(header: str, encoding: str) -> None:
    raw = ("From: a@x.ru\nSubject: t\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
           f"Content-Type: text/plain\n\nsee\n--b\n{header}\nContent-Transfer-Encoding: base64\n\n"
           "JVBERi0xLjQK\n--b--\n").encode(encoding)
    assert [a.filename for a in parse_email(raw).attachments] == ["счёт.pdf"]


def test_header_continuation_without_whitespace_keeps_the_sender() -> None:
    parsed = parse("header_continuation_no_ws.eml")
    assert (parsed.sender_email, parsed.subject) == ("pavel@corp.example", "Internet is down")
    assert parsed.text == "Internet is down in the office since 9:00."
    assert "HeaderContinuationWithoutWhitespace" in parsed.defects


def test_a_line_before_the_headers_is_dropped() -> None:
    parsed = parse("original_email_message_line.eml")
    assert (parsed.sender_email, parsed.subject, parsed.message_id) == (
        "pavel@corp.example", "Where is my order?", "saved-0001@corp.example")
    assert parsed.text == "Where is my order ORD-2026-0042?"
    assert "TextBeforeHeadersDropped" in parsed.defects


def test_a_body_without_the_blank_line_stays_the_body() -> None:
    parsed = parse_email(b"From: a@x.com\nSubject: hi\nHello there\nsecond line\n")
    assert (parsed.subject, parsed.text) == ("hi", "Hello there\nsecond line")


def test_multipart_without_boundary_lines_is_read_as_text() -> None:
    parsed = parse("multipart_no_boundary_lines.eml")
    assert parsed.text == "Which tariff is the cheapest for 100 Mbit/s?"
    assert parsed.attachments == ()


# --- 6, 7, 8 ----------------------------------------------------------------------------------------------------

def test_the_richer_alternative_wins_over_a_stub_plain_part() -> None:
    parsed = parse("stub_plain_alternative.eml")
    assert "the amount of 1500 roubles was charged twice" in parsed.text


def test_plain_alternative_wins_when_it_says_as_much() -> None:
    raw = (b"From: a@x.com\nSubject: s\nContent-Type: multipart/alternative; boundary=a\n\n--a\n"
           b"Content-Type: text/plain\n\nRouter broken.\nContract 12345.\n--a\nContent-Type: text/html\n\n"
           b"<p><b>Router</b> broken. Contract 12345.</p>\n--a--\n")
    assert parse_email(raw).text == "Router broken.\nContract 12345."


def test_lines_starting_with_gt_that_are_no_history_stay() -> None:
    parsed = parse("reply_with_shell_prompt.eml")
    assert parsed.text == ("Here is what I get:\n> nslookup support.example\nServer: UnKnown\n"
                           "*** UnKnown can't find support.example: Non-existent domain\nWhat should I change?")
    assert parsed.quoted.startswith("On Mon, Nov 30, 2026 at 9:00 AM, Support")
    assert strip_quoted_text("My output:\n> ls\nfile.txt") == "My output:\n> ls\nfile.txt"
    assert strip_quoted_text("ok, see below\n> one line") == "ok, see below\n> one line"
    assert strip_quoted_text("Thanks!\n\n> old line 1\n> old line 2") == "Thanks!"


@pytest.mark.parametrize(("name", "text"), [
    ("mobile_signatures.eml", "Интернет снова пропал."),  # "Отправлено с iPhone" and a bare Outlook `-----`
    ("sent_from_my_iphone.eml", "The router blinks red again."),
])
def test_device_lines_and_bare_rules_go(name: str, text: str) -> None:
    assert parse(name).text == text


def test_sent_from_in_a_sentence_stays() -> None:
    body = "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
    assert strip_quoted_text(body) == body


def test_inline_images_are_named_from_content_id() -> None:
    parsed = parse("inline_image_cid.eml")
    assert [(a.filename, a.content_type, a.inline) for a in parsed.attachments] == [
        ("image001.png", "image/png", True), ("ii_m3x9k2.png", "image/png", True)]


# --- what the channel stores -------------------------------------------------------------------------------------

def test_the_quoted_history_is_stored_with_the_message(tmp_path: Path) -> None:
    parsed = parse("quote_ru_original_message.eml")
    inbound = build_inbound(parsed, files=AttachmentStore(tmp_path), mailbox="support", raw_ref="raw/1",
                            received_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert inbound.text == "Счёт так и не пришёл, проверьте, пожалуйста."
    assert inbound.extra["quoted"].startswith("-----Исходное сообщение-----")
    plain = build_inbound(parse("plain_utf8.eml"), files=AttachmentStore(tmp_path), mailbox="support",
                          raw_ref="raw/2", received_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert "quoted" not in plain.extra
