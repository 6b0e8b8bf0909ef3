"""Admin NLU routes: intents, examples, answers, training jobs, model versions, evaluation, Rasa import/export,
and agents' intent corrections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from api.deps import Admin, Agent, DbSession, IdPath, State
from api.openapi import CONFLICT
from core.errors import ValidationFailedError
from core.nlu_admin import actions, editing, service, versions
from core.nlu_admin.models import SuggestionStatus
from core.nlu_admin.schemas import (
    DataItemCreate,
    DataItemPage,
    DataItemRead,
    DataItemUpdate,
    DataKind,
    ExampleAnnotationsRead,
    ExampleCreate,
    ExampleMarkupUpdate,
    ExampleRead,
    InstanceRead,
    IntentActionRead,
    IntentActionUpdate,
    IntentCreate,
    IntentRead,
    JobRead,
    ResponsesUpdate,
    SuggestionCreate,
    SuggestionRead,
    TrainRequest,
    VariantsRead,
    VariantsUpdate,
    VersionRead,
)
from core.paging import MAX_CURSOR_CHARS
from nlu.data import dump_rasa_yaml, loads
from nlu.errors import DataFormatError

router = APIRouter(prefix="/admin/nlu", tags=["admin: nlu"], responses=CONFLICT)
corrections = APIRouter(prefix="/messages", tags=["tickets"], responses=CONFLICT)
MAX_IMPORT_BYTES = 5_000_000
ImportMode = Literal["merge", "replace"]
UploadFormat = Literal["auto", "yaml", "json", "md"]


async def _intent_read(session: DbSession, name: str) -> IntentRead:
    intent = await service.get_intent(session, name)
    return IntentRead(name=intent.name, description=intent.description,
                      examples=[ExampleRead.model_validate(e) for e in intent.examples],
                      responses=service.first_answers(intent.responses))


@router.get("/intents")
async def list_intents(session: DbSession, _user: Admin) -> list[dict[str, Any]]:
    """Intents with example counts per language and their answers."""
    return await service.list_intents(session)


@router.post("/intents", response_model=IntentRead, status_code=201)
async def create_intent(body: IntentCreate, session: DbSession, user: Admin) -> IntentRead:
    await service.create_intent(session, body.name, body.description, user)
    return await _intent_read(session, body.name)


@router.get("/intents/{name:intent}", response_model=IntentRead)
async def get_intent(name: str, session: DbSession, _user: Admin) -> IntentRead:
    return await _intent_read(session, name)


@router.delete("/intents/{name:intent}", status_code=204)
async def delete_intent(name: str, session: DbSession, user: Admin, state: State) -> None:
    await service.delete_intent(session, name, user)
    await session.flush()
    await state.catalog.reload(session)


@router.get("/actions", response_model=list[IntentActionRead])
async def list_actions(session: DbSession, _user: Admin) -> list[IntentActionRead]:
    """What the bot does with each intent it knows (trained, shipped or declared), as ingest resolves it."""
    return [IntentActionRead(intent=name, action=action, declared=declared)
            for name, (action, declared) in (await actions.effective_actions(session)).items()]


@router.put("/intents/{name:intent}/action", response_model=IntentActionRead)
async def set_action(name: str, body: IntentActionUpdate, session: DbSession, user: Admin) -> IntentActionRead:
    """Declare what the bot does with the intent from the next message on. 422 with the reason for an action the
    intent cannot have: `answer` without an answer text, `self_service` where the bot has no lookup, anything but
    `escalate` or `answer_and_escalate` for `human_handoff` (the customer asks for a person)."""
    action = await actions.set_action(session, name, body.action, user)
    return IntentActionRead(intent=name, action=action, declared=True)


@router.post("/intents/{name:intent}/examples", response_model=ExampleRead, status_code=201)
async def add_example(name: str, body: ExampleCreate, session: DbSession, user: Admin) -> ExampleRead:
    return ExampleRead.model_validate(await service.add_example(session, name, body.text, user))


@router.delete("/examples/{example_id}", status_code=204)
async def delete_example(example_id: IdPath, session: DbSession, user: Admin) -> None:
    await service.delete_example(session, example_id, user)


@router.put("/intents/{name:intent}/responses", response_model=IntentRead)
async def set_responses(name: str, body: ResponsesUpdate, session: DbSession, user: Admin,
                        state: State) -> IntentRead:
    """Set the bot's answer per language; an empty answer removes it (the intent then goes to humans)."""
    await service.set_responses(session, name, body.model_dump(exclude_unset=True), user)
    await state.catalog.reload(session)
    return await _intent_read(session, name)


@router.get("/intents/{name:intent}/responses/{language}", response_model=VariantsRead)
async def get_variants(name: str, language: str, session: DbSession, _user: Admin) -> VariantsRead:
    """Every variant of the intent's answer in one language, in order (empty: no answer in that language)."""
    service.check_language(language)
    intent = await service.get_intent(session, name)
    return VariantsRead(intent=name, language=language, variants=[r.text for r in editing.variants_of(intent,
                                                                                                     language)])


@router.put("/intents/{name:intent}/responses/{language}", response_model=VariantsRead)
async def set_variants(name: str, language: str, body: VariantsUpdate, session: DbSession, user: Admin,
                       state: State) -> VariantsRead:
    """The answer in one language as this ordered list of variants: add, edit, delete and reorder in one call.
    422 with the reason for an empty list (an answer keeps one variant; clear it with PUT .../responses), an
    empty or over-long variant; 409 for a repeated one."""
    rows = await editing.set_variants(session, name, language, body.variants, user)
    await state.catalog.reload(session)
    return VariantsRead(intent=name, language=language, variants=[r.text for r in rows])


def _annotations(example: Any) -> ExampleAnnotationsRead:
    return ExampleAnnotationsRead(id=example.id, text=example.text, language=example.language,
                                  markup=editing.example_markup(example), entities=example.entities or [])


@router.get("/examples/{example_id}/annotations", response_model=ExampleAnnotationsRead)
async def get_annotations(example_id: IdPath, session: DbSession, _user: Admin) -> ExampleAnnotationsRead:
    """The example with its entity annotations, and both as Rasa markup."""
    return _annotations(await editing.get_example(session, example_id))


@router.put("/examples/{example_id}/annotations", response_model=ExampleAnnotationsRead)
async def set_annotations(example_id: IdPath, body: ExampleMarkupUpdate, session: DbSession, user: Admin
                          ) -> ExampleAnnotationsRead:
    """Set the example's text and entity annotations from Rasa markup (`[Moscow](city)`,
    `[Moscow]{"entity": "city", "role": "to"}`, `[Piter](city:Saint Petersburg)`); 422 with the reason for
    markup that does not parse, 409 when the new text is another example of the intent already."""
    return _annotations(await editing.set_example_markup(session, example_id, body.markup, user))


@router.get("/data-items", response_model=DataItemPage)
async def list_data_items(
    session: DbSession, _user: Admin,
    kind: DataKind | None = None,
    name: Annotated[str | None, Query(max_length=editing.MAX_NAME_CHARS, description=(
        "Only this synonym's (its canonical value), regex's or lookup table's values (the exact name)"))] = None,
    q: Annotated[str, Query(max_length=200, description=(
        "Only values whose name or value contains this, case-insensitively (the console's filter)"))] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS, description=(
        "The next_cursor of the previous page, with the same filters"))] = None,
) -> DataItemPage:
    """The data set's synonyms (name: the canonical value), regexes and lookup values, a page at a time in
    (kind, name, position, id) order: pass each page's `next_cursor` as `cursor` until it is null (a lookup table
    can hold tens of thousands of values; a page costs the same however deep). 422 with the reason for a limit
    outside 1..5000 or a cursor this list did not return.

    Changed: this answers a page object (`items`, `limit`, `next_cursor`) instead of a bare list of every value:
    an older client fails on the shape at once rather than silently reading only the first page. Export
    (`GET /admin/nlu/export`) still writes every value."""
    page = await editing.list_items(session, kind=kind, name=name, q=q, cursor=cursor, limit=limit)
    return DataItemPage(items=[DataItemRead.model_validate(i) for i in page.items], limit=limit,
                        next_cursor=page.next_cursor)


@router.post("/data-items", response_model=DataItemRead, status_code=201)
async def add_data_item(body: DataItemCreate, session: DbSession, user: Admin) -> DataItemRead:
    """Add a synonym variant, a regex or a lookup value (used by the next training). 422 with the reason for an
    empty value, a regex that does not compile or a bad entity name; 409 for a duplicate, or a synonym variant
    that maps to another value already."""
    return DataItemRead.model_validate(await editing.add_item(session, body.kind, body.name, body.value, user))


@router.patch("/data-items/{item_id}", response_model=DataItemRead)
async def update_data_item(item_id: IdPath, body: DataItemUpdate, session: DbSession, user: Admin
                           ) -> DataItemRead:
    return DataItemRead.model_validate(await editing.update_item(session, item_id, body.name, body.value, user))


@router.delete("/data-items/{item_id}", status_code=204)
async def delete_data_item(item_id: IdPath, session: DbSession, user: Admin) -> None:
    await editing.delete_item(session, item_id, user)


@router.post("/train", response_model=JobRead, status_code=202)
async def train(body: TrainRequest, session: DbSession, user: Admin, state: State) -> JobRead:
    """Start training on the current data as a background job; poll the job for progress."""
    job = await service.create_job(session, user, activate=body.activate, now=state.clock.now())
    # The runner reads the job in its own session: it must be committed before the runner starts.
    await session.commit()
    state.trainer.start(job.id)
    return JobRead.model_validate(job)


@router.get("/jobs", response_model=list[JobRead])
async def list_jobs(session: DbSession, _user: Admin) -> list[JobRead]:
    return [JobRead.model_validate(j) for j in await service.list_jobs(session)]


@router.get("/jobs/{job_id}", response_model=JobRead)
async def get_job(job_id: IdPath, session: DbSession, _user: Admin) -> JobRead:
    return JobRead.model_validate(await service.get_job(session, job_id))


@router.get("/versions", response_model=list[VersionRead])
async def list_versions(state: State, _user: Admin, session: DbSession) -> list[VersionRead]:
    """Saved versions, newest first: the active one (all instances follow it), the one this instance parses
    with, and the instances that report using each."""
    return await versions.list_versions(state.model_sync, session)


@router.get("/versions/instances", response_model=list[InstanceRead])
async def list_instances(state: State, _user: Admin, session: DbSession) -> list[InstanceRead]:
    """The running instances and the model version each one reports it parses with."""
    rows, active = await versions.instances_and_active(state.model_sync, session)
    return [InstanceRead(id=r.id, host=r.host, pid=r.pid, engine=r.engine, version=r.version,
                         in_sync=active is None or r.version == active, this_instance=r.id == state.instance_id,
                         started_at=r.started_at, seen_at=r.seen_at) for r in rows]


@router.post("/versions/{version}/activate", response_model=list[VersionRead])
async def activate(version: str, state: State, user: Admin, session: DbSession) -> list[VersionRead]:
    """Switch a model version on; every new message is parsed by it at once (no restart), on every instance
    within `model_sync_seconds` even if Redis is down."""
    await versions.activate_version(state.model_sync, session, user, version)
    return await versions.list_versions(state.model_sync, session)


@router.post("/versions/rollback", response_model=list[VersionRead])
async def rollback(state: State, user: Admin, session: DbSession) -> list[VersionRead]:
    """Switch back to the version that was active before the current one."""
    await versions.rollback_version(state.model_sync, session, user)
    return await versions.list_versions(state.model_sync, session)


@router.get("/export")
async def export(session: DbSession, _user: Admin) -> Response:
    """Everything admins trained, as Rasa NLU YAML: intents (retrieval ones as group/name), examples with their
    entity markup and metadata, synonyms, regexes, lookups and the answers as responses. A database without
    intents answers 409 (there is nothing of the admin's to export)."""
    data = await service.export_data(session)
    return Response(dump_rasa_yaml(data), media_type="application/x-yaml",
                    headers={"Content-Disposition": 'attachment; filename="nlu.yml"'})


@router.post("/import")
async def import_rasa(request: Request, session: DbSession, user: Admin, state: State,
                      mode: Annotated[ImportMode | None, Query(
                          description="merge: add to the intents in the database; replace: delete every intent, "
                                      "synonym, regex and lookup first. Required when the database has intents.")]
                      = None,
                      replace: Annotated[bool, Query(description="Same as mode=replace (older clients)")] = False,
                      fmt: Annotated[UploadFormat, Query(alias="format", description="auto guesses from the text")]
                      = "auto",
                      dry_run: Annotated[bool, Query(description="Report what would be imported, write nothing")]
                      = False,
                      ) -> dict[str, Any]:
    """Import Rasa NLU data (request body): YAML 2.0/3.x, legacy JSON or Rasa 1.x Markdown (converted). Problems
    answer 422 with the line; a database with intents and no mode answers 409. The answer counts what was added
    and lists duplicates, conflicts, warnings and conversions; nothing is written on an error or a dry run."""
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise ValidationFailedError(f"the file is over {MAX_IMPORT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailedError(f"the file is not UTF-8 (byte {exc.start})") from exc
    try:
        data = loads(text, fmt, source="upload")
    except DataFormatError as exc:
        raise ValidationFailedError(str(exc), line=exc.line) from exc
    report = await service.import_data(session, data, source="import", mode="replace" if replace else mode,
                                       actor=user, dry_run=dry_run)
    if not dry_run:
        await state.catalog.reload(session)
    return report


@router.get("/suggestions", response_model=list[SuggestionRead])
async def list_suggestions(session: DbSession, _user: Admin,
                           status: SuggestionStatus | None = SuggestionStatus.pending) -> list[SuggestionRead]:
    return [SuggestionRead.model_validate(s) for s in await service.list_suggestions(session, status)]


@router.post("/suggestions/{suggestion_id}/accept", response_model=SuggestionRead)
async def accept(suggestion_id: IdPath, session: DbSession, user: Admin) -> SuggestionRead:
    """Add the message as a training example of the suggested intent (used by the next training)."""
    return SuggestionRead.model_validate(await service.review_suggestion(session, suggestion_id, True, user))


@router.post("/suggestions/{suggestion_id}/reject", response_model=SuggestionRead)
async def reject(suggestion_id: IdPath, session: DbSession, user: Admin) -> SuggestionRead:
    return SuggestionRead.model_validate(await service.review_suggestion(session, suggestion_id, False, user))


@corrections.post("/{message_id}/intent", response_model=SuggestionRead, status_code=201)
async def correct_intent(message_id: IdPath, body: SuggestionCreate, session: DbSession, user: Agent
                         ) -> SuggestionRead:
    """An agent corrects the intent of a customer message; an admin reviews it as a training example."""
    return SuggestionRead.model_validate(await service.suggest(session, message_id, body.intent, user))
