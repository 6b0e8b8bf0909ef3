"""Admin-side NLU data (eTOM CRM Support & Readiness): intents, examples, answers, training jobs, suggestions.

The database holds what admins edit; training turns it into the engine's TrainingData. On first start the
shipped default data is imported, so a fresh install trains the same model the engine shipped with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.nlu_admin import repository
from core.nlu_admin.models import (
    JobState,
    NluDataItem,
    NluExample,
    NluIntent,
    NluResponse,
    NluSuggestion,
    NluTrainingJob,
    SuggestionStatus,
)
from core.tickets import repository as ticket_repo
from core.tickets.models import Direction
from core.users.models import User
from nlu.entities import regex_problem
from nlu.protocol import ExampleEntity, TrainingData, TrainingExample
from nlu.text import detect_language

# A retrieval intent (Rasa's ResponseSelector) is `group/name`, e.g. faq/ask_channels: each part a name.
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}(/[a-z0-9][a-z0-9_]{0,63})?$")
STALE_AFTER = timedelta(minutes=1)
"""A queued or running training job with no heartbeat for this long lost its process."""
ABANDONED = ("abandoned: the server running it sent no heartbeat for over a minute (it stopped or crashed "
             "while training); start the training again")
LANGUAGES = ("ru", "en")
MAX_EXAMPLE_CHARS = 1000
MAX_ANSWER_CHARS = 5000
"""An answer variant's length (the API's request models, the console's forms and the editing all check it here)."""


def example_language(text: str) -> str:
    """ru or en; Latin text that reads as transliterated Russian counts as ru."""
    return detect_language(text, default="en")


def check_intent_name(name: str) -> str:
    if not INTENT_NAME.match(name):
        raise ValidationFailedError(
            "an intent name is 2-64 characters: lower-case latin letters, digits and _, starting with a letter "
            "(a retrieval intent: group/name)",
            name=name)
    return name


def check_example(text: str) -> str:
    """An example's text as it is, or a ValidationFailedError with the `reason` (empty, too long)."""
    if not text:
        raise ValidationFailedError("an example needs some text", reason="empty_example")
    if len(text) > MAX_EXAMPLE_CHARS:
        raise ValidationFailedError(f"an example has at most {MAX_EXAMPLE_CHARS} characters", reason="long_example",
                                    limit=MAX_EXAMPLE_CHARS, length=len(text))
    return text


def _clean_example(text: str) -> str:
    return check_example(" ".join(text.split()))


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValidationFailedError(f"answers are in {', '.join(LANGUAGES)}; got {language[:10]!r}",
                                    reason="bad_language")
    return language


def check_answer(text: str, n: int = 1) -> str:
    """Answer variant `n` (1: the first, what set_responses sets) stripped, or a ValidationFailedError with the
    `reason` (empty, too long)."""
    cleaned = text.strip()
    if not cleaned:
        raise ValidationFailedError(f"variant {n} is empty", reason="empty_variant", n=n)
    if len(cleaned) > MAX_ANSWER_CHARS:
        raise ValidationFailedError(f"variant {n} is over {MAX_ANSWER_CHARS} characters", reason="long_variant", n=n,
                                    limit=MAX_ANSWER_CHARS)
    return cleaned


async def intent_count(session: AsyncSession) -> int:
    return await repository.count_intents(session)


async def intent_names(session: AsyncSession) -> Sequence[str]:
    """The names of every intent admins train (routing offers them to agents correcting the bot)."""
    return await repository.intent_names(session)


async def import_data(session: AsyncSession, data: TrainingData, *, source: str, mode: str | None,
                      actor: User | None, dry_run: bool = False) -> dict[str, Any]:
    """Add (`merge`) or replace everything with (`replace`) the intents, examples, answers, synonyms, regexes and
    lookups of `data`; the report lists duplicates and conflicts. Every name is checked before anything is
    written. A database that holds intents needs an explicit mode: merging an admin's project into intents they
    never imported (the shipped set) is a choice, not a default. `dry_run` reports without writing."""
    problems = [f"{ex.intent!r} ({ex.origin or 'example'})" for ex in _first_per_intent(data)
                if not INTENT_NAME.match(ex.intent)]
    problems += [f"{name!r} (response utter_{name})" for name in data.responses
                 if not INTENT_NAME.match(name) and name not in data.intents]
    if problems:
        raise ValidationFailedError(
            "invalid intent names, nothing was imported (a name is 2-64 lower-case latin letters, digits and _, "
            "starting with a letter; a retrieval intent is group/name): " + "; ".join(problems[:20]),
            problems=problems[:100])
    if mode not in (None, "merge", "replace"):
        raise ValidationFailedError(f"mode is merge or replace, got {mode!r}")
    count = await repository.count_intents(session)
    if mode is None and count:
        raise ConflictError(f"the database already has {count} intents: choose merge (add to them) or replace "
                            f"(delete them first); nothing was imported", intents=count)
    replace = mode == "replace"
    report: dict[str, Any] = {"mode": mode or "merge", "dry_run": dry_run, "intents": 0, "examples": 0,
                              "responses": 0, "synonyms": 0, "regexes": 0, "lookups": 0, "duplicates": [],
                              "conflicts": [], "warnings": list(data.warnings), "conversions": list(data.conversions)}
    if replace and not dry_run:
        await repository.delete_all_intents(session)
        await repository.delete_data_items(session)
    existing = {} if replace else {i.name: i for i in await repository.intents_with_examples_and_responses(session)}
    owner = {e.text.casefold(): i.name for i in existing.values() for e in i.examples}
    for name in sorted({e.intent for e in data.examples} | set(data.responses)):
        if name not in existing:
            intent = NluIntent(name=name, description="", created_at=utcnow(), meta=data.intent_metadata.get(name))
            intent.examples = []
            intent.responses = []
            if not dry_run:
                session.add(intent)
            existing[name] = intent
            report["intents"] += 1
        elif name in data.intent_metadata and not dry_run:
            existing[name].meta = data.intent_metadata[name]
    for ex in data.examples:
        text = " ".join(ex.text.split())
        where = f" ({ex.origin})" if ex.origin else ""
        if not text or len(text) > MAX_EXAMPLE_CHARS:
            report["warnings"].append(f"example{where} skipped: empty or over {MAX_EXAMPLE_CHARS} characters")
            continue
        held = owner.get(text.casefold())
        if held == ex.intent:
            report["duplicates"].append(f"{text!r}{where} is already an example of {ex.intent!r}")
            continue
        if held is not None:
            report["conflicts"].append(f"{text!r}{where} is an example of {held!r} already; not added to "
                                       f"{ex.intent!r}")
            continue
        owner[text.casefold()] = ex.intent
        report["examples"] += 1
        if not dry_run:
            existing[ex.intent].examples.append(NluExample(
                text=text, language=example_language(text), source=source, created_at=utcnow(),
                entities=[e.as_dict() for e in ex.entities] or None, meta=ex.metadata))
    for name, by_lang in data.responses.items():
        held_langs = {r.language for r in existing[name].responses}
        for lang in by_lang:
            # An imported language's answer replaces the held one, all its variants, in the file's order.
            variants = data.variants(name, lang)
            report["responses"] += lang not in held_langs
            if dry_run:
                continue
            for old in [r for r in existing[name].responses if r.language == lang]:
                existing[name].responses.remove(old)
            if lang in held_langs:
                await session.flush()  # the old rows go before their positions are taken again
            existing[name].responses.extend(NluResponse(language=lang, text=text, position=p)
                                            for p, text in enumerate(variants))
    items_held: Sequence[NluDataItem] = [] if replace else await repository.data_items(session)
    held_items = {(i.kind, i.name, i.value) for i in items_held}
    next_position: dict[tuple[str, str], int] = {}
    for row in items_held:
        next_position[(row.kind, row.name)] = max(next_position.get((row.kind, row.name), 0), row.position + 1)
    new_items: list[NluDataItem] = []
    for kind, table in (("synonym", data.synonyms), ("regex", data.regexes), ("lookup", data.lookups)):
        for name, values in table.items():
            fresh = [v for v in values if (kind, name, v) not in held_items]
            if kind == "regex":  # what extraction could not use (or would stall on) is left out, saying why
                unusable = {v: problem for v in fresh if (problem := regex_problem(v)) is not None}
                report["warnings"] += [f"regex {v[:200]!r} of {name!r} skipped: {problem[1]}"
                                       for v, problem in unusable.items()]
                fresh = [v for v in fresh if v not in unusable]
            start = next_position.get((kind, name), 0)
            new_items += [NluDataItem(kind=kind, name=name[:200], value=v, position=start + p)
                          for p, v in enumerate(fresh)]
            report[kind + ("es" if kind == "regex" else "s")] += len(fresh)
    if dry_run:
        return report
    session.add_all(new_items)
    await session.flush()
    audit.record(session, actor, "nlu.import", "nlu", source, replace=replace,
                 **{k: report[k] for k in ("intents", "examples", "responses", "synonyms", "regexes", "lookups")},
                 duplicates=len(report["duplicates"]), conflicts=len(report["conflicts"]))
    return report


def _first_per_intent(data: TrainingData) -> list[TrainingExample]:
    seen: dict[str, TrainingExample] = {}
    for ex in data.examples:
        seen.setdefault(ex.intent, ex)
    return list(seen.values())


async def training_data(session: AsyncSession) -> TrainingData:
    """What the engine trains on and export writes: every intent, example (with its entity annotations and
    metadata) and answer in the database, and the data set's synonyms, regexes and lookups - nothing else."""
    intents = await repository.intents_with_examples_and_responses(session, by_name=True)
    data = TrainingData(
        examples=[TrainingExample(text=e.text, intent=i.name,
                                  entities=tuple(ExampleEntity.from_dict(a) for a in e.entities or ()),
                                  metadata=e.meta)
                  for i in intents for e in i.examples],
        intent_metadata={i.name: i.meta for i in intents if i.meta is not None},
    )
    for i in intents:
        for r in i.responses:  # by language, then position
            data.add_response(i.name, r.language, r.text)
    tables = {"synonym": data.synonyms, "regex": data.regexes, "lookup": data.lookups}
    for item in await repository.data_items(session):
        tables[item.kind].setdefault(item.name, []).append(item.value)
    return data


async def export_data(session: AsyncSession) -> TrainingData:
    """The admin's data set for export; ConflictError when the database has no intents (never the shipped files
    in its place)."""
    data = await training_data(session)
    if not data.examples and not data.responses:
        raise ConflictError("the database has no intents: there is nothing to export (import or create intents "
                            "first)")
    return data


async def responses(session: AsyncSession) -> dict[str, dict[str, list[str]]]:
    """Every answer variant per intent and language, in order."""
    result: dict[str, dict[str, list[str]]] = {}
    for name, lang, text in await repository.response_texts(session):
        result.setdefault(name, {}).setdefault(lang, []).append(text)
    return result


def first_answers(rows: Sequence[NluResponse]) -> dict[str, str]:
    """The first variant per language: the answer the console shows and edits."""
    out: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: r.position, reverse=True):
        out[r.language] = r.text
    return out


async def list_intents(session: AsyncSession) -> list[dict[str, Any]]:
    """Every intent with its example counts per language and whether it has answers."""
    per: dict[int, dict[str, int]] = {}
    for intent_id, lang, n in await repository.example_counts(session):
        per.setdefault(intent_id, {})[lang] = n
    intents = await repository.intents_with_responses(session)
    return [{"name": i.name, "description": i.description, "examples": per.get(i.id, {}),
             "responses": first_answers(i.responses)} for i in intents]


async def get_intent(session: AsyncSession, name: str, *, lock: bool = False) -> NluIntent:
    """The intent with its examples and answers; `lock`: locked for an edit of them (repository.intent_by_name)."""
    intent = await repository.intent_by_name(session, name, lock=lock)
    if intent is None:
        raise NotFoundError(f"intent {name!r} not found")
    return intent


async def create_intent(session: AsyncSession, name: str, description: str, actor: User | None) -> NluIntent:
    check_intent_name(name)
    if await repository.intent_exists(session, name):
        raise ConflictError(f"intent {name!r} already exists")
    intent = NluIntent(name=name, description=description, created_at=utcnow())
    intent.examples = []
    intent.responses = []
    session.add(intent)
    await session.flush()
    audit.record(session, actor, "nlu.intent.create", "intent", name)
    return intent


async def delete_intent(session: AsyncSession, name: str, actor: User | None) -> None:
    intent = await get_intent(session, name)
    await repository.delete_intent(session, intent)
    audit.record(session, actor, "nlu.intent.delete", "intent", name)


async def add_example(session: AsyncSession, name: str, text: str, actor: User | None, *,
                      source: str = "admin") -> NluExample:
    cleaned = _clean_example(text)
    # Locked: a second admin adding the same text meanwhile waits, then reads it and gets the 409 below (without
    # the lock both inserted and the second failed on the unique constraint: a 500).
    intent = await get_intent(session, name, lock=True)
    if any(e.text == cleaned for e in intent.examples):
        raise ConflictError(f"intent {name!r} already has this example", reason="duplicate_example")
    example = NluExample(intent_id=intent.id, text=cleaned, language=example_language(cleaned), source=source,
                         created_at=utcnow())
    session.add(example)
    await session.flush()
    audit.record(session, actor, "nlu.example.add", "intent", name, example_id=example.id, text=cleaned)
    return example


async def delete_example(session: AsyncSession, example_id: int, actor: User | None) -> None:
    example = await repository.get_example(session, example_id)
    if example is None:
        raise NotFoundError(f"example {example_id} not found")
    await repository.delete_example(session, example)
    audit.record(session, actor, "nlu.example.delete", "example", example_id, text=example.text)


async def set_responses(session: AsyncSession, name: str, answers: dict[str, str | None],
                        actor: User | None) -> NluIntent:
    """Set or clear (None / empty) the answer per language. Setting changes the first variant (an imported
    response's later variants stay); clearing removes every variant of the language."""
    intent = await get_intent(session, name)
    current = {r.language: r for r in intent.responses if r.position == 0}
    for lang, text in answers.items():
        check_language(lang)
        cleaned = check_answer(text) if text and text.strip() else ""
        if not cleaned and lang in current:
            for row in [r for r in intent.responses if r.language == lang]:
                intent.responses.remove(row)
        elif cleaned and lang in current:
            current[lang].text = cleaned
        elif cleaned:
            intent.responses.append(NluResponse(intent_id=intent.id, language=lang, text=cleaned))
    await session.flush()
    audit.record(session, actor, "nlu.responses.set", "intent", name, languages=sorted(answers))
    return intent


# --- training jobs ------------------------------------------------------------------------------------

async def create_job(session: AsyncSession, actor: User | None, *, activate: bool,
                     now: datetime | None = None) -> NluTrainingJob:
    """Queue a training job; only one may be queued or running at a time.

    A job whose process died (no heartbeat for a minute) is failed first, so it never blocks a new one.
    """
    now = now or utcnow()
    await fail_stale_jobs(session, now)
    busy = await repository.lock_unfinished_job(session)
    if busy is not None:
        raise ConflictError(f"training job {busy.id} is already {busy.state.value}; wait for it to finish",
                            job_id=busy.id)
    job = NluTrainingJob(state=JobState.queued, progress=0.0, stage="queued", activate=activate,
                         created_by=actor.id if actor else None, created_at=now, report={})
    session.add(job)
    await session.flush()
    audit.record(session, actor, "nlu.train", "nlu_job", job.id, activate=activate)
    return job


async def get_job(session: AsyncSession, job_id: int) -> NluTrainingJob:
    job = await repository.get_job(session, job_id)
    if job is None:
        raise NotFoundError(f"training job {job_id} not found")
    return job


async def list_jobs(session: AsyncSession, limit: int = 20) -> Sequence[NluTrainingJob]:
    return await repository.latest_jobs(session, limit)


async def fail_stale_jobs(session: AsyncSession, now: datetime, stale_after: timedelta = STALE_AFTER) -> list[int]:
    """Fail the jobs whose process died: queued or running, and not heartbeated for `stale_after`.

    Training runs in the process that took the request and heartbeats its job every few seconds, so any
    live instance (a request, the periodic reaper, a start-up) can tell a dead job from a long one.
    Returns the ids of the jobs it failed.
    """
    stale = await repository.lock_silent_jobs(session, now - stale_after)
    for job in stale:
        job.state = JobState.failed
        job.error = ABANDONED
        job.finished_at = now
    return [job.id for job in stale]


# --- suggestions from agents ------------------------------------------------------------------------------

async def suggest(session: AsyncSession, message_id: int, intent: str, actor: User) -> NluSuggestion:
    """An agent says which intent a customer message really had; it waits for an admin's review."""
    message = await ticket_repo.get_message(session, message_id)
    if message is None:
        raise NotFoundError(f"message {message_id} not found")
    if message.direction != Direction.inbound:
        raise ConflictError("only customer messages can have their intent corrected")
    await get_intent(session, intent)
    text = " ".join(message.text.split())[:MAX_EXAMPLE_CHARS]
    if not text:
        raise ConflictError("the message has no text to learn from")
    pending = await repository.pending_suggestion(session, message_id)
    if pending is not None:
        pending.intent = intent
        pending.suggested_by = actor.id
        suggestion = pending
    else:
        suggestion = NluSuggestion(message_id=message_id, text=text, intent=intent,
                                   predicted_intent=message.intent, status=SuggestionStatus.pending,
                                   suggested_by=actor.id, created_at=utcnow())
        session.add(suggestion)
    await session.flush()
    audit.record(session, actor, "nlu.suggest", "message", message_id, intent=intent, predicted=message.intent)
    return suggestion


async def list_suggestions(session: AsyncSession, status: SuggestionStatus | None, limit: int = 100
                           ) -> Sequence[NluSuggestion]:
    return await repository.list_suggestions(session, status, limit)


async def review_suggestion(session: AsyncSession, suggestion_id: int, accept: bool, actor: User
                            ) -> NluSuggestion:
    suggestion = await repository.get_suggestion(session, suggestion_id)
    if suggestion is None:
        raise NotFoundError(f"suggestion {suggestion_id} not found")
    if suggestion.status != SuggestionStatus.pending:
        raise ConflictError(f"suggestion {suggestion_id} is already {suggestion.status.value}")
    if accept:
        intent = await get_intent(session, suggestion.intent)
        if not any(e.text == suggestion.text for e in intent.examples):
            await add_example(session, suggestion.intent, suggestion.text, actor, source="suggestion")
    suggestion.status = SuggestionStatus.accepted if accept else SuggestionStatus.rejected
    suggestion.reviewed_by = actor.id
    suggestion.reviewed_at = utcnow()
    audit.record(session, actor, "nlu.suggestion." + suggestion.status.value, "suggestion", suggestion.id)
    return suggestion


async def suggestion_ticket_id(session: AsyncSession, suggestion_id: int) -> int:
    """The ticket of the message a suggestion was made on; NotFoundError when either is gone."""
    suggestion = await repository.get_suggestion(session, suggestion_id)
    message = (await ticket_repo.get_message(session, suggestion.message_id)
               if suggestion and suggestion.message_id else None)
    if message is None:
        raise NotFoundError(f"the message of suggestion {suggestion_id} no longer exists")
    return message.ticket_id


async def suggestions_for_messages(session: AsyncSession, message_ids: Sequence[int]) -> Sequence[NluSuggestion]:
    """The intents agents suggested for these messages, oldest first (a ticket's conversation shows them)."""
    return await repository.suggestions_for_messages(session, message_ids)
