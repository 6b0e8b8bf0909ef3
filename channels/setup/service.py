"""Channel configurations: create, change, delete (validated by the kind's settings model, secrets sealed, every
change audited, every instance told); the rows as the reconciler reads them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.config import ChannelsSettings
from channels.email.settings import ImapMailboxSettings
from channels.setup.kinds import (
    KINDS,
    Kind,
    RowValue,
    env_owns,
    env_owns_mailbox,
    env_sends_mail,
    flatten,
    get_path,
    put_path,
    split_secrets,
    unknown_keys,
    with_secrets,
)
from channels.setup.schemas import ChannelConfigCreate, ChannelConfigRead, ChannelConfigUpdate
from core.audit import service as audit
from core.channel_configs import repository
from core.channel_configs.models import ChannelConfig
from core.channel_configs.secrets import SecretBox, UnreadableSecrets
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.events import Topic, emit
from core.users.models import User

ENTITY = "channel_config"


def reasons_of(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())


def failed(exc: ValidationError) -> ValidationFailedError:
    """A model's refusal as the 422 naming each bad field (the API's, the console's and the settings' alike)."""
    return ValidationFailedError(reasons_of(exc), errors=[
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()])


MAX_TEXT = 2000  # any one text of a channel's settings (a host name, a URL, a token)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_texts(value: Any, path: str = "") -> None:
    """No control characters (a NUL, a line break in a host or header value) and no novel-length texts."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        if len(value) > 100:
            raise ValidationFailedError(f"{path}: at most 100 items", field=path)
        for item in value:
            _check_texts(item, path)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValidationFailedError(f"{path}: at most {MAX_TEXT} characters", field=path,
                                        errors=[{"field": path, "message": "too long"}])
        if _CONTROL.search(value):
            raise ValidationFailedError(f"{path}: control characters are not allowed", field=path,
                                        errors=[{"field": path, "message": "control characters"}])


def validate(kind: Kind, name: str, enabled: bool, settings: dict[str, Any]) -> BaseModel:
    """The settings (secrets in place) as the kind's model, or a 422 naming each bad field."""
    _check_texts(settings)
    unknown = unknown_keys(kind.known, settings)
    if unknown:
        raise ValidationFailedError(f"{', '.join(unknown)}: not a setting of {kind.name}", field=unknown[0],
                                    errors=[{"field": p, "message": "unknown setting"} for p in unknown])
    values = dict(settings)
    if kind.single:
        values["enabled"] = enabled
    else:
        values["name"] = name  # a mailbox's checkpoint is kept under its row's name
    try:
        return kind.model.model_validate(values)
    except ValidationError as exc:
        raise failed(exc) from None


def probe_model(row: ChannelConfig, box: SecretBox) -> BaseModel:
    """The stored configuration, secrets opened, as its kind's model switched on: what a connection test tries
    (a row switched off is tested as it would run). A 422 when it cannot be used."""
    try:
        settings = with_secrets(row.settings, box.open(row.secrets))
    except UnreadableSecrets as exc:
        raise ValidationFailedError(str(exc)) from None
    return validate(kind_of(row), row.name, True, settings)


def _check_replies(model: BaseModel, env: ChannelsSettings) -> None:
    """A mailbox's replies need an SMTP server: its own, or the environment's e-mail channel's (never the
    channel's default settings, which would send to 127.0.0.1)."""
    if isinstance(model, ImapMailboxSettings) and model.smtp is None and not env_sends_mail(env):
        message = "a mailbox needs an SMTP server for its replies (the environment's e-mail channel has none)"
        raise ValidationFailedError(f"smtp.host: {message}", field="smtp.host",
                                    errors=[{"field": "smtp.host", "message": message}])


def read(row: ChannelConfig, box: SecretBox, env: ChannelsSettings) -> ChannelConfigRead:
    try:
        secrets = sorted(box.open(row.secrets))
    except UnreadableSecrets:
        secrets = []
    kind = KINDS.get(row.kind)
    problem = None if kind is not None else unknown_kind(row.kind)
    in_use = kind is not None and not (kind.single and env_owns(env, row.kind)) and not (
        not kind.single and env_owns_mailbox(env, row.name))
    return ChannelConfigRead(id=row.id, kind=row.kind, name=row.name, enabled=row.enabled, settings=row.settings,
                             secrets_set=secrets, version=row.version, updated_at=row.updated_at,
                             updated_by_id=row.updated_by_id, in_use=in_use, problem=problem)


def unknown_kind(name: str) -> str:
    return f"unknown kind {name!r} (saved by another version of Switchboard): it can only be deleted"


def kind_of(row: ChannelConfig) -> Kind:
    """The row's kind, or a 422 saying the row is unusable (a kind this version does not know)."""
    kind = KINDS.get(row.kind)
    if kind is None:
        raise ValidationFailedError(unknown_kind(row.kind), field="kind", reason="unknown_kind")
    return kind


async def get(session: AsyncSession, config_id: int) -> ChannelConfig:
    row = await repository.get(session, config_id)
    if row is None:
        raise NotFoundError(f"no channel configuration {config_id}")
    return row


async def _check_free(session: AsyncSession, env: ChannelsSettings, kind: Kind, name: str,
                      own_id: int | None = None) -> None:
    if kind.single and env_owns(env, kind.name):
        raise ConflictError(f"the {kind.name} channel is configured by the environment; change it there",
                            reason="environment")
    if not kind.single and env_owns_mailbox(env, name):
        raise ConflictError(f"the environment already has a mailbox named {name!r}", reason="environment")
    await repository.lock_kind(session, kind.name)
    for other in await repository.by_kind(session, kind.name):
        if other.id == own_id:
            continue
        if kind.single:
            raise ConflictError(f"the {kind.name} channel is already set up ({other.name!r}); edit that one",
                                reason="exists", id=other.id)
        if other.name == name:
            raise ConflictError(f"a mailbox named {name!r} already exists", reason="exists", id=other.id)


def _changed(session: AsyncSession, row: ChannelConfig) -> None:
    emit(session, Topic.CHANNEL_CONFIGS, {"id": row.id, "version": row.version})


async def create(session: AsyncSession, body: ChannelConfigCreate, actor: User, box: SecretBox,
                 env: ChannelsSettings) -> ChannelConfig:
    kind = KINDS[body.kind]
    model = validate(kind, body.name, body.enabled, body.settings)
    _check_replies(model, env)
    await _check_free(session, env, kind, body.name)
    settings, secrets = split_secrets(kind, model)
    row = ChannelConfig(kind=kind.name, name=body.name, enabled=body.enabled, settings=settings,
                        secrets=box.seal(secrets), version=1, updated_by_id=actor.id)
    session.add(row)
    await _flush(session, kind, body.name)
    audit.record(session, actor, "channel_config.create", ENTITY, row.id, kind=kind.name, name=row.name,
                 enabled=row.enabled, fields=sorted([*flatten(settings), *secrets]))
    _changed(session, row)
    return row


async def update(session: AsyncSession, config_id: int, body: ChannelConfigUpdate, actor: User, box: SecretBox,
                 env: ChannelsSettings) -> ChannelConfig:
    row = await get(session, config_id)
    kind = kind_of(row)
    unknown = [p for p in body.clear_secrets if p not in kind.secret_paths]
    if unknown:
        raise ValidationFailedError(f"not secrets of {kind.name}: {', '.join(unknown)}", field="clear_secrets")
    try:
        stored = box.open(row.secrets)
    except UnreadableSecrets as exc:
        stored = {}
        if not body.settings:
            raise ValidationFailedError(f"{exc}; enter the secrets again") from None
    name = body.name if body.name is not None else row.name
    if not kind.single and name != row.name:
        message = ("a mailbox cannot be renamed: its read position and its mail are kept under its name; "
                   "add a new mailbox instead")
        raise ValidationFailedError(f"name: {message}", field="name", errors=[{"field": "name", "message": message}])
    enabled = body.enabled if body.enabled is not None else row.enabled
    given = body.settings if body.settings is not None else with_secrets(row.settings, {})
    # A secret left empty keeps its stored value ("set - leave empty to keep"), unless it is cleared.
    kept = {p: v for p, v in stored.items() if p not in body.clear_secrets}
    merged = with_secrets(given, {})
    for path, value in kept.items():
        current = get_path(merged, path)
        if current in (None, ""):
            # Only into a section still given: a cleared SMTP server must not come back as {"password": ...}.
            put_path(merged, path, value, create=False)
    for path in body.clear_secrets:
        put_path(merged, path, None, create=False)
    for path in kind.secret_paths:  # an empty secret typed in means "not given"
        if get_path(merged, path) == "":
            put_path(merged, path, None, create=False)
    model = validate(kind, name, enabled, merged)
    _check_replies(model, env)
    await _check_free(session, env, kind, name, own_id=row.id)
    settings, secrets = split_secrets(kind, model)
    before = flatten(row.settings)
    after = flatten(settings)
    fields = sorted({k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
                    | {p for p in stored.keys() | secrets.keys() if stored.get(p) != secrets.get(p)})
    changes: dict[str, Any] = {}
    if name != row.name:
        changes["renamed"] = [row.name, name]
    if enabled != row.enabled:
        changes["enabled"] = [row.enabled, enabled]
    if not fields and not changes:
        return row
    row.name, row.enabled, row.settings = name, enabled, settings
    if secrets != stored:
        row.secrets = box.seal(secrets)
    row.version += 1
    row.updated_at = utcnow()
    row.updated_by_id = actor.id
    audit.record(session, actor, "channel_config.update", ENTITY, row.id, kind=kind.name, name=row.name,
                 fields=fields, **changes)
    await _flush(session, kind, name)
    _changed(session, row)
    return row


async def _flush(session: AsyncSession, kind: Kind, name: str) -> None:
    """Write the row; the same kind and name saved meanwhile by another request is a 409, not a 500."""
    try:
        await session.flush()
    except IntegrityError:
        raise ConflictError(f"{kind.name} {name!r} was saved by another request at the same moment; reload",
                            reason="exists") from None


async def delete(session: AsyncSession, config_id: int, actor: User) -> None:
    row = await get(session, config_id)
    audit.record(session, actor, "channel_config.delete", ENTITY, row.id, kind=row.kind, name=row.name)
    _changed(session, row)
    await session.delete(row)
    await session.flush()


async def row_values(session: AsyncSession, box: SecretBox) -> list[RowValue]:
    """Every row validated with its secrets: what the reconciler applies (a row it cannot use says why)."""
    values = []
    for row in await repository.list_all(session):
        kind = KINDS.get(row.kind)
        if kind is None:
            values.append(RowValue(row.id, row.kind, row.name, row.enabled, None, unknown_kind(row.kind)))
            continue
        try:
            settings = with_secrets(row.settings, box.open(row.secrets))
            model = validate(kind, row.name, row.enabled, settings)
        except (UnreadableSecrets, ValidationFailedError) as exc:
            values.append(RowValue(row.id, row.kind, row.name, row.enabled, None, str(exc)[:300]))
            continue
        values.append(RowValue(row.id, row.kind, row.name, row.enabled, model))
    return values


def env_summary(env: ChannelsSettings) -> list[tuple[str, bool, list[str]]]:
    """The channels the environment configures: (kind, enabled, mailbox names)."""
    out = []
    for kind in ChannelsSettings.model_fields:
        settings = getattr(env, kind)
        if kind == "email":
            if settings.enabled:
                out.append((kind, True, [m.name for m in settings.mailboxes]))
        elif kind in env.model_fields_set or settings.enabled:
            out.append((kind, bool(settings.enabled), []))
    return out


def list_reads(rows: Sequence[ChannelConfig], box: SecretBox, env: ChannelsSettings) -> list[ChannelConfigRead]:
    return [read(r, box, env) for r in rows]


async def reseal(session: AsyncSession, box: SecretBox) -> int:
    """Seal every row's secrets again under the newest key (after a key rotation); rows no key opens are left
    as they are (shown as unusable until their secrets are entered again). Returns how many were sealed."""
    count = 0
    for row in await repository.list_all(session):
        if row.secrets:
            try:
                row.secrets = box.rotate(row.secrets)
            except UnreadableSecrets:
                continue
            count += 1
    return count
