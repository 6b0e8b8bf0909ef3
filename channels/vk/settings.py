"""Settings of the VK channel."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class VkChannelSettings(BaseModel):
    """A VK community: its Callback API server points at POST /channels/vk/callback."""

    enabled: bool = False
    access_token: SecretStr | None = Field(default=None, description="The community's access token (messages, docs).")
    group_id: int | None = Field(default=None, gt=0, description="The community's id; events of others are refused.")
    confirmation_code: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="The string VK shows on the Callback API page; answered to its confirmation request.")
    secret: SecretStr | None = Field(default=None, description="The Callback API secret key, checked on every event.")
    api_base_url: str = Field(default="https://api.vk.com/method", pattern=r"^https?://",
                              description="VK API base (a local stand-in in tests).")
    api_version: str = Field(default="5.199", pattern=r"^\d+\.\d+$")
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    max_download_bytes: int = Field(default=20 * 1024 * 1024, ge=0,
                                    description="Larger photos/documents are kept as metadata only.")
    media_hosts: list[str] = Field(
        default_factory=lambda: ["vk.com", "vk.ru", "userapi.com", "vk.me"],
        description="Hosts (and their subdomains) photos and documents are downloaded from; empty: any host.")
    retry_backoff_max_seconds: float = Field(default=60.0, gt=0)
    language: Literal["ru", "en"] = Field(
        default="ru", description="VK does not tell a user's language: direct answers (no ticket) use this one.")

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> VkChannelSettings:
        if self.enabled:
            missing = [name for name in ("access_token", "group_id", "confirmation_code", "secret")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"the VK channel is enabled but has no {', '.join(missing)}")
        return self
