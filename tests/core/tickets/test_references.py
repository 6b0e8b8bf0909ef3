"""Ticket references (`123`, `T-000123`) from URLs, searches and email subjects: an id or a clean "no"."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import strategies as st

from core.db.base import MAX_ID, parse_id
from core.errors import NotFoundError
from core.tickets.models import format_ticket_number, parse_ticket_number, parse_ticket_ref
from core.tickets.service import ticket_id_from_ref

ids = st.integers(min_value=1, max_value=MAX_ID)
# Strings that look like references, with every kind of digit Unicode has (superscripts, Arabic-Indic, full-width).
digits = st.characters(categories=["Nd", "No"])
lookalikes = st.builds(lambda prefix, body, pad: f"{pad}{prefix}{body}{pad}",
                       st.sampled_from(["", "T-", "t-", "T", "T--", "Т-"]),  # the last one is a Cyrillic Т
                       st.text(digits | st.sampled_from("0123456789"), min_size=0, max_size=14),
                       st.sampled_from(["", " ", "\n", "\t", "\u00a0"]))


@hypothesis.given(st.text(max_size=40) | lookalikes)
def test_any_string_is_an_id_or_not_a_reference(ref: str) -> None:
    result = parse_ticket_ref(ref)
    assert result is None or (isinstance(result, int) and 1 <= result <= MAX_ID)
    number = parse_ticket_number(ref)
    assert number is None or 1 <= number <= MAX_ID
    if result is not None:
        # Only ASCII digits, after an optional T- prefix, make a reference.
        body = ref.strip()
        body = body[2:] if body[:2] in ("T-", "t-") else body
        assert body.isascii() and body.isdigit() and int(body) == result
    try:
        assert ticket_id_from_ref(ref) == result
    except NotFoundError:
        assert result is None


@hypothesis.given(ids)
def test_every_id_round_trips(ticket_id: int) -> None:
    for ref in (str(ticket_id), format_ticket_number(ticket_id), format_ticket_number(ticket_id).lower(),
                f" T-{ticket_id} ", f"T-{ticket_id:010d}"):
        assert parse_ticket_ref(ref) == ticket_id, ref
    assert parse_ticket_number(format_ticket_number(ticket_id)) == ticket_id
    assert parse_ticket_number(str(ticket_id)) is None  # a bare number in a subject is no ticket number


@pytest.mark.parametrize("ref", ["¹", "T-¹", "T-¹²", "١٢", "T-١", "１２", "T-1\u0660", "0", "T-0", "T-00000000000",
                                 str(MAX_ID + 1), f"T-{MAX_ID + 1}", "99999999999", "-1", "+1", "1_000", "T- 1",
                                 "T-1\n2", "", "T-", "t1"])
def test_known_non_references(ref: str) -> None:
    assert parse_ticket_ref(ref) is None
    with pytest.raises(NotFoundError):
        ticket_id_from_ref(ref)


@hypothesis.given(st.text(max_size=20))
def test_parse_id_is_ascii_digits_in_range(text: str) -> None:
    value = parse_id(text)
    assert value is None or (text.isascii() and text.isdigit() and value == int(text) and 1 <= value <= MAX_ID)
