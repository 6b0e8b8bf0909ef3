"""The console's connection test against the real Dovecot: each failure named as a person would say it."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import cast

from pydantic import SecretStr

from channels.base import ChannelContext
from channels.email.settings import SmtpSettings
from channels.setup.probe import probe
from tests.channels.email.conftest import Dovecot, SmtpSink
from tests.conftest import free_port

# Only the worker's settings and mailbox are used by a login: no app is needed.
NO_APP = cast(ChannelContext, None)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def local_server(handler: Handler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 answering each connection with `handler`; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, family=socket.AF_INET)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def silent_server() -> AbstractAsyncContextManager[int]:
    """Accepts connections and never says a word (a firewall that black-holes, a hung server)."""
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    return local_server(hold)


async def reasons(dovecot: Dovecot, user: str, seconds: float = 10.0, **changes: object) -> list[str | None]:
    result = await probe(dovecot.mailbox_settings(user, **changes), NO_APP, seconds=seconds)
    assert all(s.message is None or "mail-secret" not in s.message for s in result.steps)
    return [s.reason for s in result.steps]


async def test_each_failure_has_its_reason(dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    user = dovecot.add_user()
    ok = await probe(dovecot.mailbox_settings(user, smtp=SmtpSettings(host="127.0.0.1", port=smtp_sink.port,
                                                                       security="none")), NO_APP, seconds=2.0)
    assert ok.ok and [s.step for s in ok.steps] == ["imap", "smtp"]
    assert await reasons(dovecot, user, password=SecretStr("wrong")) == ["wrong_password"]
    assert await reasons(dovecot, user, port=free_port()) == ["unreachable"]
    assert await reasons(dovecot, user, host="no-such-host.invalid") == ["unreachable"]
    # TLS to the self-signed server without trusting its certificate; TLS spoken to the plain port.
    assert await reasons(dovecot, user, port=dovecot.ssl_port, security="ssl") == ["tls"]
    assert await reasons(dovecot, user, port=dovecot.ssl_port, security="ssl", ca_file=dovecot.ca_file) == [None]
    assert await reasons(dovecot, user, security="starttls", ca_file=dovecot.ca_file) == [None]
    async with silent_server() as port:
        assert await reasons(dovecot, user, seconds=0.5, port=port) == ["timeout"]


def echoing_smtp() -> AbstractAsyncContextManager[int]:
    """An SMTP server that refuses every login and echoes the credentials it was given in its answer (as some
    servers do, in their logs or their words): what the probe passes on must not show them."""
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 echo ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode().strip()
            if command.upper().startswith(("EHLO", "HELO")):
                writer.write(b"250-echo\r\n250 AUTH PLAIN\r\n")
            elif command.upper().startswith("AUTH PLAIN"):
                encoded = command.split(" ", 2)[2] if command.count(" ") >= 2 else ""
                if not encoded:
                    writer.write(b"334 \r\n")
                    await writer.drain()
                    encoded = (await reader.readline()).decode().strip()
                _, user, password = base64.b64decode(encoded).decode().split("\0")
                writer.write(f"535 5.7.8 login {user} with password {password} refused\r\n".encode())
            elif command.upper().startswith("QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    return local_server(talk)


async def test_a_server_echoing_the_password_has_it_blanked_out(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    secret = "smtp-Echoed-secret-77"
    async with echoing_smtp() as port:
        result = await probe(dovecot.mailbox_settings(user, smtp=SmtpSettings(
            host="127.0.0.1", port=port, security="none", username="sales", password=SecretStr(secret))),
            NO_APP, seconds=2.0)
    smtp = result.steps[-1]
    assert smtp.step == "smtp" and smtp.reason == "wrong_password", result
    # The server did echo it (the blank is where it was), and it is not passed on.
    assert smtp.message and "with password *** refused" in smtp.message and secret not in smtp.message
