"""The API's shapes of channel configurations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KindName = Literal["email", "telegram", "webchat", "vk", "whatsapp"]
NAME_PATTERN = r"^[A-Za-z0-9_.@-]+$"


class ChannelConfigCreate(BaseModel):
    """A new channel configuration. `settings` are the kind's settings (secrets included, in the same places);
    for `email`, one mailbox (ImapMailboxSettings, with an optional `smtp` server for its replies)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: KindName
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


class ChannelConfigUpdate(BaseModel):
    """Changes: `settings`, when given, replace the stored ones, except that a secret left out, null or empty
    keeps its stored value; `clear_secrets` lists the secrets (dotted paths) to remove."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    enabled: bool | None = None
    settings: dict[str, Any] | None = None
    clear_secrets: list[str] = Field(default_factory=list, max_length=20)


class ChannelConfigRead(BaseModel):
    """A configuration as shown: never its secrets, only which of them are set."""

    id: int
    kind: str
    name: str
    enabled: bool
    settings: dict[str, Any]
    secrets_set: list[str]
    version: int
    updated_at: datetime
    updated_by_id: int | None
    in_use: bool = Field(description="False when the environment configures the same channel (it wins), or the "
                         "row cannot be used (`problem` says why).")
    problem: str | None = Field(default=None, description="Why the row cannot be used at all (an unknown kind).")


class ProbeStep(BaseModel):
    """One check of a connection test: what was tried, whether it worked, and why not in words."""

    step: str
    ok: bool
    reason: str | None = Field(default=None, description="wrong_password, unreachable, tls, timeout, refused...")
    message: str | None = None


class ProbeRead(BaseModel):
    ok: bool
    steps: list[ProbeStep]


class EnvChannelRead(BaseModel):
    """A channel configured by the environment (read-only here)."""

    kind: str
    enabled: bool
    mailboxes: list[str] = Field(default_factory=list)


class ChannelListRead(BaseModel):
    configs: list[ChannelConfigRead]
    environment: list[EnvChannelRead]
