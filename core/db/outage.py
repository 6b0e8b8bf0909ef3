"""Is this exception the database being unavailable? One answer for the API, the console and the channels.

An outage shows up in many shapes, depending on when it hits and which driver sees it:
- connecting to a server that is down: a bare `ConnectionRefusedError`/`OSError` raised inside asyncpg (SQLAlchemy
  does not wrap errors of the connect call), or a timeout;
- a server starting up, shutting down or in recovery: asyncpg's `CannotConnectNowError` ("the database system is
  starting up", "not yet accepting connections"), `AdminShutdownError` (SQLSTATE class 57P);
- a connection lost mid-query: `ConnectionDoesNotExistError`, a reset, an asyncpg `InterfaceError`, usually wrapped
  as SQLAlchemy's `DBAPIError`/`InterfaceError` with `connection_invalidated`;
- the pool exhausted (SQLAlchemy's `TimeoutError`), too many connections (SQLSTATE 53300);
- SQLite's `OperationalError` ("database is locked" after the busy timeout).
All of them mean: nothing was committed, the same request may succeed later. Everything else (a bug, a constraint,
a value the driver cannot encode) is not an outage, and retrying would not help.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from sqlalchemy import exc as sa_exc

# SQLSTATE classes of an unavailable server: 08 connection exception, 57P operator intervention (admin shutdown,
# crash shutdown, cannot connect now), 53 insufficient resources (too many connections, out of memory or disk).
_OUTAGE_SQLSTATES = ("08", "57P", "53")
_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3")
_MAX_CHAIN = 16
# 22021 character_not_in_repertoire (a NUL in a text), 22P05 untranslatable_character.
_UNSTORABLE_SQLSTATES = ("22021", "22P05")


def _raised_by_driver(tb: TracebackType | None) -> bool:
    """An OSError from the database driver's code (a socket), not from a file or an HTTP client elsewhere."""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.split(".", 1)[0] in _DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


def _is_outage_itself(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):  # pool timeout, lost connection
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_OUTAGE_SQLSTATES):
        return True
    # asyncpg's InterfaceError: "connection is closed", "connection was closed in the middle of operation".
    if type(exc).__module__.startswith("asyncpg") and type(exc).__name__ == "InterfaceError":
        return True
    return isinstance(exc, OSError | TimeoutError) and _raised_by_driver(exc.__traceback__)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: SQLAlchemy's .orig, an explicit `raise ... from`; not __context__ (an unrelated
    bug raised while handling a database error is still a bug)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) says the database cannot be reached or is not serving right now."""
    return any(_is_outage_itself(e) for e in _chain(exc))


def is_unstorable_text(exc: BaseException) -> bool:
    """True when PostgreSQL refused a text value the caller sent: a NUL character (SQLite stores it), or a
    character the database's encoding lacks. The caller's input, not an outage and not a bug: answered 422."""
    return any((getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)) in _UNSTORABLE_SQLSTATES
               for e in _chain(exc))
