"""The one protocol every channel adapter implements, and the registry keyed by channel kind."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeGuard, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.attachments.backends import AttachmentBackend
from core.clock import SYSTEM_CLOCK, Clock
from core.db.base import utcnow
from core.events import EventBus
from core.ingest.schemas import AttachmentInfo
from core.ingest.service import IngestService
from core.jobs import JobRegistry
from core.outbox.dispatcher import PartialDelivery, PermanentSendError
from core.outbox.schemas import OutboundEnvelope

__all__ = ["ChannelAdapter", "ChannelContext", "ChannelHealth", "ChannelRegistry", "PartialDelivery",
           "PermanentSendError", "RecentIds", "is_json_int", "send_parts"]


def is_json_int(value: Any) -> TypeGuard[int]:
    """Whether a value read from a provider's JSON is an integer (JSON's `true` reads as a Python bool, an int)."""
    return isinstance(value, int) and not isinstance(value, bool)



@dataclass
class ChannelHealth:
    """What the health endpoint and the admin console show for one channel."""

    # stopped | starting | connected | standby (another instance does the reading) | degraded | error | disabled
    state: str = "stopped"
    last_message_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def ok(self) -> None:
        self.state = "connected"

    def error(self, message: str) -> None:
        self.state = "error"
        self.last_error = message[:500]
        self.last_error_at = utcnow()

    def received(self) -> None:
        self.last_message_at = utcnow()

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            **self.details,
        }


@runtime_checkable
class ChannelAdapter(Protocol):
    """A channel: translates provider payloads to InboundMessages and outbound envelopes to provider calls."""

    kind: ClassVar[str]
    health: ChannelHealth

    async def start(self) -> None:
        """Connect and begin receiving (pollers, IMAP IDLE...). Must not raise for provider outages."""
        ...

    async def stop(self) -> None:
        """Stop receiving and release connections."""
        ...

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        """Deliver one outbound message.

        Args:
            envelope: the message, its recipient and threading hints.

        Returns:
            The provider's id of the sent message (for threading), if it has one.

        Raises:
            PermanentSendError: the provider refused for good; any other exception is retried.
            PartialDelivery: a message in parts failed part-way; the retry resumes after the parts delivered
            (`envelope.delivered_parts`).
        """
        ...


class RecentIds:
    """The provider's ids of updates this process already handled, newest `limit` of them: a redelivery is
    answered without a database query (the ingest's idempotency key stays the guarantee)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._ids: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._ids

    def add(self, key: Hashable) -> None:
        self._ids[key] = None
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def clear(self) -> None:
        self._ids.clear()


async def send_parts(parts: Sequence[Callable[[], Awaitable[str | None]]], envelope: OutboundEnvelope,
                     failure: Callable[[Exception], Exception]) -> str | None:
    """Send a message in parts (text chunks, files) in order, from the first part the customer has not got yet
    (`envelope.delivered_parts`, after a failure part-way). Returns the provider id of the first part sent.

    `failure` says what a provider error means (e.g. a PermanentSendError for a refusal); a failure after some
    parts went out is a PartialDelivery, so the retry sends only the rest and the customer never gets a part twice.
    """
    delivered = min(envelope.delivered_parts, len(parts))
    sent_id = envelope.provider_message_id
    try:
        for part in parts[delivered:]:
            part_id = await part()
            sent_id = sent_id or part_id
            delivered += 1
    except Exception as exc:
        meaning = failure(exc)
        if delivered > envelope.delivered_parts:
            raise PartialDelivery(delivered, sent_id, meaning) from exc
        if meaning is exc:
            raise
        raise meaning from exc
    return sent_id


# A file a message carries, as the provider describes it: (where to fetch it - a file id or a URL, its name, its
# content type, its declared size); and a download of one, which stores it (AttachmentInfo) or says why not.
FileRef = tuple[str, str, str, int | None]
Download = Callable[[str, str, str, "int | None", int],
                    Awaitable[tuple["AttachmentInfo | None", "dict[str, Any] | None"]]]


async def download_files(files: Sequence[FileRef], download: Download
                         ) -> tuple[list[AttachmentInfo], list[dict[str, Any]]]:
    """Each of a message's files through `download`, in order: (the stored ones, the refusals). A refused file
    does not stop the others; the message is kept either way, with the refusals for agents to see (as e-mail)."""
    stored: list[AttachmentInfo] = []
    rejected: list[dict[str, Any]] = []
    for index, (ref, name, content_type, size) in enumerate(files):
        kept, refused = await download(ref, name, content_type, size, index)
        if kept is not None:
            stored.append(kept)
        if refused is not None:
            rejected.append(refused)
    return stored, rejected


class ChannelRegistry:
    """Adapters keyed by channel kind."""

    def __init__(self) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}

    def register(self, adapter: ChannelAdapter) -> None:
        if adapter.kind in self._adapters:
            raise ValueError(f"channel {adapter.kind!r} registered twice")
        self._adapters[adapter.kind] = adapter

    def get(self, kind: str) -> ChannelAdapter | None:
        return self._adapters.get(kind)

    def remove(self, kind: str) -> None:
        """Forget a kind's adapter (stopped by the caller): a channel switched off or about to be rebuilt."""
        self._adapters.pop(kind, None)

    def __iter__(self) -> Iterator[ChannelAdapter]:
        return iter(self._adapters.values())

    def kinds(self) -> list[str]:
        return sorted(self._adapters)


@dataclass(frozen=True)
class ChannelContext:
    """What an adapter gets from the app: the ingest pipeline, live events, the database, a data folder, the
    attachment store (a folder of its own), the job registry."""

    ingest: IngestService
    bus: EventBus
    sessionmaker: async_sessionmaker[AsyncSession]
    data_dir: Path
    files: AttachmentBackend
    clock: Clock = SYSTEM_CLOCK  # rate limits read time from here, so tests drive it
    # Where the adapters run their readers and pollers (the app's registry; a context of its own without one).
    jobs: JobRegistry = None  # type: ignore[assignment]  # filled in by __post_init__

    def __post_init__(self) -> None:
        if self.jobs is None:
            bind = self.sessionmaker.kw.get("bind")
            object.__setattr__(self, "jobs", JobRegistry(
                self.clock, engine=bind if isinstance(bind, AsyncEngine) else None, bus=self.bus))
