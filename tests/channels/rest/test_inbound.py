"""The REST channel's translation of a posted message into the core's InboundMessage."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from channels.rest import inbound
from core.attachments.policy import AttachmentPolicy
from core.errors import ValidationFailedError

POLICY = AttachmentPolicy(max_bytes=10_000_000)


def _post(**fields: object) -> bytes:
    body = {"external_message_id": "m-1", "sender": {"external_id": "crm-42", "name": "Анна",
                                                     "email": "anna@example.com"}, "text": "Нет интернета"}
    body.update(fields)
    return json.dumps(body, ensure_ascii=False).encode()


def test_a_message_becomes_an_inbound_message_threaded_by_sender() -> None:
    message = inbound.to_inbound(inbound.parse_message(_post(language="ru", attachments=[
        {"filename": "договор.pdf", "url": "https://cdn.example/1", "size": 3}])), POLICY)
    assert (message.channel, message.external_message_id, message.thread_key) == ("rest", "m-1", "crm-42")
    assert (message.sender.external_id, message.sender.name, message.sender.email) == (
        "crm-42", "Анна", "anna@example.com")
    assert (message.text, message.language_hint) == ("Нет интернета", "ru")
    assert [(a.filename, a.content_type, a.size, a.url) for a in message.attachments] == [
        ("договор.pdf", "application/octet-stream", 3, "https://cdn.example/1")]


def test_a_refused_file_leaves_the_message_in_listed_with_the_reason() -> None:
    message = inbound.to_inbound(inbound.parse_message(_post(attachments=[
        {"filename": "setup.exe", "url": "https://cdn.example/2", "size": 3},
        {"filename": "huge.pdf", "url": "https://cdn.example/3", "size": 20_000_000},
        {"filename": "scan.pdf", "url": "https://cdn.example/4", "size": 3}])), POLICY)
    assert [a.filename for a in message.attachments] == ["scan.pdf"]
    rejected = message.extra["rejected_attachments"]
    assert [r["filename"] for r in rejected] == ["setup.exe", "huge.pdf"]
    assert all(r["reason"] for r in rejected)


def test_a_thread_id_continues_that_thread() -> None:
    assert inbound.to_inbound(inbound.parse_message(_post(thread_id="case-7")), POLICY).thread_key == "case-7"


def test_a_message_without_text_or_attachments_is_refused() -> None:
    with pytest.raises(ValidationFailedError, match="text or at least one attachment"):
        inbound.to_inbound(inbound.parse_message(_post(text="  ")), POLICY)


@pytest.mark.parametrize("fields", [{"text": "a\x00b"}, {"external_message_id": ""}, {"extra": 1},
                                    {"sender": {"external_id": "x\x00"}}])
def test_bad_bodies_fail_validation(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        inbound.parse_message(_post(**fields))
