"""Agents' own presence: the heartbeat that keeps them online, away, and the languages they answer in."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Agent, DbSession, State
from core.assignment import service as assignment
from core.assignment.schemas import PresenceRead, PresenceUpdate
from core.users.models import User

router = APIRouter(prefix="/me", tags=["presence"])


def presence_read(user: User, state: State) -> PresenceRead:
    offline_after = state.settings.core.presence_offline
    return PresenceRead(user_id=user.id, presence=assignment.presence_of(user, state.clock.now(), offline_after),
                        away=user.away, languages=list(user.languages or []), last_seen_at=user.last_seen_at)


@router.get("/presence", response_model=PresenceRead)
async def get_presence(user: Agent, state: State) -> PresenceRead:
    return presence_read(user, state)


@router.put("/presence", response_model=PresenceRead)
async def set_presence(body: PresenceUpdate, session: DbSession, user: Agent, state: State) -> PresenceRead:
    """Set yourself away (no new tickets; yours stay) or back, or the languages you answer in."""
    assignment.update_presence(session, user, body)
    return presence_read(user, state)


@router.post("/heartbeat", response_model=PresenceRead)
async def heartbeat(session: DbSession, user: Agent, state: State) -> PresenceRead:
    """I am here: online (or away) until `presence_offline_seconds` from now."""
    assignment.heartbeat(user, state.clock.now())
    return presence_read(user, state)
