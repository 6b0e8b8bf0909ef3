"""The console's "Test connection": really log in to the mailbox's IMAP and SMTP servers, ask Telegram who the bot
is (getMe), and say what went wrong as a reason code the page puts in words (RU/EN)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aioimaplib
import aiosmtplib
from pydantic import BaseModel, SecretStr
from telegram import Bot
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from channels.base import ChannelContext
from channels.email.imap import ImapError, MailboxWorker
from channels.email.settings import EmailChannelSettings, ImapMailboxSettings, SmtpSettings
from channels.setup.schemas import ProbeRead, ProbeStep
from channels.telegram.settings import TelegramChannelSettings

TIMEOUT_SECONDS = 10.0


def _reason(exc: BaseException) -> str:
    """A failure to connect -> wrong_password | unreachable | tls | timeout | refused."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return "tls"
        if isinstance(seen, aiosmtplib.SMTPAuthenticationError):
            return "wrong_password"
        if isinstance(seen, TimeoutError | aiosmtplib.SMTPTimeoutError):
            return "timeout"
        if isinstance(seen, socket.gaierror | ConnectionRefusedError | ConnectionResetError):
            return "unreachable"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    if "ssl" in text or "tls" in text or "certificate" in text:
        return "tls"
    if "login refused" in text or "authentication" in text:
        return "wrong_password"
    if isinstance(exc, aiosmtplib.SMTPConnectError | OSError):
        return "unreachable"
    return "refused"


def _failed(step: str, exc: BaseException) -> ProbeStep:
    return ProbeStep(step=step, ok=False, reason=_reason(exc), message=f"{type(exc).__name__}: {exc}"[:300])


async def _imap(mailbox: ImapMailboxSettings, ctx: ChannelContext, seconds: float) -> ProbeStep:
    worker = MailboxWorker(mailbox, EmailChannelSettings(imap_timeout_seconds=seconds), ctx, lambda: None)
    try:
        async with asyncio.timeout(seconds * 2):
            await worker.try_login()
    except (OSError, TimeoutError, ImapError, aioimaplib.AioImapException, ssl.SSLError) as exc:
        return _failed("imap", exc)
    return ProbeStep(step="imap", ok=True)


async def _smtp(smtp: SmtpSettings, seconds: float) -> ProbeStep:
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, use_tls=smtp.security == "ssl",
                             start_tls=smtp.security == "starttls", cert_bundle=smtp.ca_file,
                             timeout=min(smtp.timeout_seconds, seconds))
    try:
        async with asyncio.timeout(seconds * 2):
            await client.connect()
            try:
                if smtp.username:
                    await client.login(smtp.username, smtp.password.get_secret_value() if smtp.password else "")
            finally:
                await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return _failed("smtp", exc)
    return ProbeStep(step="smtp", ok=True)


async def _telegram(settings: TelegramChannelSettings, seconds: float) -> ProbeStep:
    if settings.token is None:
        return ProbeStep(step="telegram", ok=False, reason="no_token")
    request = HTTPXRequest(connect_timeout=seconds, read_timeout=seconds)
    try:
        bot = Bot(settings.token.get_secret_value(), base_url=settings.base_url,
                  base_file_url=settings.base_file_url, request=request, get_updates_request=request)
        async with asyncio.timeout(seconds * 2):
            me = await bot.get_me()
    except (InvalidToken, Forbidden) as exc:
        return ProbeStep(step="telegram", ok=False, reason="bad_token", message=str(exc)[:300])
    except (TimedOut, TimeoutError) as exc:
        return ProbeStep(step="telegram", ok=False, reason="timeout", message=str(exc)[:300])
    except NetworkError as exc:
        return ProbeStep(step="telegram", ok=False, reason="unreachable", message=str(exc)[:300])
    except TelegramError as exc:
        return ProbeStep(step="telegram", ok=False, reason="refused", message=str(exc)[:300])
    finally:
        await request.shutdown()
    return ProbeStep(step="telegram", ok=True, message=f"@{me.username}" if me.username else str(me.id))


def _secrets_of(model: BaseModel) -> list[str]:
    """Every secret value of a settings model, nested models included."""
    values = []
    for value in model.__dict__.values():
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            values.extend(_secrets_of(value))
    return values


async def probe(model: BaseModel, ctx: ChannelContext, seconds: float = TIMEOUT_SECONDS) -> ProbeRead:
    """Try the configuration's connections; kinds without an outward login report what they can. A server's
    message is passed on, with any secret of the configuration it might echo blanked out."""
    steps: list[ProbeStep] = []
    if isinstance(model, ImapMailboxSettings):
        steps.append(await _imap(model, ctx, seconds))
        if model.smtp is not None:
            steps.append(await _smtp(model.smtp, seconds))
    elif isinstance(model, TelegramChannelSettings):
        steps.append(await _telegram(model, seconds))
    else:
        steps.append(ProbeStep(step="settings", ok=True, reason="no_test"))
    secrets = _secrets_of(model)
    for step in steps:
        for secret in secrets:
            if step.message and secret in step.message:
                step.message = step.message.replace(secret, "***")
    return ProbeRead(ok=all(s.ok for s in steps), steps=steps)
