"""Admin API of channels set up in the browser: configurations (secrets write-only), their connection test."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Admin, DbSession, IdPath, State
from api.openapi import CONFLICT, UNAVAILABLE
from api.state import AppState
from channels.base import ChannelContext
from channels.setup import service
from channels.setup.probe import probe
from channels.setup.schemas import (
    ChannelConfigCreate,
    ChannelConfigRead,
    ChannelConfigUpdate,
    ChannelListRead,
    EnvChannelRead,
    ProbeRead,
)
from core.channel_configs import repository
from core.channel_configs.secrets import SecretBox
from core.errors import ServiceUnavailableError

router = APIRouter(prefix="/admin/channels", tags=["admin"])


def box_of(state: AppState) -> SecretBox:
    if state.secret_box is None:
        raise ServiceUnavailableError("channel set-up is not available on this instance")
    return state.secret_box


def context_of(state: AppState) -> ChannelContext:
    if state.channel_setup is None:
        raise ServiceUnavailableError("this instance runs channels of its own; set-up in the browser is off")
    return state.channel_setup.ctx


@router.get("", response_model=ChannelListRead)
async def list_channels(session: DbSession, state: State, _user: Admin) -> ChannelListRead:
    """Every configuration set up here, and the channels the environment configures (read-only)."""
    env = state.settings.channels
    return ChannelListRead(
        configs=service.list_reads(await repository.list_all(session), box_of(state), env),
        environment=[EnvChannelRead(kind=k, enabled=e, mailboxes=m) for k, e, m in service.env_summary(env)])


@router.post("", response_model=ChannelConfigRead, status_code=201, responses={**CONFLICT})
async def create_channel(body: ChannelConfigCreate, session: DbSession, state: State, actor: Admin
                         ) -> ChannelConfigRead:
    """A new channel; it runs on every instance within seconds. 409 when the environment configures the same
    channel (or mailbox name), or the kind allows one configuration and has it; 422 naming each bad field."""
    env = state.settings.channels
    row = await service.create(session, body, actor, box_of(state), env)
    return service.read(row, box_of(state), env)


@router.get("/{config_id}", response_model=ChannelConfigRead)
async def get_channel(config_id: IdPath, session: DbSession, state: State, _user: Admin) -> ChannelConfigRead:
    return service.read(await service.get(session, config_id), box_of(state), state.settings.channels)


@router.patch("/{config_id}", response_model=ChannelConfigRead, responses={**CONFLICT})
async def update_channel(config_id: IdPath, body: ChannelConfigUpdate, session: DbSession, state: State,
                         actor: Admin) -> ChannelConfigRead:
    """Change name, enabled or settings (a secret left out or empty keeps its value; `clear_secrets` removes)."""
    env = state.settings.channels
    row = await service.update(session, config_id, body, actor, box_of(state), env)
    return service.read(row, box_of(state), env)


@router.delete("/{config_id}", status_code=204)
async def delete_channel(config_id: IdPath, session: DbSession, actor: Admin) -> None:
    """Remove a configuration; its channel stops on every instance within seconds."""
    await service.delete(session, config_id, actor)


@router.post("/{config_id}/test", response_model=ProbeRead, responses={**UNAVAILABLE})
async def probe_channel(config_id: IdPath, session: DbSession, state: State, _user: Admin) -> ProbeRead:
    """Log in with the stored configuration (IMAP and SMTP for a mailbox, getMe for a Telegram bot); each step
    says whether it worked and, if not, why (wrong_password, unreachable, tls, timeout, bad_token, refused)."""
    model = service.probe_model(await service.get(session, config_id), box_of(state))
    return await probe(model, context_of(state))
