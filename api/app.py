"""The FastAPI app factory and lifespan: database, event bus, NLU engine, channel adapters, workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api import console, errors, metrics, openapi
from api.limits import Limits
from api.live import LiveCatchUp
from api.logging_config import configure as configure_logging
from api.middleware import BodySizeLimitMiddleware, MetricsMiddleware
from api.nlu_wiring import build_nlu_engine, prepare_nlu_data
from api.redis_bridge import RedisEventBridge
from api.routers import (
    admin,
    api_keys,
    attachments,
    auth,
    calendars,
    canned,
    contracts,
    csat_public,
    customers,
    health,
    incidents,
    nlu_admin,
    orders,
    outbox,
    presence,
    problems,
    reports,
    rest_channel,
    sla,
    tags,
    telegram,
    tickets,
    vk,
    webchat,
    whatsapp,
)
from api.routers import (
    channel_setup as channel_setup_api,
)
from api.settings import Settings, get_settings
from api.state import AppState
from channels.base import ChannelAdapter, ChannelContext, ChannelRegistry
from channels.email.staff import SmtpStaffMailer
from channels.registry import FACTORIES
from channels.setup import service as channel_setup
from channels.setup.reconcile import ChannelReconciler
from channels.whatsapp.adapter import retire_tasks as whatsapp_retire_tasks
from core.apikeys.service import KeyCheck
from core.assignment.job import AssignmentRunner
from core.attachments.backends import open_backend
from core.attachments.sweep import sweep_job
from core.bot_lifecycle.job import QuietTicketSweep
from core.calendars import service as calendar_service
from core.channel_configs.secrets import SecretBox
from core.clock import SYSTEM_CLOCK, Clock
from core.contracts.service import ContractReminders
from core.csat.service import CsatSurveys
from core.db.session import create_engine, create_sessionmaker
from core.errors import ConflictError
from core.events import EventBus
from core.incidents.service import IncidentNotices
from core.ingest.service import IngestService, ResponseLookup
from core.jobs import JobRegistry
from core.jobs.tasks import DueTaskRunner
from core.kpis.fold import KpiFold
from core.nlu_admin.catalog import ResponseCatalog
from core.nlu_admin.model_store import ModelStore
from core.nlu_admin.training import TrainingRunner, stale_jobs_job
from core.nlu_admin.versions import ModelSync
from core.orders.notices import OrderNotices
from core.outbox.dispatcher import OutboxDispatcher
from core.privacy.service import retention_job
from core.problems.job import RisingProblems
from core.sla.timers import SlaTimers
from core.summaries.job import WeeklySummary
from nlu.data import load_training_data
from nlu.entities import configure_order_pattern
from nlu.protocol import EngineHolder, IntentEngine

log = logging.getLogger(__name__)


ChannelsBuilder = Callable[[ChannelContext], Sequence[ChannelAdapter]]


async def seed_calendars(session: AsyncSession) -> None:
    """First start: the shipped calendars (Russian office hours, 24/7) into a database that has none."""
    try:
        async with session.begin():
            await calendar_service.seed_defaults(session)
    except (IntegrityError, ConflictError):
        # Another instance seeded at the same moment; its calendars are there now. (Its commit can land between
        # our "none yet" and our insert, where the service's own name check refuses first: a ConflictError.)
        await session.rollback()


def create_app(
    settings: Settings | None = None,
    *,
    nlu_engine: IntentEngine | None = None,
    channels: ChannelsBuilder | None = None,
    responses: ResponseLookup | None = None,
    configure_logs: bool = True,
    freeze_heap: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    jobs_clock: Clock = SYSTEM_CLOCK,
) -> FastAPI:
    """Build the app; tests pass their own settings, engine and channels.

    `freeze_heap` (the server process): once started, everything alive (modules, the NLU model) is moved out
    of the garbage collector's sight, so its full passes stop costing ~90 ms pauses in the middle of requests.
    `clock` is where sign-in throttling and rate limits read the time (tests pass one they move); `jobs_clock`
    is the one the background jobs wait on.
    """
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if configure_logs:
            configure_logging(settings.log_level, settings.log_json)
        db_engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(db_engine)
        bus = EventBus()
        jobs = JobRegistry(jobs_clock, engine=db_engine, bus=bus)
        # The embedded engine's versions live in the database; its folder under the data dir is a cache. A new
        # instance fetches the active version before the engine starts, instead of training one of its own.
        models = (ModelStore(sessionmaker, Path(settings.data_dir) / "models")
                  if nlu_engine is None and settings.nlu.engine == "embedded" else None)
        if models is not None:
            await models.prime()
        holder = EngineHolder(nlu_engine or await build_nlu_engine(settings))
        extras = await asyncio.to_thread(load_training_data)
        catalog = ResponseCatalog()
        async with sessionmaker() as session:
            await prepare_nlu_data(session, extras, seed=settings.seed_nlu_data, clock=clock)
            await catalog.reload(session)
        async with sessionmaker() as session:
            await seed_calendars(session)
        ingest = IngestService(sessionmaker, holder, bus, settings.core, responses=responses or catalog.lookup)
        files = await open_backend(settings.attachments, root=settings.attachments_root,
                                   legacy_root=Path(settings.data_dir), database_url=settings.database_url)
        ctx = ChannelContext(ingest=ingest, bus=bus, sessionmaker=sessionmaker, data_dir=Path(settings.data_dir),
                             files=files, clock=clock, jobs=jobs)
        registry = ChannelRegistry()
        box = SecretBox(settings.secret_key.get_secret_value(),
                        [k.get_secret_value() for k in settings.previous_secret_keys])
        reconciler = None
        if channels is not None:
            built: Sequence[ChannelAdapter] = channels(ctx)
        else:
            # The environment's channels with the ones set up in the console applied; kept in step from then on.
            if settings.previous_secret_keys:
                async with sessionmaker.begin() as session:
                    await channel_setup.reseal(session, box)
            reconciler = ChannelReconciler(settings.channels, ctx, registry, box, FACTORIES,
                                           interval=settings.channel_config_seconds)
            built = await reconciler.build()
        for adapter in built:
            registry.register(adapter)
        dispatcher = OutboxDispatcher(sessionmaker, registry.get, bus, settings.core)
        trainer = TrainingRunner(sessionmaker, holder, bus, catalog, clock=clock)
        instance_id = uuid.uuid4().hex
        model_sync = ModelSync(sessionmaker, holder, bus, instance_id, interval=settings.model_sync_seconds,
                               clock=clock)
        trainer.switch_to = model_sync.switch_to
        if models is not None:
            await models.publish_local()  # what this instance trained at first start (or had before)
            model_sync.models = models
            trainer.publish = models.publish
        state = AppState(settings=settings, db_engine=db_engine, sessionmaker=sessionmaker, bus=bus, nlu=holder,
                         channels=registry, ingest=ingest, dispatcher=dispatcher, catalog=catalog, trainer=trainer,
                         model_sync=model_sync, instance_id=instance_id, files=files,
                         limits=Limits.build(settings, clock), clock=clock, jobs=jobs)
        configure_order_pattern(settings.nlu.order_number_pattern)
        rest_key = settings.channels.rest.api_key
        state.api_keys = KeyCheck(sessionmaker, rest_key.get_secret_value() if rest_key else None, clock)
        state.channel_setup, state.secret_box = reconciler, box
        app.state.switchboard = state
        metrics.track(state)
        for adapter in registry:
            try:
                await adapter.start()
            except Exception as exc:
                # A failing channel shows its error in /health and never stops the others.
                adapter.health.error(f"start failed: {type(exc).__name__}: {exc}")
                log.exception("channel failed to start", extra={"channel": adapter.kind})
        bridge = (RedisEventBridge(bus, settings.redis_url, channel=settings.redis_channel, instance=instance_id,
                                   buffer_size=settings.redis_buffer_events,
                                   max_backoff=settings.redis_reconnect_max_seconds)
                  if settings.redis_url else None)
        if bridge is not None:
            state.live = live = LiveCatchUp(sessionmaker, bus, settings.live_poll_seconds)
            jobs.start(live.job())
            await bridge.start()
            state.redis = bridge
        # The first check runs before requests are served: an instance (re)started after a switch parses with
        # the active version from its first message.
        await model_sync.check()
        jobs.start(model_sync.job(jobs))
        jobs.start(trainer.job(jobs))
        jobs.start(stale_jobs_job(sessionmaker, clock))
        if reconciler is not None:
            jobs.start(reconciler.job())
        if settings.workers_enabled:
            jobs.start(dispatcher.job())
            if settings.core.retention_days:
                jobs.start(retention_job(sessionmaker, files, jobs_clock,
                                         older_than=timedelta(days=settings.core.retention_days),
                                         interval_seconds=settings.core.retention_sweep_seconds))
            jobs.start(sweep_job(sessionmaker, files, timedelta(hours=settings.upload_retention_hours),
                                 timedelta(hours=settings.upload_sweep_hours)))
            SlaTimers(jobs_clock).register(state.task_handlers)
            ContractReminders(settings.core, jobs_clock).register(state.task_handlers)
            OrderNotices(settings.core, jobs_clock).register(state.task_handlers)
            IncidentNotices(settings.core, jobs_clock).register(state.task_handlers)
            CsatSurveys(settings.core, jobs_clock,  # satisfaction surveys
                        link_secret=settings.secret_key.get_secret_value()).register(state.task_handlers)
            # The weekly summary to supervisors: its task arms itself week after week, its mails go by SMTP.
            mailer = SmtpStaffMailer(settings.channels.email)
            summary = WeeklySummary(settings.summary.with_zone(settings.core.kpi_time_zone), mailer,
                                    mailer.message_id_domain(), jobs_clock, runner_id=instance_id)
            summary.register(state.task_handlers)
            whatsapp_retire_tasks(state.task_handlers)  # the template list's old due tasks, completed
            jobs.start(summary.job(sessionmaker))
            state.due_tasks = DueTaskRunner(sessionmaker, state.task_handlers, clock=jobs_clock, bus=bus,
                                            runner_id=instance_id)
            jobs.start(state.due_tasks.job(settings.due_tasks_poll_seconds))
            assignment = AssignmentRunner(sessionmaker, bus, jobs_clock,
                                          offline_after=settings.core.presence_offline,
                                          batch_size=settings.core.assignment_batch_size)
            jobs.start(assignment.job(settings.core.assignment_seconds))
            # Tickets the bot answered resolve (by the bot) once the customer has been quiet long enough.
            quiet = QuietTicketSweep(sessionmaker, bus, jobs_clock,
                                     quiet=timedelta(minutes=settings.core.bot_resolve_after_minutes))
            jobs.start(quiet.job(settings.core.bot_resolve_sweep_seconds))
            # The KPI reports' aggregates: ticket changes folded in every few seconds, off the ingest path.
            kpi_fold = KpiFold(sessionmaker, jobs_clock, time_zone=settings.core.kpi_time_zone,
                               csat_low=settings.core.csat_low_score)
            jobs.start(kpi_fold.job(settings.core.kpi_fold_seconds))
            if settings.problems.rising_enabled:  # rising-problem alerts on the KPI engine's hourly counts
                jobs.start(RisingProblems(sessionmaker, bus, jobs_clock, settings.problems).job())
        if freeze_heap:
            gc.collect()
            gc.freeze()
            state.freeze_heap = model_sync.freeze_heap = True
        log.info("switchboard started", extra={"database": db_engine.dialect.name, "channels": registry.kinds()})
        try:
            yield
        finally:
            metrics.untrack(state)
            if bridge is not None:
                await bridge.stop()
            await jobs.stop(deadline=settings.jobs_stop_seconds)
            await model_sync.forget()
            for adapter in registry:
                with contextlib.suppress(Exception):
                    await adapter.stop()
            await files.close()
            await db_engine.dispose()

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        description="Omnichannel contact-centre bot platform for telecom operators.",
        lifespan=lifespan,
    )
    errors.install(app)
    openapi.install(app)
    # The channels' ingress first: routes are matched in order, and these take the traffic.
    for router in (rest_channel.router, telegram.router, vk.router, whatsapp.router, webchat.router, health.router,
                   auth.router, tickets.router, customers.router, orders.router, outbox.router, admin.router,
                   calendars.router,
                   sla.router, csat_public.router, nlu_admin.router, nlu_admin.corrections, attachments.router,
                   presence.router, problems.router, reports.router, api_keys.router, contracts.router,
                   incidents.router, canned.router, tags.router):
        app.include_router(router)
    app.include_router(channel_setup_api.router)  # channels set up in the browser (/admin/channels)
    console.install(app)  # the web console under /console; "/" redirects there
    app.add_middleware(MetricsMiddleware)
    # Only the routes that take files accept large bodies: the file plus room for the multipart framing.
    upload_limit = settings.max_attachment_bytes + settings.max_body_bytes
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes,
                       overrides=(("POST", r"/attachments", upload_limit),
                                  ("POST", r"/console/tickets/[^/]+/reply", upload_limit),
                                  ("POST", r"/contracts/import", settings.max_import_bytes),
                                  ("POST", r"/console/contracts/import", settings.max_import_bytes)))
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.app:app_factory`."""
    return create_app(freeze_heap=True)


__all__ = ["app_factory", "create_app"]
