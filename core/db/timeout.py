"""A time limit on each statement of user-driven work, so one slow query cannot hold the database.

A request's unit of work calls `limit_statements(session, seconds)` before its first statement. Then:
- PostgreSQL: every transaction of that session starts with `SET LOCAL statement_timeout`; the server cancels a
  statement running longer (SQLSTATE 57014, query_canceled) and frees its backend at once.
- SQLite: a progress handler on the connection interrupts a statement running past its deadline (SQLite has no
  statement timeout of its own); the deadline is set per statement, like PostgreSQL's.
Background jobs and ingest open their own sessions without a limit: their statements are bounded by design.
`is_statement_timeout(exc)` recognises the result, which the API answers with 503 (`query_timeout`).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only

_INFO_KEY = "statement_timeout_seconds"  # in Session.info
_GUARD_KEY = "statement_guard"  # in the pool record's info of a SQLite connection
QUERY_CANCELED = "57014"
# The progress handler runs every this many SQLite virtual-machine steps (~0.1-1 ms of work): the deadline is
# kept to within about a millisecond for a negligible cost.
_SQLITE_PROGRESS_STEPS = 20_000


def limit_statements(session: AsyncSession, seconds: float) -> None:
    """Bound every statement this session runs from now on to `seconds` (0: no limit)."""
    session.info[_INFO_KEY] = seconds if seconds > 0 else None


class _SqliteGuard:
    """The deadline of the statement running on one SQLite connection (read by its progress handler)."""

    __slots__ = ("deadline", "seconds")

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.deadline: float | None = None

    def start_statement(self) -> None:
        self.deadline = time.monotonic() + self.seconds if self.seconds else None

    def clear(self) -> None:
        self.seconds = None
        self.deadline = None

    def past_deadline(self) -> int:
        # Non-zero interrupts the statement (sqlite3.OperationalError: interrupted).
        return 1 if self.deadline is not None and time.monotonic() > self.deadline else 0


def install_sqlite_guard(engine: AsyncEngine, dbapi_conn: Any, record: Any) -> None:
    """On a new SQLite connection: the progress handler that enforces the statement deadline."""
    guard = _SqliteGuard()
    record.info[_GUARD_KEY] = guard
    # SQLAlchemy's aiosqlite adapter passes no progress handler through; set it on the driver's connection, in
    # its own thread, as the adapter does for create_function.
    await_only(dbapi_conn.driver_connection.set_progress_handler(guard.past_deadline, _SQLITE_PROGRESS_STEPS))


def watch_sqlite_engine(engine: AsyncEngine) -> None:
    """Start each statement's deadline, and drop the limit when the connection goes back to the pool."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Connection, *_args: Any) -> None:
        guard = conn.info.get(_GUARD_KEY)
        if guard is not None and guard.seconds:
            guard.start_statement()

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _clear(_dbapi_conn: Any, record: Any) -> None:
        guard = record.info.get(_GUARD_KEY) if record is not None else None
        if guard is not None:
            guard.clear()


@event.listens_for(Session, "after_begin")
def _apply_limit(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    seconds = session.info.get(_INFO_KEY)
    if not seconds:
        return
    if connection.dialect.name == "postgresql":
        # One round trip for both (set_config(..., true) is SET LOCAL). No JIT for requests either: on a big table
        # the planner's cost estimates cross jit_above_cost and the compilation alone takes 100-200 ms of a query
        # that then runs in 20 (bench/scale.py).
        connection.exec_driver_sql(
            f"SELECT set_config('statement_timeout', '{max(1, round(seconds * 1000))}', true), "
            "set_config('jit', 'off', true)")
    else:
        guard = connection.info.get(_GUARD_KEY)
        if guard is not None:
            guard.seconds = seconds


def is_statement_timeout(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) is a statement stopped by the time limit."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if sqlstate == QUERY_CANCELED:
            return True
        if isinstance(current, sqlite3.OperationalError | sa_exc.OperationalError) and str(
                getattr(current, "orig", current)) == "interrupted":
            return True
        orig = getattr(current, "orig", None) if isinstance(current, sa_exc.DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
