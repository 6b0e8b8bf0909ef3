"""The kinds of channel an admin can set up in the console, and how their rows combine with the environment.

Each kind's row is validated by the kind's own settings model: a mailbox row by ImapMailboxSettings (with its own
SMTP server), a row of the other kinds by the whole channel's model (its `enabled` is the row's). Secret fields
(SecretStr, at any depth) are taken out of the settings JSON and sealed apart; they are found by their dotted path.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from channels.config import ChannelsSettings
from channels.email.settings import EmailChannelSettings, ImapMailboxSettings
from channels.telegram.settings import TelegramChannelSettings
from channels.vk.settings import VkChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from channels.whatsapp.settings import WhatsappChannelSettings

Widget = Literal["text", "number", "select", "check", "secret", "list"]


@dataclass(frozen=True)
class FormField:
    """One field of a kind's console form: its dotted path in the settings and how it is typed in."""

    path: str
    widget: Widget = "text"
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[BaseModel]
    # One row of the kind at most (the channel itself), or many (mailboxes: each is one row).
    single: bool
    form: tuple[FormField, ...]
    secret_paths: tuple[str, ...] = field(default=())
    # The settings keys the model knows, nested models' as sub-trees (None: a leaf): anything else is refused.
    known: dict[str, Any] = field(default_factory=dict)


def unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def secret_paths_of(model: type[BaseModel], prefix: str = "") -> tuple[str, ...]:
    """Dotted paths of every SecretStr field of a model, nested models included."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        for arg in unwrap(info.annotation):
            if arg is SecretStr:
                paths.append(prefix + name)
            elif isinstance(arg, type) and issubclass(arg, BaseModel):
                paths.extend(secret_paths_of(arg, f"{prefix}{name}."))
    return tuple(paths)


def known_keys(model: type[BaseModel]) -> dict[str, Any]:
    """The keys a model accepts, with the keys of its nested models (in a list too) as sub-trees."""
    tree: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        sub: dict[str, Any] | None = None
        for arg in unwrap(info.annotation):
            if typing.get_origin(arg) is list:
                arg = next(iter(typing.get_args(arg)), None)
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                sub = known_keys(arg)
        tree[name] = sub
        if info.alias:
            tree[info.alias] = sub
    return tree


def unknown_keys(known: dict[str, Any], data: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the keys in `data` its model does not know (a typo like `pasword` is refused, not dropped)."""
    if isinstance(data, list):
        return [p for item in data for p in unknown_keys(known, item, prefix)]
    if not isinstance(data, dict):
        return []
    out = []
    for key, value in data.items():
        if key not in known:
            out.append(f"{prefix}{key}")
        elif known[key] is not None:
            out.extend(unknown_keys(known[key], value, f"{prefix}{key}."))
    return out


_SECURITY = ("ssl", "starttls", "none")

_FORMS: dict[str, tuple[FormField, ...]] = {
    "email": (
        FormField("address", required=True), FormField("host", required=True), FormField("port", "number"),
        FormField("security", "select", _SECURITY), FormField("username", required=True),
        FormField("password", "secret", required=True), FormField("folder"), FormField("use_idle", "check"),
        FormField("poll_seconds", "number"), FormField("first_start", "select", ("unseen", "all", "none")),
        FormField("smtp.host"), FormField("smtp.port", "number"), FormField("smtp.security", "select", _SECURITY),
        FormField("smtp.username"), FormField("smtp.password", "secret"),
    ),
    "telegram": (
        FormField("token", "secret", required=True), FormField("mode", "select", ("polling", "webhook")),
        FormField("webhook_url"), FormField("webhook_secret", "secret"), FormField("base_url"),
        FormField("base_file_url"),
    ),
    "webchat": (
        FormField("allowed_origins", "list"), FormField("office_hours"), FormField("timezone"),
        FormField("identity_secret", "secret"), FormField("max_message_chars", "number"),
    ),
    "vk": (
        FormField("group_id", "number", required=True), FormField("access_token", "secret", required=True),
        FormField("confirmation_code", required=True), FormField("secret", "secret", required=True),
        FormField("api_base_url"), FormField("language", "select", ("ru", "en")),
    ),
    "whatsapp": (
        FormField("phone_number_id", required=True), FormField("access_token", "secret", required=True),
        FormField("app_secret", "secret", required=True), FormField("verify_token", "secret", required=True),
        FormField("api_base_url"), FormField("language", "select", ("ru", "en")),
    ),
}

_MODELS: dict[str, tuple[type[BaseModel], bool]] = {
    "email": (ImapMailboxSettings, False),
    "telegram": (TelegramChannelSettings, True),
    "webchat": (WebchatChannelSettings, True),
    "vk": (VkChannelSettings, True),
    "whatsapp": (WhatsappChannelSettings, True),
}

# In the order the page offers them.
KINDS: dict[str, Kind] = {name: Kind(name, model, single, _FORMS[name], secret_paths_of(model), known_keys(model))
                          for name, (model, single) in _MODELS.items()}


# --- secrets in and out of a settings dict -------------------------------------------------------------------


def get_path(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of nested settings (`smtp.password`), None where a section or key is absent."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put_path(data: dict[str, Any], path: str, value: Any, *, create: bool) -> None:
    """Set the value at a dotted path; a missing section is made when `create`, else nothing is set (an SMTP server
    not given has no password to put)."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if not create:
                return
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def split_secrets(kind: Kind, model: BaseModel) -> tuple[dict[str, Any], dict[str, str]]:
    """A validated model -> its settings as JSON without secrets, and the secrets by path."""
    plain = model.model_dump(mode="json")
    secrets: dict[str, str] = {}
    for path in kind.secret_paths:
        value = get_path(plain, path)
        raw = _resolve(model, path)
        if isinstance(raw, SecretStr):
            secrets[path] = raw.get_secret_value()
        if value is not None:
            put_path(plain, path, None, create=False)
    if kind.single:
        plain.pop("enabled", None)
    return plain, secrets


def _resolve(model: BaseModel, path: str) -> Any:
    node: Any = model
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def with_secrets(settings: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """The settings with the secrets put back (a copy)."""
    data = copy.deepcopy(settings)
    for path, value in secrets.items():
        put_path(data, path, value, create=False)
    return data


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


# --- rows + environment -> what runs -------------------------------------------------------------------------


def env_owns(env: ChannelsSettings, kind: str) -> bool:
    """The environment configures this kind itself (set explicitly and enabled): its rows are not used."""
    return kind in env.model_fields_set and bool(getattr(env, kind).enabled)


def env_owns_mailbox(env: ChannelsSettings, name: str) -> bool:
    """The environment's (enabled) e-mail channel has a mailbox of this name: a row of the same name is not used."""
    return env.email.enabled and any(m.name == name for m in env.email.mailboxes)


def env_sends_mail(env: ChannelsSettings) -> bool:
    """The environment gives the e-mail channel an SMTP server of its own (replies of a mailbox without one)."""
    return "smtp" in env.email.model_fields_set


@dataclass(frozen=True)
class RowValue:
    """One row as the reconciler sees it: validated settings with secrets, or why it cannot be used."""

    id: int
    kind: str
    name: str
    enabled: bool
    model: BaseModel | None
    problem: str | None = None


def effective(env: ChannelsSettings, rows: Iterable[RowValue]) -> tuple[ChannelsSettings, dict[int, str]]:
    """The channels' settings once the rows are applied to the environment's, and the rows not used (why).

    A mailbox row adds its mailbox to the e-mail channel (next to the environment's mailboxes, if it enables the
    channel). A row of another kind is that channel, unless the environment configures the kind itself.
    """
    notes: dict[int, str] = {}
    values: dict[str, Any] = {name: getattr(env, name) for name in ChannelsSettings.model_fields}
    mailboxes: list[ImapMailboxSettings] = []
    for row in rows:
        if row.problem is not None or row.model is None:
            notes[row.id] = row.problem or "invalid"
            continue
        if row.kind == "email":
            if not row.enabled or not isinstance(row.model, ImapMailboxSettings):
                continue
            if env_owns_mailbox(env, row.name):
                notes[row.id] = "environment"
                continue
            mailboxes.append(row.model)
        elif env_owns(env, row.kind):
            notes[row.id] = "environment"
        else:
            values[row.kind] = row.model
    if mailboxes:
        base: EmailChannelSettings = env.email
        own = list(base.mailboxes) if base.enabled else []
        values["email"] = base.model_copy(update={"enabled": True, "mailboxes": own + mailboxes})
    return ChannelsSettings(**values), notes
