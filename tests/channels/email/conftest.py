"""Real protocol peers for the email channel: a Dovecot IMAP server and an aiosmtpd SMTP server."""

from __future__ import annotations

import asyncio
import email
import imaplib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from channels.email.settings import EmailChannelSettings, ImapMailboxSettings, SmtpSettings
from tests.conftest import free_port
from tests.support.waiting import wait_for, wait_for_sync  # noqa: F401  (the e-mail tests import wait_for from here)

FIXTURES = Path(__file__).parent / "fixtures"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
PASSWORD = "mail-secret"
USERS = 500
# Dovecot refuses to access mail as root; as root the mail belongs to nobody.
MAIL_UID = 65534 if os.getuid() == 0 else os.getuid()
MAIL_GID = 65534 if os.getuid() == 0 else os.getgid()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = switchboard-test-{port}
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = 100
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot; each test gets its own users (mailboxes) on it."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    ssl_port: int = 0  # implicit TLS (imaps); `port` offers STARTTLS and, for the other tests, plain login
    host: str = "127.0.0.1"
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def ca_file(self) -> str:
        """The self-signed certificate of this Dovecot (for 127.0.0.1), to trust as a mailbox's `ca_file`."""
        return str(self.root / "tls" / "cert.pem")

    def add_user(self) -> str:
        """A fresh, empty mailbox (users are written up front: Dovecot caches the passwd file per second)."""
        number = next(self._ids)
        assert number <= USERS, "raise USERS"
        return f"support{number}"

    def _imap(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(user, PASSWORD)
        except BaseException:
            conn.shutdown()
            raise
        return conn

    def append_sync(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        conn = self._imap(user)
        try:
            for raw in messages:
                status, data = conn.append(folder, None, None, raw)
                assert status == "OK", data
        finally:
            conn.logout()

    async def append(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        await asyncio.to_thread(self.append_sync, user, *messages, folder=folder)

    def doveadm(self, *args: str) -> str:
        result = subprocess.run([DOVEADM, "-c", str(self.root / "dovecot.conf"), *args], capture_output=True,
                                timeout=30, check=True)
        return result.stdout.decode()

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(value), folder)

    def mailbox_settings(self, user: str, **overrides: Any) -> ImapMailboxSettings:
        values: dict[str, Any] = {
            "name": user, "host": self.host, "port": self.port, "security": "none", "username": user,
            "password": SecretStr(PASSWORD), "address": f"{user}@support.example", "poll_seconds": 2.0,
            "first_start": "all",
        }
        values.update(overrides)
        return ImapMailboxSettings(**values)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    def greets() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited with {process.returncode}")
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(100).startswith(b"* OK")

    wait_for_sync(greets, "dovecot greeting on its port", timeout=timeout, interval=0.05, ignore=(OSError,))


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in `folder`): the servers' and the trust."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def start_dovecot() -> Dovecot:
    """Start a private Dovecot on a free port; `stop_dovecot` ends it and removes its files."""
    # Not under pytest's basetemp: every pytest start resets /tmp/pytest-of-<user> to 0700, which would lock
    # Dovecot's unprivileged processes out of a run that is still going.
    root = Path(tempfile.mkdtemp(prefix="switchboard-dovecot-"))
    root.chmod(0o711)
    port, ssl_port = free_port(), free_port()
    for sub in ("run", "state", "mail", "tls"):
        (root / sub).mkdir()
    make_certificate(root / "tls")
    (root / "users").write_text("".join(f"support{i}:{{PLAIN}}{PASSWORD}\n" for i in range(1, USERS + 1)))
    (root / "users").chmod(0o644)
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port, ssl_port=ssl_port, uid=MAIL_UID,
                                                     gid=MAIL_GID))
    if os.getuid() == 0:
        os.chown(root / "mail", MAIL_UID, MAIL_GID)
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    server = Dovecot(root=root, port=port, process=process, ssl_port=ssl_port)
    try:
        _wait_for_port(port, process)
    except BaseException:
        stop_dovecot(server)
        raise
    return server


def stop_dovecot(server: Dovecot) -> None:
    process = server.process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    if process.stderr is not None:
        process.stderr.close()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if not Path(DOVECOT).exists():
        pytest.skip("dovecot is not installed (scripts/system-deps.sh installs it)")
    server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server)


@dataclass
class SmtpSink:
    """What the aiosmtpd server received; recipients in `refuse` get a permanent 550."""

    host: str
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        if address.lower() in self.defer:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content)))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[Message]:
        return [email.message_from_bytes(raw, policy=compat32) for _f, _r, raw in self.messages]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def email_settings(dovecot: Dovecot, smtp: SmtpSink | None, *mailboxes: ImapMailboxSettings,
                   **overrides: Any) -> EmailChannelSettings:
    values: dict[str, Any] = {
        "enabled": True, "mailboxes": list(mailboxes),
        "smtp": SmtpSettings(host="127.0.0.1", port=smtp.port if smtp else free_port(), security="none",
                             timeout_seconds=5),
        "from_address": "support@support.example", "message_id_domain": "support.example",
        "imap_timeout_seconds": 5, "reconnect_initial_seconds": 0.1, "reconnect_max_seconds": 1.0,
    }
    values.update(overrides)
    return EmailChannelSettings(**values)
