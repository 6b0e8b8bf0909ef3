"""Integration keys: named, scoped, hashed at rest (SHA-256; a key is 256 random bits, so no slow hash is needed),
shown once, revocable, with a last-used time.

Checking a key is on the REST channel's hot path (over a thousand messages a second), so `KeyCheck` keeps what it
looked up in memory for a few seconds: a revoked key stops working in every process within `ttl_seconds`. The
last-used time is written at most once per `touch_seconds` per key and process, in its own short transaction,
never once per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.apikeys import repository
from core.apikeys.models import ApiKey
from core.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Scope
from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.errors import ConflictError, NotFoundError
from core.users.models import User

KEY_PREFIX = "sbk_"
SHOWN_CHARS = 10  # "sbk_" and six characters: tells keys apart in a list, useless to a thief
ENV_KEY_NAME = "environment"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create(session: AsyncSession, body: ApiKeyCreate, actor: User | None) -> ApiKeyCreated:
    """A new key; the returned `key` is the only time it is ever shown."""
    name = body.name.strip()
    if await repository.by_name(session, name) is not None:
        raise ConflictError(f"an API key named {name!r} exists already", reason="duplicate_name")
    key = new_key()
    scopes = sorted({s.value for s in body.scopes})
    row = ApiKey(name=name, prefix=key[:SHOWN_CHARS], key_hash=hash_key(key), scopes=scopes,
                 created_by_id=actor.id if actor else None)
    session.add(row)
    await session.flush()
    audit.record(session, actor, "api_key.create", "api_key", row.id, name=name, scopes=scopes)
    return ApiKeyCreated(**ApiKeyRead.model_validate(row).model_dump(), key=key)


async def revoke(session: AsyncSession, key_id: int, actor: User | None, now: datetime) -> ApiKey:
    row = await repository.get(session, key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id} not found")
    if row.revoked_at is not None:
        raise ConflictError(f"API key {row.name!r} is revoked already", reason="already_revoked")
    row.revoked_at = now
    audit.record(session, actor, "api_key.revoke", "api_key", row.id, name=row.name)
    await session.flush()
    return row


def environment_key(env_key: str | None) -> ApiKeyRead | None:
    """The REST channel's key from the settings, listed first: it works as it always did (REST channel only)."""
    if not env_key:
        return None
    return ApiKeyRead(id=None, name=ENV_KEY_NAME, prefix=env_key[:4] + "…", scopes=[Scope.rest_channel.value],
                      created_at=None, revoked_at=None, last_used_at=None)


async def list_keys(session: AsyncSession, env_key: str | None) -> list[ApiKeyRead]:
    keys = [ApiKeyRead.model_validate(k) for k in await repository.list_keys(session)]
    env = environment_key(env_key)
    return [env, *keys] if env is not None else keys


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A valid key as a request sees it."""

    id: int | None  # None: the environment's key
    name: str
    scopes: frozenset[str]

    def allows(self, scope: Scope) -> bool:
        return scope.value in self.scopes


@dataclass
class KeyCheck:
    """Looks keys up with a short in-memory cache and writes their last-used time sparingly (per process)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    env_key: str | None = None
    clock: Clock = SYSTEM_CLOCK
    ttl_seconds: float = 5.0
    touch_seconds: float = 60.0
    max_entries: int = 10_000
    _cache: dict[str, tuple[float, KeyInfo | None]] = field(default_factory=dict)
    _touched: dict[int, float] = field(default_factory=dict)

    async def lookup(self, key: str) -> KeyInfo | None:
        """The key's info, or None for a wrong, unknown or revoked key."""
        if self.env_key and hmac.compare_digest(key.encode(), self.env_key.encode()):
            return KeyInfo(None, ENV_KEY_NAME, frozenset({Scope.rest_channel.value}))
        if not key.startswith(KEY_PREFIX):
            return None  # not one of ours: no database round trip for garbage
        digest = hash_key(key)
        now = self.clock.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.ttl_seconds:
            info = cached[1]
        else:
            async with self.sessionmaker() as session:
                row = await repository.by_hash(session, digest)
            info = (KeyInfo(row.id, row.name, frozenset(row.scopes))
                    if row is not None and row.revoked_at is None else None)
            if len(self._cache) >= self.max_entries:
                del self._cache[next(iter(self._cache))]
            self._cache[digest] = (now, info)
        if info is not None and info.id is not None:
            await self._touch(info.id, now)
        return info

    async def _touch(self, key_id: int, now: float) -> None:
        last = self._touched.get(key_id)
        if last is not None and now - last < self.touch_seconds:
            return
        self._touched[key_id] = now
        async with self.sessionmaker() as session, session.begin():
            await repository.touch(session, key_id, self.clock.now())

    def forget(self) -> None:
        """Drop the cache (a key revoked in this process stops working at once here)."""
        self._cache.clear()


def scopes_text(scopes: Sequence[str]) -> str:
    return ", ".join(scopes)
