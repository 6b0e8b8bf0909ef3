"""Console pages of the customer lifecycle: Admin → API keys, Admin → Order notices, and the customer page
(contracts, preferences and consent with its log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.console.render import render
from api.console.routes import redirect, validated
from api.console.security import ConsoleAdmin, ConsoleSupervisor, ConsoleUser, CsrfChecked
from api.deps import DbSession, IdPath, State
from api.routers.customers import archive_response
from core.apikeys import service as api_keys
from core.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, Scope
from core.consent import service as consent
from core.consent.schemas import CHANNELS, PreferencesUpdate
from core.contracts import repository as contracts
from core.customers import service as customers
from core.db.base import parse_id
from core.errors import ValidationFailedError
from core.i18n import LANGUAGES, translator
from core.orders import notices as order_notices
from core.privacy import service as privacy

router = APIRouter(prefix="/console", include_in_schema=False)
KEYS_PAGE = "/console/admin/api-keys"
NOTICES_PAGE = "/console/admin/order-notices"


def _env_key(state: State) -> str | None:
    key = state.settings.channels.rest.api_key
    return key.get_secret_value() if key is not None else None


async def _keys_page(request: Request, session: DbSession, state: State, created: ApiKeyCreated | None) -> Response:
    return render(request, "admin_api_keys.html", {
        "section": "api-keys", "keys": await api_keys.list_keys(session, _env_key(state)),
        "scopes": [s.value for s in Scope], "created": created})


@router.get("/admin/api-keys")
async def keys_page(request: Request, session: DbSession, state: State, _user: ConsoleAdmin) -> Response:
    return await _keys_page(request, session, state, None)


@router.post("/admin/api-keys", dependencies=[CsrfChecked])
async def create_key(request: Request, session: DbSession, state: State, actor: ConsoleAdmin) -> Response:
    form = await request.form()
    body = validated(ApiKeyCreate, name=str(form.get("name", "")),
                     scopes=[str(s) for s in form.getlist("scopes")])
    created = await api_keys.create(session, body, actor)
    # Shown in this answer only (never in a redirect's URL or flash cookie): the page that follows has no key.
    return await _keys_page(request, session, state, created)


@router.post("/admin/api-keys/{key_id}/revoke", dependencies=[CsrfChecked])
async def revoke_key(key_id: IdPath, session: DbSession, state: State, actor: ConsoleAdmin) -> Response:
    await api_keys.revoke(session, key_id, actor, state.clock.now())
    if state.api_keys is not None:
        state.api_keys.forget()
    return redirect(KEYS_PAGE, translator(actor.language)("apikeys.revoked_done"))


@router.get("/admin/order-notices")
async def notices_page(request: Request, session: DbSession, _user: ConsoleAdmin, edit: str | None = None
                       ) -> Response:
    templates = await order_notices.list_templates(session)
    return render(request, "admin_order_notices.html", {
        "section": "order-notices", "templates": templates,
        "editing": next((t for t in templates if t.status == edit), None)})


@router.post("/admin/order-notices", dependencies=[CsrfChecked])
async def save_notice(session: DbSession, state: State, actor: ConsoleAdmin, status: Annotated[str, Form()] = "",
                      internal: Annotated[str, Form()] = "", text_en: Annotated[str, Form()] = "",
                      text_ru: Annotated[str, Form()] = "") -> Response:
    await order_notices.put_template(session, status, internal=internal == "on", text_en=text_en.strip() or None,
                                     text_ru=text_ru.strip() or None, actor=actor, now=state.clock.now())
    return redirect(NOTICES_PAGE, translator(actor.language)("saved"))


DUPLICATES_PAGE = "/console/customers/duplicates"


@router.get("/customers/duplicates")
async def duplicates_page(request: Request, session: DbSession, _user: ConsoleSupervisor,
                          after: Annotated[str | None, Query(max_length=400)] = None) -> Response:
    """Suggested duplicates for a supervisor: merge them, or say they are different people."""
    cursor = None
    if after and ":" in after:
        kind, _, key = after.partition(":")
        cursor = (kind, key)
    groups, next_cursor = await customers.duplicates(session, limit=50, after=cursor)
    return render(request, "customer_duplicates.html", {
        "groups": groups, "next_cursor": f"{next_cursor[0]}:{next_cursor[1]}" if next_cursor else None})


@router.post("/customers/duplicates/dismiss", dependencies=[CsrfChecked])
async def dismiss_duplicate(session: DbSession, actor: ConsoleSupervisor, a: Annotated[int, Form()],
                            b: Annotated[int, Form()]) -> Response:
    await customers.dismiss_duplicate(session, a, b, actor)
    return redirect(DUPLICATES_PAGE, translator(actor.language)("customer.dismissed_done"))


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: IdPath, session: DbSession, user: ConsoleUser) -> Response:
    """The customer's full profile: every opening is audited (`customer.view`)."""
    customer = await customers.get(session, customer_id)
    await privacy.view_profile(session, customer.id, user, where="console")
    return render(request, "customer.html", {
        "customer": customer, "contracts": await contracts.for_customer(session, customer.id),
        "consent_log": await consent.consent_log(session, customer.id), "channels": CHANNELS,
        "languages": LANGUAGES, "merges": await customers.merges(session, customer.id),
        "tickets": await customers.tickets(session, customer.id)})


@router.post("/customers/{customer_id}/merge", dependencies=[CsrfChecked])
async def merge_customer(customer_id: IdPath, session: DbSession, actor: ConsoleSupervisor,
                         source: Annotated[str, Form()] = "") -> Response:
    """Merge another customer (by id) into this one."""
    source_id = parse_id(source.strip().lstrip("#"))
    if source_id is None:
        raise ValidationFailedError("give the number of the customer to merge into this one")
    await customers.merge(session, source_id, customer_id, actor)
    return redirect(f"/console/customers/{customer_id}", translator(actor.language)("customer.merged_done"))


@router.post("/customers/merges/{merge_id}/unmerge", dependencies=[CsrfChecked])
async def unmerge(merge_id: IdPath, session: DbSession, actor: ConsoleSupervisor) -> Response:
    record = await customers.unmerge(session, merge_id, actor)
    return redirect(f"/console/customers/{record.source_id}", translator(actor.language)("customer.unmerged_done"))


@router.get("/customers/{customer_id}/export.zip")
async def export_archive(customer_id: IdPath, session: DbSession, state: State, actor: ConsoleAdmin) -> Response:
    """The export archive (JSON and files), as the API gives it; audited."""
    archive = await privacy.export_archive(session, state.files, customer_id, actor)
    await session.commit()
    return archive_response(archive, customer_id)


@router.post("/customers/{customer_id}/erase", dependencies=[CsrfChecked])
async def erase(customer_id: IdPath, session: DbSession, state: State, actor: ConsoleAdmin,
                confirm: Annotated[str, Form()] = "") -> Response:
    """Erase the customer's personal data (the form asks to type the customer's number to confirm)."""
    if confirm.strip().lstrip("#") != str(customer_id):
        raise ValidationFailedError("type the customer's number to confirm the erasure")
    erasure = await customers.erase(session, customer_id, actor)
    await session.commit()  # the files go once nothing refers to them any more
    for key in erasure.files:
        await state.files.delete(key)
    await customers.after_erasure(session)
    return redirect(f"/console/customers/{customer_id}", translator(actor.language)("customer.erased_done"))


@router.post("/customers/{customer_id}/preferences", dependencies=[CsrfChecked])
async def save_preferences(customer_id: IdPath, session: DbSession, state: State, actor: ConsoleUser,
                           preferred_channel: Annotated[str, Form()] = "", language: Annotated[str, Form()] = "",
                           quiet_from: Annotated[str, Form()] = "", quiet_until: Annotated[str, Form()] = "",
                           time_zone: Annotated[str, Form()] = "", consent_notices: Annotated[str, Form()] = "",
                           consent_marketing: Annotated[str, Form()] = "",
                           note: Annotated[str, Form()] = "") -> Response:
    # A form sends every field: empty ones clear the preference (the defaults apply), unticked boxes withdraw.
    body = validated(PreferencesUpdate, preferred_channel=preferred_channel or None, language=language or None,
                     quiet_from=quiet_from or None, quiet_until=quiet_until or None,
                     time_zone=time_zone.strip() or None,
                     consent_notices=consent_notices == "on", consent_marketing=consent_marketing == "on",
                     note=note.strip())
    await consent.update(session, customer_id, body, source="console", actor=actor, now=state.clock.now())
    return redirect(f"/console/customers/{customer_id}", translator(actor.language)("saved"))
