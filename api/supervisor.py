"""`serve --workers N`: uvicorn's multiprocess master, made to say what happens to its workers.

uvicorn's master pings every worker through a pipe twice a second and kills one that does not answer within
`timeout_worker_healthcheck`; a worker that exits is replaced. It did all that without a word (its logging is off
with `log_config=None`), so a worker slot replaced a dozen times a minute under load looked like nothing at all.
This supervisor keeps uvicorn's processes and pipes (`uvicorn.supervisors.multiprocess`) and changes what the master
does around them:
- every start, exit and restart of a worker is a structured log line with the reason: the exit code or the signal
  that ended it, or the health ping it did not answer in time (then it is killed);
- the master keeps the counts in a small JSON file (written atomically, named to the workers through the setting
  `SWITCHBOARD_SUPERVISOR_STATE_FILE`), which every worker's `/health` and `/metrics` read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from socket import socket
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("switchboard.supervisor")

STATE_FILE_ENV = "SWITCHBOARD_SUPERVISOR_STATE_FILE"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def exit_reason(exitcode: int | None) -> tuple[str, dict[str, Any]]:
    """What ended a worker: ('signal', {'signal': 'SIGKILL'}) or ('exit', {'exit_code': 1})."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return "signal", {"signal": name}
    return "exit", {"exit_code": exitcode}


@dataclass
class SupervisorState:
    """What the master knows about its workers; the file the workers read."""

    master_pid: int
    workers: int
    started_at: str = field(default_factory=_now)
    restarts: int = 0
    restarts_by_reason: Counter[str] = field(default_factory=Counter)
    pids: list[int | None] = field(default_factory=list)
    last_restart: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"master_pid": self.master_pid, "workers": self.workers, "started_at": self.started_at,
                "restarts": self.restarts, "restarts_by_reason": dict(self.restarts_by_reason), "pids": self.pids,
                "last_restart": self.last_restart}

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict()), encoding="utf-8")
        tmp.replace(path)  # atomic: a worker reads the old file or the new one, never half of one


def read_state(path: Path | None) -> dict[str, Any] | None:
    """The master's counts, for /health and /metrics in a worker; None without a supervisor (one process)."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Supervisor(Multiprocess):
    """uvicorn's Multiprocess with logged, counted restarts (see the module docstring)."""

    def __init__(self, config: Config, sockets: list[socket], state_file: Path) -> None:
        super().__init__(config, sockets)
        self.state_file = state_file
        self.state = SupervisorState(master_pid=os.getpid(), workers=config.workers)

    def _save(self) -> None:
        self.state.pids = [p.pid for p in self.processes]
        self.state.workers = len(self.processes)
        try:
            self.state.write(self.state_file)
        except OSError as exc:  # the counts are information; a full disk must not stop the supervisor
            log.warning("supervisor state not written", extra={"event": "supervisor_state_failed",
                                                                 "error": str(exc)[:200]})

    def _spawn(self, slot: int) -> Process:
        process = Process(self.config, self.sockets)
        process.start()
        log.info("worker started", extra={"event": "worker_started", "slot": slot, "pid": process.pid})
        return process

    def init_processes(self) -> None:
        log.info("supervisor started", extra={
            "event": "supervisor_started", "pid": os.getpid(), "workers": self.processes_num,
            "healthcheck_timeout_seconds": self.config.timeout_worker_healthcheck, "state_file": str(self.state_file)})
        for slot in range(self.processes_num):
            self.processes.append(self._spawn(slot))
        self._save()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        timeout = self.config.timeout_worker_healthcheck
        for slot, process in enumerate(self.processes):
            if process.process.is_alive():
                if process.ping(timeout):
                    continue
                if not process.process.is_alive():  # it died while we waited for the answer
                    reason, details = exit_reason(self._reap(process))
                else:
                    # Alive but silent: uvicorn's answer is to kill it. Say so, with how long it had.
                    reason, details = "unresponsive", {"healthcheck_timeout_seconds": timeout}
                    log.error("worker did not answer the health ping in time; killing it", extra={
                        "event": "worker_unresponsive", "slot": slot, "pid": process.pid, **details})
                    self._reap(process)
            else:
                reason, details = exit_reason(self._reap(process))
            if process.exitcode == STARTUP_FAILURE and reason == "exit":
                # It failed before serving (the app, the socket): every restart would fail the same way.
                log.error("worker failed to start; stopping", extra={
                    "event": "worker_start_failed", "slot": slot, "pid": process.pid, "exit_code": STARTUP_FAILURE})
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.warning("worker exited", extra={"event": "worker_exited", "slot": slot, "pid": process.pid,
                                                "reason": reason, **details})
            replacement = self._spawn(slot)
            self.processes[slot] = replacement
            self.state.restarts += 1
            self.state.restarts_by_reason[reason] += 1
            self.state.last_restart = {"at": _now(), "slot": slot, "old_pid": process.pid, "pid": replacement.pid,
                                       "reason": reason, **details}
            log.warning("worker restarted", extra={"event": "worker_restarted", "slot": slot,
                                                   "old_pid": process.pid, "pid": replacement.pid, "reason": reason,
                                                   "restarts": self.state.restarts, **details})
            self._save()

    @staticmethod
    def _reap(process: Process) -> int | None:
        process.kill()  # a no-op for a process that is gone; closes the pipes either way
        process.join()
        return process.exitcode

    def run(self) -> None:
        try:
            super().run()
        finally:
            for process in self.processes:
                log.info("worker stopped", extra={"event": "worker_stopped", "pid": process.pid,
                                                  "exit_code": process.exitcode})
            log.info("supervisor stopped", extra={"event": "supervisor_stopped", "pid": os.getpid(),
                                                  "restarts": self.state.restarts})
            with contextlib.suppress(OSError):
                self.state_file.unlink()


def new_state_file() -> Path:
    """A private file for this master's counts (several servers on one machine each have their own)."""
    fd, name = tempfile.mkstemp(prefix="switchboard-supervisor-", suffix=".json")
    os.close(fd)
    return Path(name)
