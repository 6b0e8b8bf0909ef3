"""Settings of every channel adapter, one model per channel."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from channels.email.settings import EmailChannelSettings
from channels.telegram.settings import TelegramChannelSettings
from channels.vk.settings import VkChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from channels.whatsapp.settings import WhatsappChannelSettings


class RestChannelSettings(BaseModel):
    """The generic REST channel: an integrating system posts messages and receives replies."""

    enabled: bool = True
    api_key: SecretStr | None = Field(default=None, description="Required in the X-Api-Key header.")
    webhook_url: str | None = Field(default=None, description="Replies are POSTed here when set.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key for X-Switchboard-Signature.")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    trusted_keys: list[str] = Field(
        default_factory=list, description="Names of the integration keys (core/apikeys; `environment` for "
        "api_key) whose sender email and phone are vouched for: such a message joins the customer known by the "
        "same verified contact. Other keys' contacts only make suggested duplicates.")
    # Per process (each worker or instance counts its own): an in-memory check that costs the hot path nothing.
    requests_per_second: float = Field(
        default=2000.0, ge=0, description="Requests per second one API key may make on average (0: no limit)...")
    request_burst: int = Field(default=4000, ge=1, description="...and at once.")
    bad_key_free_failures: int = Field(
        default=10, ge=0, description="Wrong X-Api-Key tries from one address before it must wait (0: off).")
    bad_key_delay_seconds: float = Field(default=1.0, gt=0, description="The first wait; doubles each time...")
    bad_key_max_delay_seconds: float = Field(default=60.0, gt=0, description="...up to this.")
    bad_key_window_seconds: float = Field(default=3600.0, gt=0, description="Wrong keys are forgotten after this.")


class ChannelsSettings(BaseModel):
    """Settings of all channels; each channel adds its own model here."""

    rest: RestChannelSettings = RestChannelSettings()
    email: EmailChannelSettings = EmailChannelSettings()
    telegram: TelegramChannelSettings = TelegramChannelSettings()
    webchat: WebchatChannelSettings = WebchatChannelSettings()
    vk: VkChannelSettings = VkChannelSettings()
    whatsapp: WhatsappChannelSettings = WhatsappChannelSettings()
