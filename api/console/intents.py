"""Admin → Intents: examples, answers, training with live progress, evaluation reports, model versions, agents'
suggested examples and Rasa YAML import/export, all over `core.nlu_admin.service` (the same rules as the API).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from api.console.charts import Bar
from api.console.render import SECURITY_HEADERS, render
from api.console.routes import redirect
from api.console.security import ConsoleAdmin, CsrfChecked
from api.deps import DbSession, IdPath, State
from core.decision.policy import IntentAction
from core.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from core.i18n import Translator, translator
from core.nlu_admin import actions, editing, service, versions
from core.nlu_admin.models import JobState, NluTrainingJob, SuggestionStatus
from core.nlu_admin.training import FINISHED
from core.routing import service as routing
from core.tickets.models import format_ticket_number
from core.users import service as users
from nlu.data import dump_rasa_yaml, loads
from nlu.errors import DataFormatError

router = APIRouter(prefix="/console/admin", include_in_schema=False)
INTENTS = "/console/admin/intents"
TRAINING = "/console/admin/training"
SUGGESTIONS = "/console/admin/suggestions"
NLU_DATA = "/console/admin/intents-data"
MAX_IMPORT_BYTES = 5_000_000
MAX_BATCH = 500  # examples pasted at once
FEW_EXAMPLES = 5  # per language: fewer is drawn as a warning


def intent_url(name: str) -> str:
    return f"{INTENTS}/{name}"


async def _pending_count(session: DbSession) -> int:
    return len(await service.list_suggestions(session, SuggestionStatus.pending))


async def _page(request: Request, session: DbSession, template: str, tab: str, context: dict[str, Any]) -> Response:
    """Every Intents page: the admin tabs, the NLU sub-tabs with the count of suggestions waiting."""
    return render(request, template, {"section": "intents", "tab": tab,
                                      "pending_count": await _pending_count(session), **context})


EXTRA_NAMES = 100  # synonyms, regexes and lookups shown per kind on the intents page
EXTRA_VALUES = 50  # values shown per name there


# --- intents -------------------------------------------------------------------------------------------


@router.get("/intents")
async def intents_page(request: Request, session: DbSession, _user: ConsoleAdmin) -> Response:
    intents = await service.list_intents(session)
    routes = await routing.list_routes(session)
    for item in intents:
        item["queue"] = routes.get(item["name"], routing.DEFAULT_TEAM)
        item["total"] = sum(item["examples"].values())
    teams = {t.slug: t.name for t in await users.list_teams(session)}
    effective = await actions.effective_actions(session, [i["name"] for i in intents])
    for item in intents:
        item["action"], item["action_declared"] = effective[item["name"]]
    jobs = await service.list_jobs(session, limit=1)
    bars = [Bar(i["name"], i["total"], tone="warn" if min(i["examples"].get(lang, 0) for lang in service.LANGUAGES)
                < FEW_EXAMPLES else "default") for i in intents]
    # A preview: a lookup table can hold 50,000 cities; the data page (/console/admin/intents-data) edits them all.
    extras, extra_names = await editing.preview(session, names=EXTRA_NAMES, values=EXTRA_VALUES)
    return await _page(request, session, "admin_intents.html", "intents", {
        "extras": extras, "extra_names": extra_names,
        "intents": intents, "teams": teams, "intent_bars": bars, "latest_job": jobs[0] if jobs else None,
        "default_queue": routing.DEFAULT_TEAM,
        "totals": {lang: sum(i["examples"].get(lang, 0) for i in intents) for lang in service.LANGUAGES}})


@router.post("/intents", dependencies=[CsrfChecked])
async def create_intent(session: DbSession, actor: ConsoleAdmin, name: Annotated[str, Form()] = "",
                        description: Annotated[str, Form()] = "", queue: Annotated[str, Form()] = "") -> Response:
    """A new intent, and the queue its tickets go to (chosen from the queues; none chosen: the default queue)."""
    if len(description) > 2000:
        raise ValidationFailedError("a description has at most 2000 characters")
    if queue:
        await users.team_by_slug(session, queue)  # an unknown queue is refused before anything is created
    intent = await service.create_intent(session, name.strip(), description.strip(), actor)
    if queue and queue != routing.DEFAULT_TEAM:
        await routing.route_to_queue(session, intent.name, queue, actor)
    return redirect(intent_url(intent.name), translator(actor.language)("intents.created", name=intent.name))


@router.get("/intents/{name:intent}")
async def intent_page(request: Request, name: str, session: DbSession, _user: ConsoleAdmin) -> Response:
    intent = await service.get_intent(session, name)
    routes = await routing.list_routes(session)
    by_lang = {lang: sum(1 for e in intent.examples if e.language == lang) for lang in service.LANGUAGES}
    action, declared = (await actions.effective_actions(session, [intent.name]))[intent.name]
    return await _page(request, session, "admin_intent.html", "intents", {
        "intent": intent, "answers": service.first_answers(intent.responses), "by_lang": by_lang,
        "variants": {lang: editing.variants_of(intent, lang) for lang in service.LANGUAGES},
        "markup": {e.id: editing.example_markup(e) for e in intent.examples},
        "queue": routes.get(intent.name, routing.DEFAULT_TEAM), "action": action, "action_declared": declared,
        "action_choices": list(IntentAction), "max_answer": service.MAX_ANSWER_CHARS,
        "segments": {e.id: entity_segments(e.text, e.entities or []) for e in intent.examples}})


def entity_segments(text: str, entities: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """An example cut into (text, entity label or None) pieces, so the page highlights the annotated spans."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for e in sorted(entities, key=lambda a: (a["start"], a["end"])):
        if e["start"] < pos:
            continue
        label = e["entity"] + "".join(f" {k}={e[k]}" for k in ("role", "group", "value") if e.get(k) is not None)
        out += [(text[pos:e["start"]], None), (text[e["start"]:e["end"]], label)]
        pos = e["end"]
    out.append((text[pos:], None))
    return [(t, label) for t, label in out if t]


@router.post("/intents/{name:intent}/action", dependencies=[CsrfChecked])
async def set_action(name: str, session: DbSession, actor: ConsoleAdmin,
                     action: Annotated[str, Form()] = "") -> Response:
    """The same rules as the API: an unknown action, or one the intent cannot have, is refused with the reason."""
    await service.get_intent(session, name)
    await actions.set_action(session, name, actions.parse_action(action), actor)
    return redirect(intent_url(name), translator(actor.language)("saved"))


@router.post("/intents/{name:intent}/delete", dependencies=[CsrfChecked])
async def delete_intent(name: str, session: DbSession, actor: ConsoleAdmin, state: State) -> Response:
    await service.delete_intent(session, name, actor)
    await session.flush()
    await state.catalog.reload(session)
    return redirect(INTENTS, translator(actor.language)("intents.deleted", name=name))


@router.post("/intents/{name:intent}/examples", dependencies=[CsrfChecked])
async def add_examples(name: str, session: DbSession, actor: ConsoleAdmin,
                       text: Annotated[str, Form()] = "") -> Response:
    """One example per line; lines the intent already has are skipped, not an error."""
    _ = translator(actor.language)
    lines: list[str] = []
    for line in text.splitlines():
        cleaned = " ".join(line.split())
        if cleaned and cleaned not in lines:
            lines.append(cleaned)
    if not lines:
        raise ValidationFailedError(_("intents.empty_example"))
    if len(lines) > MAX_BATCH:
        raise ValidationFailedError(_.ngettext("intents.too_many", MAX_BATCH))
    too_long = next((n for n, line in enumerate(lines, 1) if len(line) > service.MAX_EXAMPLE_CHARS), None)
    if too_long is not None:
        raise ValidationFailedError(_.ngettext("intents.too_long", service.MAX_EXAMPLE_CHARS, line=too_long))
    added = skipped = 0
    for line in lines:
        try:
            await service.add_example(session, name, line, actor)
            added += 1
        except ConflictError:  # raised before anything is written: the intent already has this example
            skipped += 1
    message = _.ngettext("intents.examples_added", added)
    if skipped:
        message += " " + _.ngettext("intents.examples_skipped", skipped)
    return redirect(intent_url(name), message)


@router.post("/intents/{name:intent}/examples/{example_id}/delete", dependencies=[CsrfChecked])
async def delete_example(name: str, example_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    intent = await service.get_intent(session, name)
    if not any(e.id == example_id for e in intent.examples):
        raise NotFoundError(f"example {example_id} is not an example of {name!r}")
    await service.delete_example(session, example_id, actor)
    return redirect(intent_url(name), translator(actor.language)("intents.example_deleted"))


@router.post("/intents/{name:intent}/answers", dependencies=[CsrfChecked])
async def set_answers(name: str, session: DbSession, actor: ConsoleAdmin, state: State,
                      ru: Annotated[str | None, Form()] = None, en: Annotated[str | None, Form()] = None,
                      remove: Annotated[str | None, Form(max_length=10)] = None) -> Response:
    """Set the answer of each language the form sends with a text (the page sends the languages that have no
    answer yet: an answer that exists is edited as variant 1 of its variants, in one place). `remove` (a language,
    the "Remove the answer" button) clears one, as does a blank answer: the intent then goes to humans in that
    language (or the other answer). A language sent empty or not sent stays as it is (FastAPI reads an empty form
    field as a missing one)."""
    _ = translator(actor.language)
    answers: dict[str, str | None] = {lang: text for lang, text in (("ru", ru), ("en", en)) if text is not None}
    if remove is not None:
        answers[remove] = ""
    with _in_words(_):
        await service.set_responses(session, name, answers, actor)
    await state.catalog.reload(session)
    return redirect(intent_url(name), _("saved"))


# --- synonyms, regexes, lookups, annotations and answer variants edited one by one ----------------------


@contextmanager
def _in_words(_: Translator) -> Iterator[None]:
    """A refusal of core.nlu_admin.editing said in the admin's language (the API keeps the English message)."""
    try:
        yield
    except DomainError as exc:
        reason = exc.details.get("reason")
        if reason:
            exc.message = _("nludata." + str(reason), **{k: v for k, v in exc.details.items() if k != "reason"})
        raise


MAX_DATA_ROWS = 500  # per kind on the page; a filter finds the rest of a big lookup table


@router.get("/intents-data")
async def nlu_data_page(request: Request, session: DbSession, _user: ConsoleAdmin, q: str = "") -> Response:
    """The data set's synonyms, regexes and lookup tables, every value with its own edit and delete form; `q`
    keeps the rows whose name or value contains it (case-insensitive)."""
    needle = " ".join(q.split())[:200]
    tables, totals = await editing.data_page(session, needle, MAX_DATA_ROWS)
    return await _page(request, session, "admin_nlu_data.html", "intents", {
        "tables": tables, "totals": totals, "limit": MAX_DATA_ROWS, "q": needle})


@router.post("/intents-data/items", dependencies=[CsrfChecked])
async def add_data_item(session: DbSession, actor: ConsoleAdmin, kind: Annotated[str, Form()] = "",
                        name: Annotated[str, Form()] = "", value: Annotated[str, Form()] = "") -> Response:
    _ = translator(actor.language)
    with _in_words(_):
        item = await editing.add_item(session, kind, name, value, actor)
    return redirect(f"{NLU_DATA}#{item.kind}", _("nludata.added", name=item.name, value=item.value))


@router.post("/intents-data/items/{item_id}", dependencies=[CsrfChecked])
async def update_data_item(item_id: IdPath, session: DbSession, actor: ConsoleAdmin,
                           name: Annotated[str, Form()] = "", value: Annotated[str, Form()] = "") -> Response:
    _ = translator(actor.language)
    with _in_words(_):
        item = await editing.update_item(session, item_id, name, value, actor)
    return redirect(f"{NLU_DATA}#{item.kind}", _("saved"))


@router.post("/intents-data/items/{item_id}/delete", dependencies=[CsrfChecked])
async def delete_data_item(item_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    _ = translator(actor.language)
    with _in_words(_):
        await editing.delete_item(session, item_id, actor)
    return redirect(NLU_DATA, _("nludata.deleted"))


@router.post("/intents/{name:intent}/examples/{example_id}/markup", dependencies=[CsrfChecked])
async def set_example_markup(name: str, example_id: IdPath, session: DbSession, actor: ConsoleAdmin,
                             markup: Annotated[str, Form()] = "") -> Response:
    """The example as Rasa markup: its entity annotations (and text) become what the admin wrote."""
    _ = translator(actor.language)
    with _in_words(_):
        example = await editing.set_example_markup(session, example_id, markup, actor, intent=name)
    return redirect(f"{intent_url(name)}#example-{example.id}",
                    _.ngettext("nludata.annotated", len(example.entities or ())))


async def _move_variants(session: DbSession, actor: ConsoleAdmin, state: State, name: str, language: str,
                         change: Any) -> Response:
    """Apply `change` (list of texts -> new list) to one language's variants, with the editing rules."""
    _ = translator(actor.language)
    with _in_words(_):
        service.check_language(language)
        intent = await service.get_intent(session, name, lock=True)  # `change` applies to what is held now
        texts = change([r.text for r in editing.variants_of(intent, language)])
        await editing.set_variants(session, name, language, texts, actor)
    await state.catalog.reload(session)
    return redirect(f"{intent_url(name)}#variants-{language}", _("saved"))


def _variant_index(intent_variants: list[str], index: int, _: Translator) -> int:
    if not 0 <= index < len(intent_variants):
        raise NotFoundError(_("nludata.no_variant", n=index + 1))
    return index


@router.post("/intents/{name:intent}/variants/{language}", dependencies=[CsrfChecked])
async def add_variant(name: str, language: str, session: DbSession, actor: ConsoleAdmin, state: State,
                      text: Annotated[str, Form()] = "") -> Response:
    return await _move_variants(session, actor, state, name, language, lambda texts: [*texts, text])


@router.post("/intents/{name:intent}/variants/{language}/{index}", dependencies=[CsrfChecked])
async def change_variant(name: str, language: str, index: int, session: DbSession, actor: ConsoleAdmin,
                         state: State, op: Annotated[str, Form()] = "save",
                         text: Annotated[str, Form()] = "", was: Annotated[str | None, Form()] = None) -> Response:
    """One variant (by its place, 0 the first): op save (its text), delete, up or down (reorder). `was`, the
    variant's text as the page showed it, refuses a change to a list someone else changed meanwhile."""
    _ = translator(actor.language)
    if op not in ("save", "delete", "up", "down"):
        raise ValidationFailedError(_("nludata.bad_op"))

    def change(texts: list[str]) -> list[str]:
        i = _variant_index(texts, index, _)
        if was is not None and texts[i] != was.strip():
            raise ConflictError(_("nludata.variant_changed"))
        out = list(texts)
        if op == "save":
            out[i] = text
        elif op == "delete":
            del out[i]
        else:
            j = i - 1 if op == "up" else i + 1
            if 0 <= j < len(out):
                out[i], out[j] = out[j], out[i]
        return out

    return await _move_variants(session, actor, state, name, language, change)


# --- training, reports, versions -----------------------------------------------------------------------


@dataclass
class VersionRow:
    version: str
    active: bool
    created_at: str
    n_examples: int | None
    n_intents: int
    threshold: float | None
    target_precision: float | None
    train_seconds: float | None
    cross_validation: dict[str, Any] = field(default_factory=dict)
    job_id: int | None = None


async def _versions(state: State, session: DbSession, jobs: list[NluTrainingJob]) -> list[VersionRow] | None:
    """Newest first, each linked to the job that trained it; None when the engine keeps its models itself."""
    saved = await versions.model_versions(state.model_sync, session)
    if saved is None:
        return None
    by_version = {j.version: j.id for j in jobs if j.version}
    return [VersionRow(version=v.version, active=v.active, created_at=(v.created_at or "")[:19].replace("T", " "),
                       n_examples=v.n_examples, n_intents=v.n_intents or 0, threshold=v.threshold,
                       target_precision=v.target_precision, train_seconds=v.train_seconds,
                       cross_validation=v.cross_validation, job_id=by_version.get(v.version))
            for v in saved]


@router.get("/training")
async def training_page(request: Request, session: DbSession, state: State, _user: ConsoleAdmin) -> Response:
    jobs = list(await service.list_jobs(session, limit=50))
    return await _page(request, session, "admin_training.html", "training", {
        "jobs": jobs, "versions": await _versions(state, session, jobs), "engine_name": state.nlu.current.name,
        "running": next((j for j in jobs if j.state not in FINISHED), None),
        "n_intents": await service.intent_count(session)})


@router.post("/training", dependencies=[CsrfChecked])
async def start_training(session: DbSession, actor: ConsoleAdmin, state: State,
                         activate: Annotated[str, Form()] = "") -> Response:
    _ = translator(actor.language)
    try:
        job = await service.create_job(session, actor, activate=activate == "on", now=state.clock.now())
    except ConflictError as exc:
        busy = exc.details.get("job_id")
        return redirect(f"{TRAINING}/jobs/{busy}" if busy else TRAINING, _("training.busy", job=busy or "?"),
                        "error")
    # The runner reads the job in its own session: it must be committed before the runner starts.
    await session.commit()
    state.trainer.start(job.id)
    return redirect(f"{TRAINING}/jobs/{job.id}", _("training.started", job=job.id))


def _job_status(job: NluTrainingJob) -> dict[str, Any]:
    return {"id": job.id, "state": job.state.value, "progress": job.progress, "stage": job.stage,
            "version": job.version, "error": job.error, "finished": job.state in FINISHED}


@router.get("/training/jobs/{job_id}/status")
async def job_status(job_id: IdPath, session: DbSession, _user: ConsoleAdmin) -> Response:
    """What the job page polls while training runs (the job row is the shared state, see TrainingRunner)."""
    job = await service.get_job(session, job_id)
    return JSONResponse(_job_status(job), headers=SECURITY_HEADERS)


# Below these, a held-out score says little: 1.00 on three examples is luck as much as quality.
SMALL_HOLDOUT = 30
SMALL_INTENT_SUPPORT = 5


def _support(metrics: dict[str, Any]) -> int | None:
    value = metrics.get("support")
    return int(value) if isinstance(value, int | float) else None


def _report_view(report: dict[str, Any]) -> dict[str, Any]:
    """The parts of a job's report the page draws, with per-intent rows sorted worst first."""
    holdout = report.get("holdout") or {}
    per_intent = holdout.get("per_intent") or {}
    rows = sorted(((name, m) for name, m in per_intent.items() if isinstance(m, dict)),
                  key=lambda item: (item[1].get("f1") or 0.0, item[0]))
    pairs = [p for p in holdout.get("confused_pairs") or [] if isinstance(p, list | tuple) and len(p) == 3]
    pairs = pairs[:15]
    support = {name: count for name, m in rows if (count := _support(m)) is not None}
    held_out = sum(support.values()) if support else None
    return {"held_out": held_out, "small_sample": held_out is not None and held_out < SMALL_HOLDOUT,
            "small_holdout": SMALL_HOLDOUT, "small_support": SMALL_INTENT_SUPPORT,
            "few": {name for name, count in support.items() if count < SMALL_INTENT_SUPPORT},
            "holdout": holdout, "per_intent": rows, "pairs": pairs,
            "pairs_bars": [Bar(f"{true} → {predicted}", float(n), tone="danger") for true, predicted, n in pairs],
            "cv": report.get("cross_validation") or {}, "skipped": holdout.get("skipped"),
            "entities": sorted(((name, m) for name, m in ((report.get("cross_validation") or {}).get("entities")
                                                          or {}).items() if isinstance(m, dict)),
                               key=lambda item: (item[0] == "micro", item[0]))}


@router.get("/training/jobs/{job_id}")
async def job_page(request: Request, job_id: IdPath, session: DbSession, state: State,
                   _user: ConsoleAdmin) -> Response:
    job = await service.get_job(session, job_id)
    rows = await _versions(state, session, [job]) if job.state == JobState.succeeded else None
    version = next((v for v in rows or [] if v.version == job.version), None)
    return await _page(request, session, "admin_job.html", "training", {
        "job": job, "status": _job_status(job), "view": _report_view(job.report or {}), "version": version,
        "target_precision": version.target_precision if version else None})


@router.post("/training/versions/{version}/activate", dependencies=[CsrfChecked])
async def activate_version(version: str, session: DbSession, actor: ConsoleAdmin, state: State) -> Response:
    await versions.activate_version(state.model_sync, session, actor, version)
    return redirect(TRAINING, translator(actor.language)("training.activated", version=version))


@router.post("/training/rollback", dependencies=[CsrfChecked])
async def rollback(session: DbSession, actor: ConsoleAdmin, state: State) -> Response:
    previous = await versions.rollback_version(state.model_sync, session, actor)
    return redirect(TRAINING, translator(actor.language)("training.rolled_back", version=previous))


# --- agents' suggestions -------------------------------------------------------------------------------


@router.get("/suggestions")
async def suggestions_page(request: Request, session: DbSession, _user: ConsoleAdmin) -> Response:
    pending = await service.list_suggestions(session, SuggestionStatus.pending)
    recent = [s for s in await service.list_suggestions(session, None, limit=30)
              if s.status != SuggestionStatus.pending]
    people = {u.id: u for u in await users.list_users(session)}
    return await _page(request, session, "admin_suggestions.html", "suggestions",
                       {"pending": pending, "recent": recent, "people": people})


@router.get("/suggestions/{suggestion_id}/ticket")
async def suggestion_ticket(suggestion_id: IdPath, session: DbSession, _user: ConsoleAdmin) -> Response:
    """The ticket the suggested message came from."""
    ticket_id = await service.suggestion_ticket_id(session, suggestion_id)
    return redirect(f"/console/tickets/{format_ticket_number(ticket_id)}")


@router.post("/suggestions/{suggestion_id}", dependencies=[CsrfChecked])
async def review_suggestion(suggestion_id: IdPath, session: DbSession, actor: ConsoleAdmin,
                            decision: Annotated[str, Form()] = "") -> Response:
    if decision not in ("accept", "reject"):
        raise ValidationFailedError("decision is accept or reject")
    suggestion = await service.review_suggestion(session, suggestion_id, decision == "accept", actor)
    _ = translator(actor.language)
    return redirect(SUGGESTIONS, _("suggestions.accepted", intent=suggestion.intent) if decision == "accept"
                    else _("suggestions.rejected"))


# --- Rasa YAML -----------------------------------------------------------------------------------------


@router.post("/intents-data/import", dependencies=[CsrfChecked])
async def import_yaml(session: DbSession, actor: ConsoleAdmin, state: State,
                      file: Annotated[UploadFile | None, File()] = None,
                      mode: Annotated[str, Form()] = "") -> Response:
    _ = translator(actor.language)
    if file is None or not file.filename:
        raise ValidationFailedError(_("import.no_file"))
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise ValidationFailedError(_("import.too_big", limit=MAX_IMPORT_BYTES // 1_000_000))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailedError(_("import.not_utf8", byte=exc.start)) from exc
    name = file.filename[-100:]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    try:
        data = loads(text, suffix if suffix in ("yml", "yaml", "json", "md") else "auto", source=name)
    except DataFormatError as exc:
        raise ValidationFailedError(_("import.bad_yaml", error=str(exc))) from exc
    if not data.examples and not data.responses:
        raise ValidationFailedError(_("import.empty", name=name))
    if mode not in ("merge", "replace"):
        raise ValidationFailedError(_("import.choose_mode"))
    report = await service.import_data(session, data, source="import", mode=mode, actor=actor)
    await state.catalog.reload(session)
    notes = [*report["conversions"], *report["duplicates"][:20], *report["conflicts"][:20]]
    return redirect(INTENTS, _("import.done", **{k: report[k] for k in ("intents", "examples", "responses")})
                    + " " + _("import.extras", synonyms=report["synonyms"], regexes=report["regexes"],
                              lookups=report["lookups"], duplicates=len(report["duplicates"]),
                              conflicts=len(report["conflicts"]))
                    + ("" if not notes else " " + " · ".join(notes))[:600])


@router.get("/intents-data/export")
async def export_yaml(session: DbSession, _user: ConsoleAdmin) -> Response:
    data = await service.export_data(session)
    return Response(dump_rasa_yaml(data), media_type="application/x-yaml",
                    headers={**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="nlu.yml"'})
