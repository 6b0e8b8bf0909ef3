"""Which adapters run: one factory per channel kind, each reading its own settings model."""

from __future__ import annotations

from collections.abc import Callable

from channels.base import ChannelAdapter, ChannelContext
from channels.config import ChannelsSettings
from channels.email.adapter import EmailChannel
from channels.rest.adapter import RestChannel
from channels.telegram.adapter import TelegramChannel
from channels.vk.adapter import VkChannel
from channels.webchat.adapter import WebchatChannel
from channels.whatsapp.adapter import WhatsappChannel

ChannelFactory = Callable[[ChannelsSettings, ChannelContext], ChannelAdapter | None]


def _rest(settings: ChannelsSettings, ctx: ChannelContext) -> ChannelAdapter | None:
    return RestChannel(settings.rest) if settings.rest.enabled else None


def _email(settings: ChannelsSettings, ctx: ChannelContext) -> ChannelAdapter | None:
    return EmailChannel(settings.email, ctx) if settings.email.enabled else None


def _telegram(settings: ChannelsSettings, ctx: ChannelContext) -> ChannelAdapter | None:
    return TelegramChannel(settings.telegram, ctx) if settings.telegram.enabled else None


def _vk(settings: ChannelsSettings, ctx: ChannelContext) -> ChannelAdapter | None:
    return VkChannel(settings.vk, ctx) if settings.vk.enabled else None


def _whatsapp(settings: ChannelsSettings, ctx: ChannelContext) -> ChannelAdapter | None:
    return WhatsappChannel(settings.whatsapp, ctx) if settings.whatsapp.enabled else None


def _webchat(settings: ChannelsSettings, ctx: ChannelContext) -> ChannelAdapter | None:
    return WebchatChannel(settings.webchat, ctx) if settings.webchat.enabled else None


# One entry per channel kind; a factory returns None when its channel is disabled.
FACTORIES: dict[str, ChannelFactory] = {
    "rest": _rest,
    "email": _email,
    "telegram": _telegram,
    "webchat": _webchat,
    "vk": _vk,
    "whatsapp": _whatsapp,
}


def build_channels(settings: ChannelsSettings, ctx: ChannelContext) -> list[ChannelAdapter]:
    adapters = []
    for factory in FACTORIES.values():
        adapter = factory(settings, ctx)
        if adapter is not None:
            adapters.append(adapter)
    return adapters
