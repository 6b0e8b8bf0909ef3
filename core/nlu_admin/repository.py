"""All NLU administration queries: intents, examples and answers, training jobs, agents' suggestions, the model
version all instances should use and what each instance reports it uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.db.base import utcnow
from core.nlu_admin.models import (
    IntentActionRule,
    JobState,
    NluActiveModel,
    NluDataItem,
    NluExample,
    NluInstance,
    NluIntent,
    NluModelVersion,
    NluResponse,
    NluSuggestion,
    NluTrainingJob,
    SuggestionStatus,
)

ACTIVE_ROW = 1
UNFINISHED_JOB = (JobState.queued, JobState.running)


# --- intents, examples and answers -----------------------------------------------------------------------------

async def count_intents(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(NluIntent)) or 0)


async def intent_names(session: AsyncSession) -> Sequence[str]:
    """The names of every intent of the training data."""
    return (await session.scalars(select(NluIntent.name))).all()


async def delete_all_intents(session: AsyncSession) -> None:
    """Every intent, and with it (the foreign keys cascade) its examples and answers."""
    await session.execute(delete(NluIntent))


async def data_items(session: AsyncSession, kind: str | None = None) -> Sequence[NluDataItem]:
    """The data set's synonyms, regexes and lookups (or one kind's), in import order per kind and name."""
    stmt = select(NluDataItem)
    if kind is not None:
        stmt = stmt.where(NluDataItem.kind == kind)
    return (await session.scalars(stmt.order_by(NluDataItem.kind, NluDataItem.name, NluDataItem.position,
                                                NluDataItem.id))).all()


async def delete_data_items(session: AsyncSession) -> None:
    await session.execute(delete(NluDataItem))


async def intents_with_examples_and_responses(session: AsyncSession, *, by_name: bool = False
                                              ) -> Sequence[NluIntent]:
    stmt = select(NluIntent).options(selectinload(NluIntent.examples), selectinload(NluIntent.responses))
    if by_name:
        stmt = stmt.order_by(NluIntent.name)
    return (await session.scalars(stmt)).all()


async def intents_with_responses(session: AsyncSession) -> Sequence[NluIntent]:
    """Every intent with its answers (not its examples), by name."""
    return (await session.scalars(
        select(NluIntent).options(selectinload(NluIntent.responses)).order_by(NluIntent.name))).all()


async def response_texts(session: AsyncSession, intent: str | None = None) -> list[tuple[str, str, str]]:
    """(intent name, language, answer) of every answer, or of one intent's."""
    stmt = (select(NluIntent.name, NluResponse.language, NluResponse.text)
            .join(NluResponse, NluResponse.intent_id == NluIntent.id))
    if intent is not None:
        stmt = stmt.where(NluIntent.name == intent)
    rows = (await session.execute(stmt.order_by(NluResponse.intent_id, NluResponse.language,
                                                NluResponse.position))).all()
    return [(name, lang, text) for name, lang, text in rows]


async def example_counts(session: AsyncSession) -> list[tuple[int, str, int]]:
    """(intent id, language, number of examples) per intent and language that has examples."""
    rows = (await session.execute(
        select(NluExample.intent_id, NluExample.language, func.count()).group_by(NluExample.intent_id,
                                                                              NluExample.language)
    )).all()
    return [(intent_id, lang, int(n)) for intent_id, lang, n in rows]


async def intent_by_name(session: AsyncSession, name: str, *, lock: bool = False) -> NluIntent | None:
    """The intent with its examples and answers. `lock`: its row locked until the transaction ends (another
    editor of its examples or answers waits) and everything read afresh, whatever the session held."""
    stmt = (select(NluIntent).where(NluIntent.name == name)
            .options(selectinload(NluIntent.examples), selectinload(NluIntent.responses)))
    if lock:
        stmt = stmt.with_for_update(of=NluIntent).execution_options(populate_existing=True)
    return (await session.scalars(stmt)).first()


async def intent_exists(session: AsyncSession, name: str) -> bool:
    return (await session.scalars(select(NluIntent.id).where(NluIntent.name == name))).first() is not None


async def delete_intent(session: AsyncSession, intent: NluIntent) -> None:
    await session.delete(intent)


async def get_example(session: AsyncSession, example_id: int) -> NluExample | None:
    return await session.get(NluExample, example_id)


async def delete_example(session: AsyncSession, example: NluExample) -> None:
    await session.delete(example)


# --- training jobs ------------------------------------------------------------------------------------------

async def lock_unfinished_job(session: AsyncSession) -> NluTrainingJob | None:
    """A queued or running job, locked until the transaction ends (the one-job-at-a-time check)."""
    return (await session.scalars(
        select(NluTrainingJob).where(NluTrainingJob.state.in_(UNFINISHED_JOB)).with_for_update()
    )).first()


async def get_job(session: AsyncSession, job_id: int) -> NluTrainingJob | None:
    return await session.get(NluTrainingJob, job_id)


async def latest_jobs(session: AsyncSession, limit: int) -> Sequence[NluTrainingJob]:
    """The newest `limit` jobs, newest first."""
    return (await session.scalars(select(NluTrainingJob).order_by(NluTrainingJob.id.desc()).limit(limit))).all()


async def lock_silent_jobs(session: AsyncSession, silent_since: datetime) -> Sequence[NluTrainingJob]:
    """The queued or running jobs with no sign of life (heartbeat, start, creation) since `silent_since`, locked;
    jobs another transaction holds are skipped (it is looking at them already)."""
    last_sign_of_life = func.coalesce(NluTrainingJob.heartbeat_at, NluTrainingJob.started_at,
                                      NluTrainingJob.created_at)
    return (await session.scalars(
        select(NluTrainingJob).where(NluTrainingJob.state.in_(UNFINISHED_JOB), last_sign_of_life < silent_since)
        .with_for_update(skip_locked=True))).all()


# --- suggestions from agents ---------------------------------------------------------------------------------

async def pending_suggestion(session: AsyncSession, message_id: int) -> NluSuggestion | None:
    """The suggestion for this message still waiting for an admin's review."""
    return (await session.scalars(select(NluSuggestion).where(
        NluSuggestion.message_id == message_id, NluSuggestion.status == SuggestionStatus.pending))).first()


async def list_suggestions(session: AsyncSession, status: SuggestionStatus | None, limit: int
                           ) -> Sequence[NluSuggestion]:
    """The newest `limit` suggestions (of one status, or all), newest first."""
    stmt = select(NluSuggestion).order_by(NluSuggestion.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(NluSuggestion.status == status)
    return (await session.scalars(stmt)).all()


async def get_suggestion(session: AsyncSession, suggestion_id: int) -> NluSuggestion | None:
    return await session.get(NluSuggestion, suggestion_id)


async def suggestions_for_messages(session: AsyncSession, message_ids: Sequence[int]) -> Sequence[NluSuggestion]:
    """The intents agents suggested for these messages, oldest first."""
    return (await session.scalars(select(NluSuggestion).where(NluSuggestion.message_id.in_(list(message_ids)))
                                  .order_by(NluSuggestion.id))).all()


# --- model versions and instances ----------------------------------------------------------------------------

def _upsert(session: AsyncSession, model: Any, values: dict[str, Any], update: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(**values)
    return stmt.on_conflict_do_update(index_elements=["id"], set_=update) if update else \
        stmt.on_conflict_do_nothing(index_elements=["id"])


async def active_version(session: AsyncSession) -> str | None:
    return await session.scalar(select(NluActiveModel.version).where(NluActiveModel.id == ACTIVE_ROW))


async def set_active_version(session: AsyncSession, version: str, *, only_if_unset: bool = False,
                             now: datetime | None = None) -> None:
    """Record the version every instance should use (`only_if_unset`: the first instance on a new database)."""
    values = {"id": ACTIVE_ROW, "version": version, "changed_at": now or utcnow()}
    await session.execute(_upsert(session, NluActiveModel, values,
                                  {} if only_if_unset else {"version": version, "changed_at": values["changed_at"]}))
    if not only_if_unset:  # the rollback order, whichever instance switched (nothing for an unpublished version)
        await session.execute(update(NluModelVersion).where(NluModelVersion.version == version)
                              .values(activated_at=values["changed_at"]))


async def report_instance(session: AsyncSession, instance: str, *, host: str, pid: int, engine: str,
                          version: str | None, started_at: datetime, now: datetime | None = None) -> None:
    now = now or utcnow()
    values = {"id": instance, "host": host[:255], "pid": pid, "engine": engine, "version": version,
              "started_at": started_at, "seen_at": now}
    await session.execute(_upsert(session, NluInstance, values, {"engine": engine, "version": version,
                                                                  "seen_at": now}))


async def list_instances(session: AsyncSession, seen_since: datetime) -> Sequence[NluInstance]:
    return (await session.scalars(select(NluInstance).where(NluInstance.seen_at >= seen_since)
                                  .order_by(NluInstance.started_at, NluInstance.id))).all()


async def forget_instance(session: AsyncSession, instance: str) -> None:
    await session.execute(delete(NluInstance).where(NluInstance.id == instance))


async def forget_instances(session: AsyncSession, seen_before: datetime) -> None:
    """Instances that stopped reporting long ago (crashed, or gone for good)."""
    await session.execute(delete(NluInstance).where(NluInstance.seen_at < seen_before))


async def action_rules(session: AsyncSession) -> list[tuple[str, str]]:
    """(intent, action) of every admin's declaration."""
    rows = (await session.execute(select(IntentActionRule.intent, IntentActionRule.action))).all()
    return [(intent, action) for intent, action in rows]


async def action_rule(session: AsyncSession, intent: str) -> IntentActionRule | None:
    return (await session.scalars(select(IntentActionRule).where(IntentActionRule.intent == intent))).first()


# --- synonyms, regexes and lookups one by one, answer variants ------------------------------------------------

def _containing(needle: str) -> Any:
    """Rows whose name or value contains `needle`, case-insensitively (SQLite's lower() is made Unicode-aware
    by core.db.session)."""
    needle = needle.lower()
    return or_(func.lower(NluDataItem.name).contains(needle, autoescape=True),
               func.lower(NluDataItem.value).contains(needle, autoescape=True))


def data_item_page_statement(*, kind: str | None, name: str | None, needle: str,
                             after: tuple[str, str, int, int] | None, limit: int) -> Select[NluDataItem]:
    """Up to `limit` items in (kind, name, position, id) order, after the row whose key is `after` (keyset: a page
    costs the same however deep, through ix_nlu_data_items_kind), of one kind and name when given, containing
    `needle` when given."""
    stmt = select(NluDataItem)
    if kind is not None:
        stmt = stmt.where(NluDataItem.kind == kind)
    if name is not None:
        stmt = stmt.where(NluDataItem.name == name)
    if needle:
        stmt = stmt.where(_containing(needle))
    if after is not None:
        stmt = stmt.where(tuple_(NluDataItem.kind, NluDataItem.name, NluDataItem.position, NluDataItem.id)
                          > tuple_(*after))
    return stmt.order_by(NluDataItem.kind, NluDataItem.name, NluDataItem.position, NluDataItem.id).limit(limit)


async def data_item_page(session: AsyncSession, *, kind: str | None, name: str | None, needle: str,
                         after: tuple[str, str, int, int] | None, limit: int) -> Sequence[NluDataItem]:
    """One page of data items (see data_item_page_statement)."""
    return (await session.scalars(data_item_page_statement(kind=kind, name=name, needle=needle, after=after,
                                                           limit=limit))).all()


async def data_item_counts(session: AsyncSession, needle: str = "") -> dict[str, int]:
    """The number of values per kind (of those containing `needle`, when given)."""
    stmt = select(NluDataItem.kind, func.count()).group_by(NluDataItem.kind)
    if needle:
        stmt = stmt.where(_containing(needle))
    return {kind: int(n) for kind, n in (await session.execute(stmt)).all()}


async def data_item_preview(session: AsyncSession, kind: str, *, names: int, values: int
                            ) -> list[tuple[str, int, list[str]]]:
    """The first `names` names of one kind (alphabetically), each with how many values it holds and its first
    `values` values in import order: two bounded reads however large a lookup table grows."""
    counts = (await session.execute(
        select(NluDataItem.name, func.count()).where(NluDataItem.kind == kind).group_by(NluDataItem.name)
        .order_by(NluDataItem.name).limit(names))).all()
    if not counts:
        return []
    numbered = select(NluDataItem.name, NluDataItem.value, func.row_number().over(
        partition_by=NluDataItem.name, order_by=(NluDataItem.position, NluDataItem.id)).label("n")).where(
        NluDataItem.kind == kind, NluDataItem.name.in_([name for name, _ in counts])).subquery()
    first: dict[str, list[str]] = {}
    for name, value in (await session.execute(select(numbered.c.name, numbered.c.value)
                                               .where(numbered.c.n <= values)
                                               .order_by(numbered.c.name, numbered.c.n))).all():
        first.setdefault(name, []).append(value)
    return [(name, int(n), first.get(name, [])) for name, n in counts]


async def data_item_names(session: AsyncSession) -> dict[str, int]:
    """How many names (synonym canonical values, regex and lookup entities) each kind has."""
    inner = select(NluDataItem.kind, NluDataItem.name).distinct().subquery()
    return {kind: int(n) for kind, n in (await session.execute(
        select(inner.c.kind, func.count()).group_by(inner.c.kind))).all()}


async def data_item_rows(session: AsyncSession, kind: str, needle: str, limit: int) -> Sequence[Any]:
    """The first `limit` (id, kind, name, value) rows of one kind (containing `needle`, when given) in import
    order per name: plain rows, not entities, because a lookup table can hold thousands of values and the
    console only shows them."""
    stmt = select(NluDataItem.id, NluDataItem.kind, NluDataItem.name, NluDataItem.value).where(
        NluDataItem.kind == kind)
    if needle:
        stmt = stmt.where(_containing(needle))
    return (await session.execute(stmt.order_by(NluDataItem.name, NluDataItem.position, NluDataItem.id)
                                  .limit(limit))).all()


async def item_with_value(session: AsyncSession, kind: str, value: str, *, name: str | None, exact: bool,
                          other_than: int | None) -> Any:
    """An (id, name) row of `kind` holding `value` (compared exactly or case-insensitively), under `name` when
    given, other than the item `other_than`; None when there is none."""
    stmt = select(NluDataItem.id, NluDataItem.name).where(
        NluDataItem.kind == kind,
        NluDataItem.value == value if exact else func.lower(NluDataItem.value) == value.lower())
    if name is not None:
        stmt = stmt.where(NluDataItem.name == name)
    if other_than is not None:
        stmt = stmt.where(NluDataItem.id != other_than)
    return (await session.execute(stmt.order_by(NluDataItem.id).limit(1))).first()


async def get_data_item(session: AsyncSession, item_id: int) -> NluDataItem | None:
    return await session.get(NluDataItem, item_id)


async def next_data_item_position(session: AsyncSession, kind: str, name: str) -> int:
    """The position after the last value of one synonym, regex or lookup table."""
    last = await session.scalar(select(func.max(NluDataItem.position))
                                .where(NluDataItem.kind == kind, NluDataItem.name == name))
    return 0 if last is None else int(last) + 1


async def delete_data_item(session: AsyncSession, item: NluDataItem) -> None:
    await session.delete(item)

