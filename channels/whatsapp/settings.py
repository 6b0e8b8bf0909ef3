"""Settings of the WhatsApp channel (WhatsApp Business Cloud API)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class WhatsappChannelSettings(BaseModel):
    """One business phone number; the app's webhook points at /channels/whatsapp/webhook."""

    enabled: bool = False
    access_token: SecretStr | None = Field(default=None, description="A system user's access token (Bearer).")
    phone_number_id: str | None = Field(
        default=None, pattern=r"^\d{1,32}$",
        description="The business phone number's id; messages to other numbers of the app are ignored.")
    app_secret: SecretStr | None = Field(
        default=None, description="The app secret: X-Hub-Signature-256 of every webhook is checked with it.")
    verify_token: SecretStr | None = Field(
        default=None, description="The string entered as 'Verify token' on the app's webhook page.")
    api_base_url: str = Field(default="https://graph.facebook.com", pattern=r"^https?://",
                              description="Graph API base (a local stand-in in tests).")
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    max_download_bytes: int = Field(default=20 * 1024 * 1024, ge=0,
                                    description="Larger images/documents are kept as metadata only.")
    media_hosts: list[str] = Field(
        default_factory=lambda: ["fbsbx.com", "facebook.com", "whatsapp.net"],
        description="Hosts (and their subdomains) media is downloaded from (the token goes with the request); "
        "empty: any host.")
    retry_backoff_max_seconds: float = Field(default=60.0, gt=0)
    trust_phone_number: bool = Field(
        default=True, description="WhatsApp verifies the sender's phone number: a customer known by the same "
        "verified phone on another channel is the same person.")
    waba_id: str | None = Field(
        default=None, pattern=r"^\d{1,32}$",
        description="The WhatsApp Business Account's id: its approved message templates are listed from it "
        "(none: no templates are offered).")
    templates_refresh_seconds: float = Field(
        default=3600.0, ge=60, description="How often the approved templates are read again (the console can "
        "refresh them at once).")
    typing_seconds: float = Field(
        default=20.0, ge=1, description="At most one typing indicator per customer this often (WhatsApp shows it "
        "for up to 25 seconds, or until the reply).")
    language: Literal["ru", "en"] = Field(
        default="ru", description="Direct answers (no ticket) use this language.")

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> WhatsappChannelSettings:
        if self.enabled:
            missing = [name for name in ("access_token", "phone_number_id", "app_secret", "verify_token")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"the WhatsApp channel is enabled but has no {', '.join(missing)}")
        return self
