"""The imported Rasa data edited one piece at a time (issue 18, scope 1): synonyms, regexes and lookup values, an
example's entity annotations (written in Rasa's markup, read by the importer's own parser) and an intent's answer
variants per language. The API and the console call these, so both refuse the same input with the same reason.

Every refusal is a domain error whose `reason` detail names the rule broken (the console says it in the admin's
language from `nludata.<reason>`; the API returns the English message and the details).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import paging
from core.audit import service as audit
from core.db.base import MAX_ID
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.nlu_admin import repository
from core.nlu_admin.models import NluDataItem, NluExample, NluIntent, NluResponse
from core.nlu_admin.schemas import DataKind
from core.nlu_admin.service import (
    MAX_EXAMPLE_CHARS,
    check_answer,
    check_example,
    check_language,
    example_language,
    get_intent,
)
from core.users.models import User
from nlu.data import ENTITY_NAME, parse_markup, render_markup
from nlu.entities import regex_problem
from nlu.errors import DataFormatError
from nlu.protocol import ExampleEntity

KINDS: tuple[str, ...] = get_args(DataKind)
MAX_NAME_CHARS = 200
MAX_VALUE_CHARS = 1000
MAX_VARIANTS = 50
# What is left of an annotation the markup parser did not recognise: `[Moscow](city` or `[Moscow]{"entity"`.
_BROKEN_MARKUP = re.compile(r"\][({]")


def _refuse(reason: str, message: str, **details: Any) -> ValidationFailedError:
    return ValidationFailedError(message, reason=reason, **details)


async def _flush(session: AsyncSession, message: str, **details: Any) -> None:
    """Flush, with a unique-constraint violation (a change another transaction committed meanwhile, where the
    lock could not order them) as a ConflictError instead of a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ConflictError(message, **details) from exc


def _one_line(value: str) -> str:
    return " ".join(value.split())


def check_item(kind: str, name: str, value: str) -> tuple[str, str]:
    """The cleaned (name, value) of a synonym, regex or lookup value, or a ValidationFailedError saying why not.

    A synonym's name is the canonical value (any text); a regex's or lookup's name is the entity it finds, so it
    follows Rasa's entity names. Values are one line (the export writes one per line); a regex must compile."""
    if kind not in KINDS:
        raise _refuse("bad_kind", f"kind is one of {', '.join(KINDS)}, got {kind[:20]!r}", kind=kind[:20])
    name, value = _one_line(name), (value.strip() if kind == "regex" else _one_line(value))
    if not name:
        raise _refuse("empty_name", "the name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise _refuse("long_name", f"the name has at most {MAX_NAME_CHARS} characters", limit=MAX_NAME_CHARS)
    if kind != "synonym" and not ENTITY_NAME.match(name):
        raise _refuse("bad_entity_name", f"{name[:60]!r} is not an entity name (no spaces, brackets, commas, "
                      f"colons or quotes)", name=name[:60])
    if not value:
        raise _refuse("empty_value", "the value is empty")
    if "\n" in value or "\r" in value:
        raise _refuse("multiline_value", "a value is one line")
    if len(value) > MAX_VALUE_CHARS:
        raise _refuse("long_value", f"a value has at most {MAX_VALUE_CHARS} characters", limit=MAX_VALUE_CHARS)
    if kind == "regex" and (problem := regex_problem(value)) is not None:
        reason, message = problem
        raise _refuse(reason, message, **({"error": message.removeprefix("the regex does not compile: ")[:200]}
                                          if reason == "bad_regex" else {}))
    return name, value


async def _check_unique(session: AsyncSession, kind: str, name: str, value: str, *, item_id: int | None) -> None:
    """Refuse a value its table holds already, and a synonym variant that maps to another value already (both
    compared as extraction compares them: case-insensitively, but a regex exactly)."""
    exact = kind == "regex"
    if await repository.item_with_value(session, kind, value, name=name, exact=exact, other_than=item_id):
        raise ConflictError(f"{kind} {name!r} already has the value {value!r}", reason="duplicate",
                            name=name, value=value)
    if kind == "synonym":
        taken = await repository.item_with_value(session, kind, value, name=None, exact=exact, other_than=item_id)
        if taken is not None:
            raise ConflictError(f"{value!r} is already a synonym of {taken.name!r}: one variant maps to one value",
                                reason="synonym_taken", name=taken.name, value=value)


async def preview(session: AsyncSession, *, names: int, values: int
                  ) -> tuple[dict[str, list[tuple[str, int, list[str]]]], dict[str, int]]:
    """What the intents page shows of the data set, per kind: the first `names` names, each with its number of
    values and its first `values` values; and the number of names per kind (more than shown: "and N more")."""
    return ({kind: await repository.data_item_preview(session, kind, names=names, values=values) for kind in KINDS},
            await repository.data_item_names(session))


DATA_ITEMS_CURSOR = "data-items"  # what a data items cursor continues (core.paging)


def _item_cursor(item: NluDataItem) -> str:
    return paging.encode_cursor(DATA_ITEMS_CURSOR, item.kind, item.name, item.position, item.id)


def _after(cursor: str) -> tuple[str, str, int, int]:
    """The (kind, name, position, id) a cursor continues after; ValidationFailedError for a malformed one, another
    list's, or one whose values no row can have."""
    tag, kind, name, position, item_id = paging.cursor_parts(cursor, 5)
    if tag != DATA_ITEMS_CURSOR:
        raise _refuse("bad_cursor", "this cursor continues another list, not the data items", cursor=cursor[:80])
    if (kind not in KINDS or not isinstance(name, str) or len(name) > MAX_NAME_CHARS
            or type(position) is not int or type(item_id) is not int
            or not -MAX_ID <= position <= MAX_ID or not 0 <= item_id <= MAX_ID):
        raise paging.not_a_cursor(cursor)
    return kind, name, position, item_id


@dataclass(frozen=True, slots=True)
class ItemPage:
    items: Sequence[NluDataItem]
    next_cursor: str | None  # None: the last page


async def list_items(session: AsyncSession, *, kind: DataKind | None = None, name: str | None = None,
                     q: str = "", cursor: str | None = None, limit: int = 1000) -> ItemPage:
    """One page of the synonyms, regexes and lookup values in (kind, name, position, id) order, continued after
    `cursor` (keyset: no value is skipped or repeated while others are added or deleted), of one kind, of one
    name, containing `q` in the name or the value (case-insensitively), as the console's filter does."""
    after = _after(cursor) if cursor is not None else None
    rows = await repository.data_item_page(session, kind=kind, name=name, needle=_one_line(q), after=after,
                                           limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(rows, _item_cursor(rows[-1]) if more else None)


async def data_page(session: AsyncSession, q: str, limit: int
                    ) -> tuple[dict[str, dict[str, list[Any]]], dict[str, int]]:
    """The console's view of the data: per kind, its first `limit` values (containing `q`, case-insensitively,
    in the name or the value) grouped by name, and how many there are in all."""
    totals = dict.fromkeys(KINDS, 0) | await repository.data_item_counts(session, q)
    tables: dict[str, dict[str, list[Any]]] = {kind: {} for kind in KINDS}
    for kind in KINDS:
        if totals[kind]:
            for row in await repository.data_item_rows(session, kind, q, limit):
                tables[kind].setdefault(row.name, []).append(row)
    return tables, totals


async def get_item(session: AsyncSession, item_id: int) -> NluDataItem:
    item = await repository.get_data_item(session, item_id)
    if item is None:
        raise NotFoundError(f"synonym, regex or lookup value {item_id} not found", reason="no_item")
    return item


async def add_item(session: AsyncSession, kind: str, name: str, value: str, actor: User | None) -> NluDataItem:
    """A new value at the end of its synonym, regex or lookup table (a new table when the name is new)."""
    name, value = check_item(kind, name, value)
    await _check_unique(session, kind, name, value, item_id=None)
    item = NluDataItem(kind=kind, name=name, value=value,
                       position=await repository.next_data_item_position(session, kind, name))
    session.add(item)
    await session.flush()
    audit.record(session, actor, "nlu.data.add", "nlu_data_item", item.id, kind=kind, name=name, value=value)
    return item


async def update_item(session: AsyncSession, item_id: int, name: str | None, value: str | None,
                      actor: User | None) -> NluDataItem:
    """Change a value, or move it to another name of its kind (to the end of that table)."""
    item = await get_item(session, item_id)
    new_name, new_value = check_item(item.kind, item.name if name is None else name,
                                     item.value if value is None else value)
    await _check_unique(session, item.kind, new_name, new_value, item_id=item.id)
    before = {"name": item.name, "value": item.value}
    if new_name != item.name:
        item.position = await repository.next_data_item_position(session, item.kind, new_name)
    item.name, item.value = new_name, new_value
    await session.flush()
    audit.record(session, actor, "nlu.data.update", "nlu_data_item", item.id, kind=item.kind, before=before,
                 name=new_name, value=new_value)
    return item


async def delete_item(session: AsyncSession, item_id: int, actor: User | None) -> None:
    item = await get_item(session, item_id)
    await repository.delete_data_item(session, item)
    audit.record(session, actor, "nlu.data.delete", "nlu_data_item", item_id, kind=item.kind, name=item.name,
                 value=item.value)


# --- entity annotations ------------------------------------------------------------------------------------

def example_markup(example: NluExample) -> str:
    """The example in Rasa's markup, as export writes it and the console's form shows it."""
    return render_markup(example.text, [ExampleEntity.from_dict(a) for a in example.entities or ()])


def parse_example_markup(markup: str) -> tuple[str, tuple[ExampleEntity, ...]]:
    """Rasa markup -> (plain text, annotations), with what is wrong said in words."""
    if len(markup) > 4 * MAX_EXAMPLE_CHARS:
        raise _refuse("long_markup", f"the example is over {4 * MAX_EXAMPLE_CHARS} characters")
    try:
        text, entities = parse_markup(markup, source="the example")
    except DataFormatError as exc:
        raise _refuse("bad_markup", str(exc), error=str(exc)[:300]) from exc
    broken = _BROKEN_MARKUP.search(text)
    if broken:
        near = text[max(0, broken.start() - 20):broken.end() + 20]
        raise _refuse("broken_markup", f"an annotation is not closed near {near!r}: write [text](entity) or "
                      '[text]{"entity": "name", "role": "r"}', near=near)
    check_example(text)
    for e in entities:
        if e.start == e.end:
            raise _refuse("empty_span", f"the annotation of {e.entity!r} marks no text", entity=e.entity)
    return text, entities


async def get_example(session: AsyncSession, example_id: int) -> NluExample:
    example = await repository.get_example(session, example_id)
    if example is None:
        raise NotFoundError(f"example {example_id} not found", reason="no_example")
    return example


async def set_example_markup(session: AsyncSession, example_id: int, markup: str, actor: User | None, *,
                             intent: str | None = None) -> NluExample:
    """Replace an example's text and entity annotations with what `markup` says (its plain text may change too:
    then it must not be another example of the intent already). `intent`: the example must be one of its."""
    text, entities = parse_example_markup(markup)
    found = await get_example(session, example_id)
    owner = await session.get(NluIntent, found.intent_id)
    if owner is None or (intent is not None and owner.name != intent):
        raise NotFoundError(f"example {example_id} is not an example of {intent!r}", reason="no_example")
    # The intent locked, its examples read afresh: two admins editing its examples one after the other.
    held = await get_intent(session, owner.name, lock=True)
    example = next((e for e in held.examples if e.id == example_id), None)
    if example is None:  # deleted while this waited for the lock
        raise NotFoundError(f"example {example_id} not found", reason="no_example")
    if text != example.text:
        if any(e.text == text and e.id != example.id for e in held.examples):
            raise ConflictError("the intent already has this example", reason="duplicate_example")
        example.language = example_language(text)
    before = example_markup(example)
    example.text = text
    example.entities = [e.as_dict() for e in entities] or None
    await _flush(session, "the intent already has this example", reason="duplicate_example")
    audit.record(session, actor, "nlu.example.annotate", "example", example.id, before=before,
                 after=example_markup(example))
    return example


# --- answer variants ---------------------------------------------------------------------------------------

def variants_of(intent: NluIntent, language: str) -> list[NluResponse]:
    return sorted((r for r in intent.responses if r.language == language), key=lambda r: r.position)


async def set_variants(session: AsyncSession, name: str, language: str, texts: Sequence[str],
                       actor: User | None) -> list[NluResponse]:
    """An intent's answer in one language as this ordered list of variants (the first is "the" answer). At
    least one variant is kept: an answer is removed as a whole with the answers form or PUT .../responses."""
    check_language(language)
    if not texts:
        raise _refuse("last_variant", "an answer keeps at least one variant (clear the answer to remove it)")
    if len(texts) > MAX_VARIANTS:
        raise _refuse("too_many_variants", f"an answer has at most {MAX_VARIANTS} variants", limit=MAX_VARIANTS)
    cleaned = [check_answer(text, n) for n, text in enumerate(texts, 1)]
    seen: set[str] = set()
    for n, text in enumerate(cleaned, 1):
        if text in seen:
            raise ConflictError(f"variant {n} repeats an earlier one", reason="duplicate_variant", n=n)
        seen.add(text)
    intent = await get_intent(session, name, lock=True)  # another admin's change waits, then is read afresh
    rows = variants_of(intent, language)
    before = [r.text for r in rows]
    # Texts move between the rows in place, so (intent, language, position) stays unique at every flush.
    for position, text in enumerate(cleaned):
        if position < len(rows):
            rows[position].text = text
        else:
            row = NluResponse(intent_id=intent.id, language=language, position=position, text=text)
            intent.responses.append(row)
            rows.append(row)
    for row in rows[len(cleaned):]:
        intent.responses.remove(row)
    await _flush(session, "the answer was changed meanwhile: reload and try again", reason="variant_changed")
    audit.record(session, actor, "nlu.responses.variants", "intent", name, language=language, before=before,
                 after=cleaned)
    return rows[:len(cleaned)]
