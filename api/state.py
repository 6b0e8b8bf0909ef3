"""Everything the running app holds: settings, database, event bus, NLU engine, channels, workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.limits import Limits
from api.settings import Settings
from channels.base import ChannelRegistry
from channels.setup.reconcile import ChannelReconciler
from core.apikeys.service import KeyCheck
from core.attachments.backends import AttachmentBackend
from core.channel_configs.secrets import SecretBox
from core.clock import SYSTEM_CLOCK, Clock
from core.events import EventBus
from core.ingest.service import IngestService
from core.jobs import JobRegistry
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.nlu_admin.catalog import ResponseCatalog
from core.nlu_admin.training import TrainingRunner
from core.nlu_admin.versions import ModelSync
from core.outbox.dispatcher import OutboxDispatcher
from core.presence.service import PresenceRelay
from nlu.protocol import EngineHolder

if TYPE_CHECKING:
    from api.live import LiveCatchUp
    from api.redis_bridge import RedisEventBridge


@dataclass
class AppState:
    settings: Settings
    db_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    nlu: EngineHolder
    channels: ChannelRegistry
    ingest: IngestService
    dispatcher: OutboxDispatcher
    catalog: ResponseCatalog
    trainer: TrainingRunner
    limits: Limits
    model_sync: ModelSync
    instance_id: str  # this server process among the instances (bridge, model reports)
    files: AttachmentBackend
    jobs: JobRegistry  # every background job of this process: /health and /metrics read it
    clock: Clock = SYSTEM_CLOCK
    redis: RedisEventBridge | None = None
    live: LiveCatchUp | None = None
    # Due work (core.jobs.tasks): features register the handler of their task kinds here; the runner fires them.
    task_handlers: TaskHandlers = field(default_factory=TaskHandlers)
    due_tasks: DueTaskRunner | None = None
    presence: PresenceRelay | None = None  # made on first use (api.console.routes.presence_relay)
    api_keys: KeyCheck | None = None  # integration keys (core/apikeys), made in the lifespan
    # Channels set up in the console (channels.setup): the reconciler, and the box sealing their secrets.
    channel_setup: ChannelReconciler | None = None
    secret_box: SecretBox | None = None
    freeze_heap: bool = False  # objects alive after start-up are frozen out of the collector (see create_app)
