"""Settings of every channel adapter, one model per channel."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from channels.email.settings import EmailChannelSettings
from channels.telegram.settings import TelegramChannelSettings
from channels.webchat.settings import WebchatChannelSettings


class RestChannelSettings(BaseModel):
    """The generic REST channel: an integrating system posts messages and receives replies."""

    enabled: bool = True
    api_key: SecretStr | None = Field(default=None, description="Required in the X-Api-Key header.")
    webhook_url: str | None = Field(default=None, description="Replies are POSTed here when set.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key for X-Switchboard-Signature.")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)


class ChannelsSettings(BaseModel):
    """Settings of all channels; each channel adds its own model here."""

    rest: RestChannelSettings = RestChannelSettings()
    email: EmailChannelSettings = EmailChannelSettings()
    telegram: TelegramChannelSettings = TelegramChannelSettings()
    webchat: WebchatChannelSettings = WebchatChannelSettings()
