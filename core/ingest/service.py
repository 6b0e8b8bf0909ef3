"""The ingest service: inbound messages become committed ticket state and queued answers.

It joins two parts: the NLU parse (before any transaction, so a slow engine never holds a database connection),
then the message pipeline (core/ingest/pipeline.py: idempotency -> identity -> thread -> persist -> decision ->
outbox, one transaction) run by the group-commit batcher (core/ingest/batcher.py: the messages of concurrent
callers share a transaction; a failed batch is retried one message at a time). A concurrent duplicate loses the
race on the unique (channel, external id) key and returns the winner's result.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.csat import service as csat
from core.events import Event, EventBus, Quarantined, Topic, emit, take_pending
from core.ingest import pipeline
from core.ingest.batcher import BatchStats, GroupCommit
from core.ingest.pipeline import HANDOFF_PAYLOAD, IngestPipeline, Parsed, ResponseLookup
from core.ingest.schemas import InboundMessage, IngestResult
from core.quarantine.models import QuarantinedPayload
from nlu.protocol import IntentEngine, Parse
from nlu.text import detect_language

__all__ = ["HANDOFF_PAYLOAD", "MAX_PARSE_CHARS", "IngestService", "IngestStats", "ResponseLookup", "storable_text"]

log = logging.getLogger(__name__)

MAX_PARSE_CHARS = 5000


@dataclass
class IngestStats(BatchStats):
    """What this service did since it started (the API serves these at /metrics)."""

    ingested: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, action or "duplicate")
    quarantined: Counter[str] = field(default_factory=Counter)  # by channel

    def record(self, channel: str, result: IngestResult) -> None:
        self.ingested[(channel, result.action if result.created else "duplicate")] += 1


def storable_text(value: bytes | str) -> str:
    """Any payload as text every backend stores: bytes that are not UTF-8, lone surrogates and NUL characters are
    written as backslash escapes (a quarantined payload is often quarantined for carrying exactly those)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    elif not value.isascii():
        value = value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


class IngestService:
    """Turns InboundMessages into committed ticket state and queued answers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: Callable[[], IntentEngine],
        bus: EventBus,
        settings: CoreSettings,
        responses: ResponseLookup | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.bus = bus
        self.settings = settings
        self.pipeline = IngestPipeline(settings, responses)
        self.stats = IngestStats()
        self._batcher: GroupCommit[Parsed, IngestResult] = GroupCommit(
            write=self._transaction, find_existing=lambda item: self.find_existing(*item.key),
            key=lambda item: item.key, publish=bus.publish_all,
            batch_size=lambda: self.settings.ingest_batch_size,
            linger=lambda: self.settings.ingest_batch_linger_seconds,
            on_result=lambda item, result: self.stats.record(item.inbound.channel, result), stats=self.stats,
        )

    async def ingest(self, inbound: InboundMessage) -> IngestResult:
        """Ingest one message; a redelivery returns the original result and writes nothing.

        The message joins the next batch; the call returns once that batch has committed.
        """
        return await self._batcher.submit(Parsed(inbound, await self._parse(inbound)))

    async def _transaction(self, items: list[Parsed]) -> tuple[list[IngestResult], list[Event]]:
        async with self.sessionmaker() as session:
            async with session.begin():
                results = await self.pipeline.write(session, items)
            return results, take_pending(session)

    async def find_existing(self, channel: str, external_message_id: str) -> IngestResult | None:
        async with self.sessionmaker() as session:
            return await pipeline.existing(session, channel, external_message_id)

    async def quarantine(self, channel: str, reason: str, payload: bytes | str,
                         content_type: str = "application/octet-stream") -> int:
        """Keep a payload that could not be parsed, with the reason; never drop it."""
        text = storable_text(payload)
        reason = storable_text(reason)
        async with self.sessionmaker() as session:
            async with session.begin():
                row = QuarantinedPayload(channel=channel, reason=reason[:4000], payload=text,
                                         content_type=storable_text(content_type)[:100])
                session.add(row)
                await session.flush()
                emit(session, Topic.QUARANTINE, Quarantined(id=row.id, channel=channel, reason=row.reason))
            self.bus.publish_all(take_pending(session))
        self.stats.quarantined[channel] += 1
        log.warning("payload quarantined", extra={"channel": channel, "reason": reason, "id": row.id})
        return row.id

    async def _parse(self, inbound: InboundMessage) -> Parse | None:
        """The NLU's reading, or None when the engine failed (the policy then escalates) or there is nothing to
        read: an auto-reply, a survey button (a score, never decided: core/ingest/pipeline.py CSAT_ANSWER)."""
        if inbound.auto_reply or csat.pressed_score(inbound.extra) is not None:
            return None
        if inbound.extra.get("quick_reply") == HANDOFF_PAYLOAD:
            # The customer pressed "talk to an operator": no guessing needed.
            language = inbound.language_hint or detect_language(inbound.text, default="en")
            return Parse(text=inbound.text, intent="human_handoff", confidence=1.0, confident=True, language=language)
        try:
            return await self.engine().parse(inbound.text[:MAX_PARSE_CHARS])
        except Exception:
            log.exception("NLU engine failed; escalating to humans")
            return None
