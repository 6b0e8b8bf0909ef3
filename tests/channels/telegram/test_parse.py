"""Reading updates from their JSON: the fields the channel uses, as PTB would have read them, and a reason naming the
field for every update of another shape; a property test throws arbitrary JSON at the reader."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Bot, Update

from channels.telegram.adapter import (
    ButtonPress,
    TelegramContact,
    TelegramFile,
    TelegramMessage,
    TelegramUser,
    UnparseableUpdate,
    callback_query_id,
    parse_update,
)
from tests.channels.telegram.botapi import TOKEN, fixture

BOUNDED = settings(max_examples=300, deadline=timedelta(seconds=10), derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_a_text_message() -> None:
    assert parse_update(fixture("text_message", 1)) == TelegramMessage(
        chat_id=5001, message_id=10, sender=TelegramUser(5001, "Ivan Petrov", "en"),
        date=datetime(2025, 1, 1, 10, 0, tzinfo=UTC), edit_date=None, text="hello there", caption=None,
        photo=None, document=None, contact=None)


@pytest.mark.parametrize("name", ["text_message", "start_ru", "photo_message", "document_message", "contact_own",
                                  "edited_message", "sticker"])
def test_messages_read_as_ptb_reads_them(name: str) -> None:
    raw = fixture(name, 1)
    ours = parse_update(raw)
    update = Update.de_json(raw, Bot(TOKEN))
    theirs = update.message or update.edited_message
    assert isinstance(ours, TelegramMessage) and theirs is not None and theirs.from_user is not None
    assert ours.sender is not None
    assert (ours.chat_id, ours.message_id, ours.date, ours.edit_date, ours.text, ours.caption) == (
        theirs.chat.id, theirs.message_id, theirs.date, theirs.edit_date, theirs.text, theirs.caption)
    assert (ours.sender.id, ours.sender.full_name, ours.sender.language_code) == (
        theirs.from_user.id, theirs.from_user.full_name, theirs.from_user.language_code)
    largest = theirs.photo[-1] if theirs.photo else None
    assert (ours.photo.file_id, ours.photo.file_unique_id, ours.photo.file_size) == (
        largest.file_id, largest.file_unique_id, largest.file_size) if ours.photo and largest else \
        ours.photo is None and largest is None
    doc = theirs.document
    assert (ours.document == TelegramFile(doc.file_id, doc.file_unique_id, doc.file_name, doc.mime_type,
                                          doc.file_size)) if doc else ours.document is None
    contact = theirs.contact
    assert (ours.contact == TelegramContact(contact.phone_number, contact.user_id)) if contact else \
        ours.contact is None


def test_photos_documents_contacts_and_edits() -> None:
    photo = parse_update(fixture("photo_message", 1))
    assert isinstance(photo, TelegramMessage)
    assert photo.photo == TelegramFile("big-photo", "ph-b", file_size=2048)  # the largest size, listed last
    assert photo.caption == "my router lights" and photo.text is None
    document = parse_update(fixture("document_message", 1))
    assert isinstance(document, TelegramMessage)
    assert document.document == TelegramFile("doc-1", "doc-u1", "contract scan.pdf", "application/pdf", 3000)
    contact = parse_update(fixture("contact_own", 1))
    assert isinstance(contact, TelegramMessage)
    assert contact.contact == TelegramContact("79161234567", 5001)
    edit = parse_update(fixture("edited_message", 1))
    assert isinstance(edit, TelegramMessage) and edit.edited
    assert edit.edit_date == datetime.fromtimestamp(1735725660, UTC)
    sticker = parse_update(fixture("sticker", 1))
    assert isinstance(sticker, TelegramMessage)
    assert (sticker.text, sticker.photo, sticker.document) == (None, None, None)  # what we do not read is left


def test_a_user_without_a_last_name_or_any_name() -> None:
    raw = fixture("text_message", 1)
    del raw["message"]["from"]["last_name"]
    message = parse_update(raw)
    assert isinstance(message, TelegramMessage) and message.sender is not None
    assert message.sender.full_name == "Ivan"
    raw["message"]["from"]["first_name"] = ""
    del raw["message"]["from"]["language_code"]
    message = parse_update(raw)
    assert isinstance(message, TelegramMessage)
    assert message.sender == TelegramUser(5001, None, None)
    del raw["message"]["from"]
    message = parse_update(raw)
    assert isinstance(message, TelegramMessage) and message.sender is None


def test_a_button_press_takes_the_title_of_its_button() -> None:
    raw = fixture("callback_query", 1)
    raw["callback_query"]["data"] = "  /human_handoff "
    raw["callback_query"]["message"]["reply_markup"]["inline_keyboard"].insert(
        0, [{"text": "Open the site", "url": "https://example.com"}, {"text": "Rate", "callback_data": "/csat 5"}])
    press = parse_update(raw)
    assert press == ButtonPress(id="cbq-1", sender=TelegramUser(5001, "Ivan", "en"), chat_id=5001,
                                data="/human_handoff", title="Talk to an operator")
    assert callback_query_id(raw) == "cbq-1"
    del raw["callback_query"]["message"]["reply_markup"]  # a button no longer shown: the data is the title
    assert isinstance(press := parse_update(raw), ButtonPress) and press.title == "/human_handoff"
    del raw["callback_query"]["message"]  # under an inline-mode message: the sender's own chat
    assert isinstance(press := parse_update(raw), ButtonPress) and press.chat_id == 5001


def test_updates_of_other_kinds_are_not_messages() -> None:
    assert parse_update({"update_id": 1}) is None
    assert parse_update({"update_id": 1, "channel_post": {"chat": "anything"}}) is None
    assert parse_update({"update_id": 1, "message": None}) is None


def at(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `raw` with the field at the dotted path replaced (or deleted when value is DELETE)."""
    changed = copy.deepcopy(raw)
    *parents, last = path.split(".")
    node: Any = changed
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    index: int | str = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[index]
    else:
        node[index] = value
    return changed


DELETE = object()
TEXT = fixture("text_message", 1)
PHOTO = fixture("photo_message", 1)
DOCUMENT = fixture("document_message", 1)
CONTACT = fixture("contact_own", 1)
EDIT = fixture("edited_message", 1)
PRESS = fixture("callback_query", 1)


@pytest.mark.parametrize(("raw", "reason"), [
    (at(TEXT, "message", "hello"), "message is not an object"),
    (at(TEXT, "message", [1, 2]), "message is not an object"),
    (at(TEXT, "message.chat", DELETE), "message.chat is missing"),
    (at(TEXT, "message.chat", "nope"), "message.chat is not an object"),
    (at(TEXT, "message.chat.id", "5001"), "message.chat.id is not an integer"),
    (at(TEXT, "message.chat.id", 5001.0), "message.chat.id is not an integer"),
    (at(TEXT, "message.chat.id", 2**63), "message.chat.id is out of range"),
    (at(TEXT, "message.chat.id", -(2**63) - 1), "message.chat.id is out of range"),
    (at(TEXT, "message.chat.id", 10**300), "message.chat.id is out of range"),
    (at(TEXT, "message.message_id", True), "message.message_id is not an integer"),
    (at(TEXT, "message.message_id", "not-a-number"), "message.message_id is not an integer"),
    (at(TEXT, "message.message_id", DELETE), "message.message_id is missing"),
    (at(TEXT, "message.date", DELETE), "message.date is missing"),
    (at(TEXT, "message.date", "2025-01-01"), "message.date is not an integer"),
    (at(TEXT, "message.date", -1), "message.date is out of range"),
    (at(TEXT, "message.date", 10**20), "message.date is out of range"),  # OverflowError in datetime
    (at(TEXT, "message.date", 253_402_300_800), "message.date is out of range"),  # the year 10000
    (at(TEXT, "message.text", 123), "message.text is not a string"),
    (at(TEXT, "message.text", {"a": 1}), "message.text is not a string"),
    (at(TEXT, "message.from", []), "message.from is not an object"),
    (at(TEXT, "message.from.id", None), "message.from.id is missing"),
    (at(TEXT, "message.from.first_name", 7), "message.from.first_name is not a string"),
    (at(TEXT, "message.from.last_name", ["Petrov"]), "message.from.last_name is not a string"),
    (at(TEXT, "message.from.language_code", 5), "message.from.language_code is not a string"),
    (at(PHOTO, "message.caption", False), "message.caption is not a string"),
    (at(PHOTO, "message.photo", "big-photo"), "message.photo is not a list"),
    (at(PHOTO, "message.photo.1", "big-photo"), "message.photo[-1] is not an object"),
    (at(PHOTO, "message.photo.1.file_id", 1), "message.photo[-1].file_id is not a string"),
    (at(PHOTO, "message.photo.1.file_size", -1), "message.photo[-1].file_size is out of range"),
    (at(DOCUMENT, "message.document", "doc-1"), "message.document is not an object"),
    (at(DOCUMENT, "message.document.file_unique_id", DELETE), "message.document.file_unique_id is missing"),
    (at(DOCUMENT, "message.document.file_name", 1), "message.document.file_name is not a string"),
    (at(DOCUMENT, "message.document.mime_type", "a/" + "b" * 300), "message.document.mime_type is over 255"),
    (at(DOCUMENT, "message.document.file_size", "3000"), "message.document.file_size is not an integer"),
    (at(DOCUMENT, "message.document.file_size", 2**64), "message.document.file_size is out of range"),
    (at(CONTACT, "message.contact", "+7916"), "message.contact is not an object"),
    (at(CONTACT, "message.contact.phone_number", 79161234567), "message.contact.phone_number is not a string"),
    (at(CONTACT, "message.contact.phone_number", "7" * 65), "message.contact.phone_number is over 64"),
    (at(CONTACT, "message.contact.user_id", "5001"), "message.contact.user_id is not an integer"),
    (at(EDIT, "edited_message.edit_date", "yesterday"), "edited_message.edit_date is not an integer"),
    (at(EDIT, "edited_message.chat", DELETE), "edited_message.chat is missing"),
    (at(PRESS, "callback_query", "cbq-1"), "callback_query is not an object"),
    (at(PRESS, "callback_query.id", DELETE), "callback_query.id is missing"),
    (at(PRESS, "callback_query.id", 42), "callback_query.id is not a string"),
    (at(PRESS, "callback_query.from", DELETE), "callback_query.from is missing"),
    (at(PRESS, "callback_query.data", DELETE), "callback query without data"),
    (at(PRESS, "callback_query.data", "   "), "callback query without data"),
    (at(PRESS, "callback_query.data", 5), "callback_query.data is not a string"),
    (at(PRESS, "callback_query.message", "x"), "callback_query.message is not an object"),
    (at(PRESS, "callback_query.message.chat", DELETE), "callback_query.message.chat is missing"),
    (at(PRESS, "callback_query.message.chat.id", None), "callback_query.message.chat.id is missing"),
    (at(PRESS, "callback_query.message.reply_markup", []), "callback_query.message.reply_markup is not an object"),
    (at(PRESS, "callback_query.message.reply_markup.inline_keyboard", "x"), "inline_keyboard is not a list"),
    (at(PRESS, "callback_query.message.reply_markup.inline_keyboard", ["x"]), "has a row that is not a list"),
    (at(PRESS, "callback_query.message.reply_markup.inline_keyboard", [[7]]), "has a button that is not an object"),
    (at(PRESS, "callback_query.message.reply_markup.inline_keyboard.0.0.text", None), "[].text is missing"),
])
def test_every_malformed_shape_is_unparseable_with_the_field_named(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnparseableUpdate) as failure:
        parse_update(raw)
    assert reason in str(failure.value)


def test_a_button_press_is_answerable_even_when_the_rest_is_not_usable() -> None:
    raw = at(PRESS, "callback_query.message.chat", "nope")
    assert callback_query_id(raw) == "cbq-1"
    assert callback_query_id(at(PRESS, "callback_query.id", 42)) is None
    assert callback_query_id(at(PRESS, "callback_query.id", "")) is None
    assert callback_query_id(TEXT) is None


def test_hostile_sizes_read_only_what_is_used() -> None:
    """A photo of 100,000 sizes (only the last is read), a keyboard of 10,000 buttons, a 1 MB text."""
    raw = at(PHOTO, "message.photo", ["junk"] * 100_000 + [PHOTO["message"]["photo"][-1]])
    assert isinstance(message := parse_update(raw), TelegramMessage) and message.photo is not None
    assert message.photo.file_id == "big-photo"
    keyboard = [[{"text": f"b{i}", "callback_data": f"/d{i}"}] for i in range(10_000)]
    raw = at(PRESS, "callback_query.message.reply_markup.inline_keyboard", keyboard)
    raw = at(raw, "callback_query.data", "/d9999")
    assert isinstance(press := parse_update(raw), ButtonPress) and press.title == "b9999"
    raw = at(TEXT, "message.text", "x" * 1_000_000)
    assert isinstance(message := parse_update(raw), TelegramMessage) and message.text is not None
    assert len(message.text) == 1_000_000


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)


def field_paths(value: Any, prefix: str = "") -> list[str]:
    """Every field's dotted path in a JSON value (list items by index)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    paths: list[str] = []
    for key, child in items:
        path = f"{prefix}{key}"
        paths += [path, *field_paths(child, f"{path}.")]
    return paths


FIELDS = [(base, path) for base in (TEXT, PHOTO, DOCUMENT, CONTACT, EDIT, PRESS) for path in field_paths(base)
          if path != "update_id"]


@BOUNDED
@given(field=st.sampled_from(FIELDS), value=JSON | st.just(DELETE))
def test_any_value_in_any_field_parses_or_is_unparseable(field: tuple[dict[str, Any], str], value: Any) -> None:
    raw = at(*field, value)
    try:
        parse_update(raw)
    except UnparseableUpdate:
        pass
    callback_query_id(raw)


@BOUNDED
@given(st.dictionaries(st.sampled_from(["update_id", "message", "edited_message", "callback_query", "x"]), JSON))
def test_any_json_object_parses_or_is_unparseable(raw: dict[str, Any]) -> None:
    try:
        parse_update(raw)
    except UnparseableUpdate:
        pass
    callback_query_id(raw)
