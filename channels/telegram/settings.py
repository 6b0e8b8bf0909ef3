"""Settings of the Telegram channel."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class TelegramChannelSettings(BaseModel):
    """A Telegram bot, receiving by webhook (production) or long polling (no public URL needed)."""

    enabled: bool = False
    token: SecretStr | None = Field(default=None, description="The bot token from @BotFather.")
    mode: Literal["webhook", "polling"] = "polling"
    webhook_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="Public URL of POST /channels/telegram/webhook; setWebhook is called on start when set.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Checked against X-Telegram-Bot-Api-Secret-Token; required in webhook mode."
    )
    webhook_max_connections: int = Field(default=40, ge=1, le=100)
    base_url: str = Field(default="https://api.telegram.org/bot", description="Bot API base (a local Bot API server).")
    base_file_url: str = Field(default="https://api.telegram.org/file/bot")
    poll_timeout_seconds: int = Field(default=25, ge=0, le=50, description="Long-polling timeout of getUpdates.")
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    max_download_bytes: int = Field(default=20 * 1024 * 1024, ge=0,
                                    description="Larger photos/documents are kept as metadata only.")
    trust_shared_contact: bool = Field(
        default=True, description="A contact the user shares of themselves vouches for their phone: a customer "
        "known by the same verified phone on another channel is the same person.")
    retry_backoff_max_seconds: float = Field(default=60.0, gt=0)
    standby_seconds: float = Field(
        default=10.0, gt=0,
        description="Polling mode: how often an instance whose bot another instance polls checks to take over.")

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> TelegramChannelSettings:
        if self.enabled and self.token is None:
            raise ValueError("the Telegram channel is enabled but has no token")
        if self.enabled and self.mode == "webhook" and self.webhook_secret is None:
            raise ValueError("webhook mode needs webhook_secret (sent by Telegram as X-Telegram-Bot-Api-Secret-Token)")
        return self
