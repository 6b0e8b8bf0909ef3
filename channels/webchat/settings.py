"""Settings of the web-chat channel."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, field_validator


class WebchatChannelSettings(BaseModel):
    """The widget on the operator's site and its WebSocket endpoint."""

    enabled: bool = True
    session_secret: SecretStr | None = Field(
        default=None, description="Signs anonymous session tokens; default: the app's secret_key.")
    identity_secret: SecretStr | None = Field(
        default=None, description="The site's key: identifier_hash = HMAC-SHA256(identity_secret, identifier).")
    trust_signed_identity: bool = Field(
        default=True, description="A signed identity's e-mail vouches for the customer: a customer known by the "
        "same verified e-mail on another channel is the same person.")
    allowed_origins: list[str] = Field(default_factory=list,
                                       description="Origins allowed to open the socket; empty: any.")
    session_ttl_days: float = Field(default=365.0, gt=0)
    auth_timeout_seconds: float = Field(default=10.0, gt=0)
    max_frame_bytes: int = Field(default=16_384, ge=256, description="Larger frames get a too_large error.")
    max_message_chars: int = Field(default=4000, ge=1)
    message_burst: int = Field(default=10, ge=1, description="Messages a socket may send at once...")
    messages_per_second: float = Field(default=1.0, gt=0, description="...and then on average.")
    frame_burst: int = Field(default=60, ge=1, description="Any frames (typing, pings): beyond this the socket closes.")
    frames_per_second: float = Field(default=10.0, gt=0)
    connection_burst: int = Field(default=60, ge=1, description="Sockets one address may open at once...")
    connections_per_second: float = Field(
        default=2.0, ge=0, description="...and then on average, per process (0: no limit). Generous: many "
                                       "customers of a mobile operator can share one address.")
    history_limit: int = Field(default=100, ge=1, le=1000)
    office_hours: str | None = Field(default=None, description="HH:MM-HH:MM in `timezone`; unset: around the clock.")
    office_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6], description="0 = Monday.")
    timezone: str = "Europe/Moscow"
    agent_presence_minutes: float = Field(
        default=15.0, gt=0, description="An agent seen within this many minutes counts as online.")
    catch_up_seconds: float = Field(
        default=30.0, gt=0, description="Open sockets are also caught up from the database this often, whatever "
                                        "happened to live events (one query while sockets are open).")

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d", value):
            raise ValueError("office_hours must look like 09:00-21:00")
        return value
