"""A private PostgreSQL cluster a test starts, stops and restarts itself (never the machine's shared server).

initdb in a temporary folder, on a free port of 127.0.0.1, run as the `postgres` user when the tests run as root
(PostgreSQL refuses to run as root). `start(standby=True)` starts it as a standby with `hot_standby = off`: it
refuses every connection with SQLSTATE 57P03 ("the database system is not accepting connections") until
`promote()`, which is how a server that is starting up or recovering answers.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import free_port
from tests.support.waiting import wait_for_sync


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian layout), or whatever initdb is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivateCluster:
    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        self.bin = bindir
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="sb-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                  "--locale", "C")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=check)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, *, standby: bool = False) -> None:
        signal_file = self.data / "standby.signal"
        if standby:
            signal_file.touch()
            if self.as_postgres:
                user = pwd.getpwnam("postgres")
                os.chown(signal_file, user.pw_uid, user.pw_gid)
        options = "-c hot_standby=off" if standby else ""
        # -w waits for a server that accepts connections; a standby without hot standby never does.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  *(["-W"] if standby else ["-w"]), "start")
        if standby:
            # Not waiting above leaves the server starting; `promote` refuses a server that has not yet entered
            # archive recovery ("server is not in standby mode"), so wait until the control file says it has.
            wait_for_sync(self._in_recovery, "the standby in archive recovery", timeout=60, interval=0.05)

    def _in_recovery(self) -> bool:
        done = self._run("pg_controldata", "-D", str(self.data), check=False)
        return "in archive recovery" in done.stdout

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    def createdb(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
