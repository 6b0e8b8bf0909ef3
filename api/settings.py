"""The one settings object (prefix SWITCHBOARD_, nested with __), read once at start-up."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from channels.config import ChannelsSettings
from core.attachments.settings import AttachmentStorageSettings
from core.auth.settings import LoginProtectionSettings
from core.config import CoreSettings
from core.problems.config import ProblemsSettings
from core.summaries.settings import SummarySettings
from nlu.config import NluSettings

# Known to everyone who has read this file: `switchboard serve` refuses it outside development mode.
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-change-me"  # noqa: S105  (public on purpose, refused by serve)


class Settings(BaseSettings):
    """Switchboard settings; every field can be set as SWITCHBOARD_<NAME> (nested: SWITCHBOARD_A__B)."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    database_url: str = Field(default="sqlite+aiosqlite:///var/switchboard.sqlite3")
    data_dir: Path = Path("var")
    attachments_dir: Path | None = Field(
        default=None, description="Files customers send and agents upload; default <data_dir>/attachments.")
    attachments: AttachmentStorageSettings = Field(
        default_factory=AttachmentStorageSettings,
        description="Where attachments live: local (attachments_dir), postgres (the database) or s3.")
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET_KEY), description="Signs sessions and tokens."
    )
    previous_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Secret keys used before `secret_key` (newest first): what they encrypted (the secrets of "
                    "channels set up in the console) is still read, and sealed again with `secret_key` at start.")
    environment: Literal["production", "development"] = Field(
        default="production",
        description="development: `serve` accepts the development secret key (a fresh clone without a .env).")
    demo: bool = Field(
        default=False, description="`switchboard demo --if-enabled` (the container's start) loads the demo "
                                   "accounts, whose passwords are public, only when this is true.")
    statement_timeout_seconds: float = Field(
        default=5.0, ge=0, le=3600,
        description="A request's database statement running longer is stopped and the request answered 503 "
                    "(query_timeout): no search or list can hold the database (0: no limit). Background jobs have "
                    "none.")
    token_ttl_hours: float = Field(default=12.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Requests above this get 413.")
    max_import_bytes: int = Field(
        default=64 * 1_048_576, ge=1024,
        description="The largest CSV a contract import takes (100,000 rows are ~10 MB).")
    max_attachment_bytes: int = Field(
        default=15 * 1024 * 1024, ge=1024,
        description="Largest file an agent can upload; the upload routes alone accept bodies this large.",
    )
    upload_retention_hours: float = Field(
        default=168.0, gt=0, description="Agents' uploads no message refers to are deleted after this long.")
    upload_sweep_hours: float = Field(default=6.0, gt=0, description="How often unsent uploads are looked for.")
    log_level: str = "INFO"
    log_json: bool = True
    redis_url: str | None = Field(default=None, description="redis://... fans live events out across instances.")
    redis_channel: str = Field(default="switchboard:events", description="One per deployment sharing a Redis.")
    redis_reconnect_max_seconds: float = Field(
        default=2.0, gt=0, le=60, description="Longest wait (with jitter) between tries to reach Redis again.")
    redis_buffer_events: int = Field(
        default=10_000, ge=10, description="Live events kept for Redis while it is unreachable; beyond, the oldest "
                                           "are dropped and the other instances told to catch up.")
    live_poll_seconds: float = Field(
        default=1.0, gt=0, description="While Redis is unreachable, how often live views look for changes in "
                                       "the database.")
    channel_config_seconds: float = Field(
        default=5.0, gt=0, description="How often an instance looks for channels changed in the console (at once "
                                       "on this instance, and on the others too when Redis is configured).")
    model_sync_seconds: float = Field(
        default=2.0, gt=0, description="How often each instance checks the active NLU model version in the "
                                       "database (switches are also announced through Redis).")
    workers_enabled: bool = True
    due_tasks_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often due work (timers, reminders) is looked for when none was due; a "
                                       "task fires at most this late (SLA alerts are due within 5 s: one indexed "
                                       "read a second costs the idle worker < 1 % of a core, bench/sla.py).")
    jobs_stop_seconds: float = Field(
        default=10.0, gt=0, description="At shutdown, how long a running background job may take to finish "
                                        "before it is cancelled.")
    worker_healthcheck_seconds: int = Field(
        default=30, ge=1,
        description="serve --workers N: a worker that does not answer the master's ping this long is killed.")
    supervisor_state_file: Path | None = Field(
        default=None, description="Set by `serve --workers N` for its workers: the master's restart counts.")
    seed_nlu_data: bool = Field(default=True, description="Import the shipped intents into an empty database.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (10.0.0.0/8) of reverse proxies whose X-Forwarded-For / Forwarded / "
                    "X-Forwarded-Proto headers are believed; from anyone else they are ignored.")
    login: LoginProtectionSettings = LoginProtectionSettings()
    core: CoreSettings = CoreSettings()
    nlu: NluSettings = NluSettings()
    channels: ChannelsSettings = ChannelsSettings()
    problems: ProblemsSettings = ProblemsSettings()
    summary: SummarySettings = SummarySettings()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names the bad entry
        return value

    @property
    def uses_development_secret(self) -> bool:
        """True while sessions and tokens would be signed with the key published in this file."""
        return self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY

    @property
    def attachments_root(self) -> Path:
        """The attachment store's own folder: never the data dir itself, which holds the database and models."""
        return self.attachments_dir or Path(self.data_dir) / "attachments"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once."""
    return Settings()
