"""Admin → Channels: mailboxes, the Telegram bot, the web chat (VK, WhatsApp) set up through forms, over
`channels.setup.service` (the API's rules and reasons). Secrets are never drawn again: their field says whether one
is set, and left empty keeps it. A refused form is drawn again with the reason and the values as typed (secrets
excepted)."""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from api.console.render import render
from api.console.routes import redirect
from api.console.security import ConsoleAdmin, CsrfChecked
from api.console.sla_admin import FormError, _undo
from api.deps import DbSession, IdPath, State
from api.routers.channel_setup import box_of, context_of
from channels.setup import service
from channels.setup.kinds import KINDS, Kind, flatten, put_path, unwrap
from channels.setup.probe import probe
from channels.setup.schemas import ChannelConfigCreate, ChannelConfigUpdate, ProbeRead
from core.channel_configs.models import ChannelConfig
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.i18n import translator
from core.users.models import User

router = APIRouter(prefix="/console/admin/channels", include_in_schema=False)
CHANNELS = "/console/admin/channels"


def _kind(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        raise NotFoundError(f"no channel kind {name!r}")
    return kind


def _unusable(row: ChannelConfig, actor: User) -> Response | None:
    """A row of a kind this version does not know (after a downgrade) can only be deleted: off to that page."""
    if row.kind in KINDS:
        return None
    _ = translator(actor.language)
    return redirect(f"{CHANNELS}/{row.id}/delete", _("chsetup.unknown_kind", kind=row.kind), "error")


def _form_values(kind: Kind, form: FormData) -> dict[str, str | bool]:
    """The posted fields as the page draws them again (secrets never go back into the page)."""
    values: dict[str, str | bool] = {"name": str(form.get("name", "")).strip(), "enabled": form.get("enabled") == "on"}
    for f in kind.form:
        values[f.path] = form.get(f.path) == "on" if f.widget == "check" else str(form.get(f.path, "")).strip()
    return values


def _settings_of(kind: Kind, values: dict[str, str | bool], base: dict[str, Any]) -> dict[str, Any]:
    """Form values over the stored settings (fields not on the form keep their values); an empty field is unset,
    an SMTP server without a host is none."""
    settings = copy.deepcopy(base)
    for f in kind.form:
        value = values[f.path]
        if f.widget == "list":
            parsed: Any = [v for v in re.split(r"[,\s]+", str(value)) if v]
        elif f.widget == "check":
            parsed = bool(value)
        else:
            parsed = value if value != "" else None
        put_path(settings, f.path, parsed, create=True)
    if not kind.single:
        smtp = settings.get("smtp")
        if isinstance(smtp, dict):
            if not smtp.get("host"):
                settings["smtp"] = None
            else:
                settings["smtp"] = {k: v for k, v in smtp.items() if v is not None}
    # An empty field takes the model's default rather than null (null only where the model allows it).
    return _drop_nones(settings)


def _drop_nones(settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if v is not None}
        elif value is not None or key == "smtp":
            out[key] = value
    return out


def _values_of(kind: Kind, row: ChannelConfig) -> dict[str, str | bool]:
    flat = flatten(row.settings)
    values: dict[str, str | bool] = {"name": row.name, "enabled": row.enabled}
    for f in kind.form:
        value = flat.get(f.path)
        if f.widget == "secret":
            values[f.path] = ""
        elif f.widget == "check":
            values[f.path] = bool(value)
        elif f.widget == "list":
            values[f.path] = ", ".join(str(v) for v in value or [])
        else:
            values[f.path] = "" if value is None else str(value)
    return values


def _defaults(kind: Kind) -> dict[str, str | bool]:
    """A new configuration's form: the model's defaults (in a section that may be left out, such as a mailbox's
    SMTP server, only those of choices and numbers: its texts stay empty, an empty host meaning no server)."""
    values: dict[str, str | bool] = {"name": "", "enabled": True}
    for f in kind.form:
        *sections, leaf = f.path.split(".")
        model: type[BaseModel] | None = kind.model
        optional = False
        for section in sections:
            info = model.model_fields[section] if model is not None else None
            model = next((a for a in unwrap(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)),
                         None) if info is not None else None
            optional = optional or (info is not None and not info.is_required())
        field = model.model_fields.get(leaf) if model is not None else None
        default: Any = None
        if field is not None and not field.is_required() and not (optional and f.widget in ("text", "secret")):
            default = field.get_default(call_default_factory=True)
        if f.widget == "secret":
            values[f.path] = ""
        elif f.widget == "check":
            values[f.path] = bool(default)
        elif f.widget == "list":
            values[f.path] = ", ".join(default or [])
        else:
            values[f.path] = "" if default is None or hasattr(default, "get_secret_value") else str(default)
    return values


def _error_of(exc: ValidationFailedError | ConflictError) -> FormError:
    errors = exc.details.get("errors")
    field = None
    if isinstance(errors, list) and errors:
        field = str(errors[0].get("field", "")) or None
    return FormError(exc.message, field)


async def _page(request: Request, state: State, kind: Kind, values: dict[str, Any], row: ChannelConfig | None,
                error: FormError | None = None, result: ProbeRead | None = None, status_code: int = 200
                ) -> Response:
    shown = service.read(row, box_of(state), state.settings.channels) if row is not None else None
    return render(request, "admin_channel_form.html", {
        "section": "channels", "kind": kind, "values": values, "row": row, "error": error, "result": result,
        "secrets_set": shown.secrets_set if shown else [], "in_use": shown.in_use if shown else True,
    }, status_code=status_code)


@router.get("/new")
async def new_channel(request: Request, state: State, _user: ConsoleAdmin, kind: str = "email") -> Response:
    k = _kind(kind)
    return await _page(request, state, k, _defaults(k), None)


@router.post("/new", dependencies=[CsrfChecked])
async def create_channel(request: Request, session: DbSession, state: State, actor: ConsoleAdmin,
                         kind: str = "email") -> Response:
    k = _kind(kind)
    _ = translator(actor.language)
    values = _form_values(k, await request.form())
    try:
        body = _body(ChannelConfigCreate, kind=k.name, name=values["name"], enabled=values["enabled"],
                     settings=_settings_of(k, values, {}))
        row = await service.create(session, body, actor, box_of(state), state.settings.channels)
    except (ValidationFailedError, ConflictError) as exc:
        await _undo(session, actor)
        return await _page(request, state, k, _without_secrets(k, values), None, _error_of(exc),
                           status_code=exc.status_code)
    return redirect(f"{CHANNELS}/{row.id}", _("chsetup.saved", name=row.name))


def _body(model: Any, **values: Any) -> Any:
    try:
        return model(**values)
    except ValidationError as exc:
        raise service.failed(exc) from None


def _without_secrets(kind: Kind, values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("" if any(f.path == k and f.widget == "secret" for f in kind.form) else v) for k, v in values.items()}


@router.get("/{config_id}")
async def channel_page(request: Request, config_id: IdPath, session: DbSession, state: State, actor: ConsoleAdmin
                       ) -> Response:
    row = await service.get(session, config_id)
    if (gone := _unusable(row, actor)) is not None:
        return gone
    kind = _kind(row.kind)
    return await _page(request, state, kind, _values_of(kind, row), row)


@router.post("/{config_id}", dependencies=[CsrfChecked])
async def update_channel(request: Request, config_id: IdPath, session: DbSession, state: State, actor: ConsoleAdmin
                         ) -> Response:
    row = await service.get(session, config_id)
    if (gone := _unusable(row, actor)) is not None:
        return gone
    kind = _kind(row.kind)
    _ = translator(actor.language)
    values = _form_values(kind, await request.form())
    try:
        body = _body(ChannelConfigUpdate, name=values["name"], enabled=values["enabled"],
                     settings=_settings_of(kind, values, row.settings))
        row = await service.update(session, config_id, body, actor, box_of(state), state.settings.channels)
    except (ValidationFailedError, ConflictError) as exc:
        await _undo(session, actor)
        return await _page(request, state, kind, _without_secrets(kind, values),
                           await service.get(session, config_id), _error_of(exc), status_code=exc.status_code)
    return redirect(f"{CHANNELS}/{row.id}", _("chsetup.saved", name=row.name))


@router.post("/{config_id}/switch", dependencies=[CsrfChecked])
async def switch_channel(request: Request, config_id: IdPath, session: DbSession, state: State, actor: ConsoleAdmin
                         ) -> Response:
    """Switch a configuration on or off from the list (the `enabled` field says which)."""
    form = await request.form()
    enabled = form.get("enabled") == "on"
    _ = translator(actor.language)
    if (gone := _unusable(await service.get(session, config_id), actor)) is not None:
        return gone
    try:
        row = await service.update(session, config_id, ChannelConfigUpdate(enabled=enabled), actor, box_of(state),
                                   state.settings.channels)
    except ValidationFailedError as exc:  # incomplete settings cannot be switched on: say why on its page
        await _undo(session, actor)
        row = await service.get(session, config_id)
        kind = _kind(row.kind)
        return await _page(request, state, kind, _values_of(kind, row), row, _error_of(exc), status_code=422)
    done = _("chsetup.switched_on", name=row.name) if row.enabled else _("chsetup.switched_off", name=row.name)
    return redirect(CHANNELS, done)


@router.post("/{config_id}/test", dependencies=[CsrfChecked])
async def probe_connection(request: Request, config_id: IdPath, session: DbSession, state: State,
                          actor: ConsoleAdmin) -> Response:
    """Log in with the saved configuration and draw the result on its page."""
    row = await service.get(session, config_id)
    if (gone := _unusable(row, actor)) is not None:
        return gone
    kind = _kind(row.kind)
    try:
        model = service.probe_model(row, box_of(state))
    except ValidationFailedError as exc:
        return await _page(request, state, kind, _values_of(kind, row), row, _error_of(exc), status_code=422)
    result = await probe(model, context_of(state))
    return await _page(request, state, kind, _values_of(kind, row), row, result=result)


@router.get("/{config_id}/delete")
async def confirm_delete(request: Request, config_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    row = await service.get(session, config_id)
    _ = translator(actor.language)
    return render(request, "admin_confirm_delete.html", {
        "section": "channels", "question": _("chsetup.delete_question", name=row.name),
        "detail": _("chsetup.delete_detail"), "action": f"{CHANNELS}/{row.id}/delete",
        "back": f"{CHANNELS}/{row.id}", "error": None})


@router.post("/{config_id}/delete", dependencies=[CsrfChecked])
async def delete_channel(config_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    row = await service.get(session, config_id)
    name = row.name
    await service.delete(session, config_id, actor)
    return redirect(CHANNELS, translator(actor.language)("chsetup.deleted", name=name))
