"""Console pages of the customer lifecycle: Admin → API keys, Admin → Order notices, and the customer page
(contracts, preferences and consent with its log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.console.render import render
from api.console.routes import redirect, validated
from api.console.security import ConsoleAdmin, ConsoleUser, CsrfChecked
from api.deps import DbSession, IdPath, State
from core.apikeys import service as api_keys
from core.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, Scope
from core.consent import service as consent
from core.consent.schemas import CHANNELS, PreferencesUpdate
from core.contracts import repository as contracts
from core.customers import service as customers
from core.i18n import LANGUAGES, translator
from core.orders import notices as order_notices

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


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: IdPath, session: DbSession, _user: ConsoleUser) -> Response:
    customer = await customers.get(session, customer_id)
    return render(request, "customer.html", {
        "customer": customer, "contracts": await contracts.for_customer(session, customer.id),
        "consent_log": await consent.consent_log(session, customer.id), "channels": CHANNELS,
        "languages": LANGUAGES})


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
