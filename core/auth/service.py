"""Sign-in protection: failed sign-ins make the account and the address wait longer and longer, then lock
the account for a while; a successful sign-in clears the account; admins unlock. All counted in the database
(one row per account and per address), so it holds across workers and instances.

Callers commit after a failure too: a failure that is not committed was never counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.auth import repository
from core.auth.errors import AccountLockedError, LoginThrottledError
from core.auth.models import LoginThrottle, ThrottleScope
from core.auth.ratelimit import backoff_seconds
from core.auth.schemas import LoginRestrictionRead
from core.auth.settings import LoginProtectionSettings
from core.errors import AuthenticationError
from core.users import service as users
from core.users.models import User

AUDIT_KEY_CHARS = 64  # audit_log.entity_id


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def check(session: AsyncSession, policy: LoginProtectionSettings, email: str, address: str,
                now: datetime) -> None:
    """Raise when this account or address must wait (or the account is locked); otherwise return at once."""
    if not policy.enabled:
        return
    rows = await repository.find(session, [(ThrottleScope.account, normalise_email(email)),
                                           (ThrottleScope.address, address)])
    for row in rows:
        if row.scope == ThrottleScope.account and row.locked_until is not None and row.locked_until > now:
            raise AccountLockedError("this account is locked after too many failed sign-ins; try again later "
                                     "or ask an administrator to unlock it", row.locked_until, now, "account")
    for row in rows:
        if row.blocked_until is not None and row.blocked_until > now:
            whose = "this account" if row.scope == ThrottleScope.account else "your address"
            raise LoginThrottledError(f"too many failed sign-ins for {whose}; wait before trying again",
                                      row.blocked_until, now, row.scope.value)


async def authenticate(session: AsyncSession, policy: LoginProtectionSettings, email: str, password: str,
                       address: str, now: datetime) -> User | None:
    """Sign in through the throttle.

    Raises `LoginThrottledError` / `AccountLockedError` (429) before the password is even looked at when the
    account or address must wait. Returns the user, or None for a wrong email or password - that failure is
    counted in `session`, which the caller must commit before it answers.
    """
    await check(session, policy, email, address, now)
    try:
        user = await users.authenticate(session, email, password)
    except AuthenticationError:
        await record_failure(session, policy, email, address, now)
        return None
    if policy.enabled:
        # The account's slate is wiped; the address's is not, or one valid account would let its owner
        # reset the count between guesses at other accounts.
        await repository.remove(session, ThrottleScope.account, normalise_email(email))
    return user


def _audit_target(user: User | None, email: str) -> tuple[str, object]:
    return ("user", user.id) if user is not None else ("login", email[:AUDIT_KEY_CHARS])


async def record_failure(session: AsyncSession, policy: LoginProtectionSettings, email: str, address: str,
                         now: datetime) -> None:
    """Count one failed sign-in against the account and the address; audit a burst or a lock as it starts."""
    if not policy.enabled:
        return
    email = normalise_email(email)
    window = timedelta(minutes=policy.failure_window_minutes)
    await repository.purge_stale(session, now - window, now)
    # Always the account row first, then the address row: concurrent failures lock in one order.
    account = await repository.lock_row(session, ThrottleScope.account, email, now)
    if account.locked_until is not None and account.locked_until <= now:
        account.failures, account.locked_until, account.blocked_until = 0, None, None  # a served lock: start over
    _count(account, now, window)
    target: tuple[str, object] | None = None
    if account.failures >= policy.account_lock_failures:
        account.locked_until = now + timedelta(minutes=policy.account_lock_minutes)
        account.blocked_until = None
        target = _audit_target(await users.get_by_email(session, email), email)
        audit.record(session, None, "auth.locked", *target, email=email, address=address,
                     failures=account.failures, until=account.locked_until.isoformat())
    else:
        excess = account.failures - policy.account_free_failures
        if excess > 0:
            account.blocked_until = now + timedelta(seconds=backoff_seconds(
                excess, policy.account_delay_seconds, policy.account_max_delay_seconds))
        if excess == 1:
            target = _audit_target(await users.get_by_email(session, email), email)
            audit.record(session, None, "auth.throttled", *target, email=email, address=address,
                         failures=account.failures, until=account.blocked_until.isoformat()
                         if account.blocked_until else None)
    holder = await repository.lock_row(session, ThrottleScope.address, address, now)
    _count(holder, now, window)
    excess = holder.failures - policy.address_free_failures
    if excess > 0:
        holder.blocked_until = now + timedelta(seconds=backoff_seconds(
            excess, policy.address_delay_seconds, policy.address_max_delay_seconds))
    if excess == 1:
        audit.record(session, None, "auth.address_throttled", "address", address[:AUDIT_KEY_CHARS],
                     address=address, failures=holder.failures, last_email=email,
                     until=holder.blocked_until.isoformat() if holder.blocked_until else None)
    await session.flush()


def _count(row: LoginThrottle, now: datetime, window: timedelta) -> None:
    if row.failures and now - row.last_failure_at > window:
        row.failures, row.blocked_until = 0, None  # an old streak is forgotten
    row.failures += 1
    row.last_failure_at = now


async def restricted_accounts(session: AsyncSession, now: datetime) -> dict[str, LoginThrottle]:
    """E-mail -> its row, for accounts locked or waiting now (the admins' users page)."""
    return {row.key: row for row in await repository.restricted_accounts(session, now)}


async def restricted_users(session: AsyncSession, now: datetime) -> list[LoginRestrictionRead]:
    """The users whose accounts are locked or made to wait now."""
    rows = await restricted_accounts(session, now)
    by_email = {u.email: u for u in await users.list_users(session)}
    return [LoginRestrictionRead(user_id=user.id, email=email, failures=row.failures, locked_until=row.locked_until,
                                 blocked_until=row.blocked_until)
            for email, row in rows.items() if (user := by_email.get(email)) is not None]


async def unlock(session: AsyncSession, user: User, actor: User | None) -> bool:
    """Clear the account's failures, delay and lock (an admin's decision, audited); False when there was none."""
    cleared = await repository.remove(session, ThrottleScope.account, normalise_email(user.email))
    audit.record(session, actor, "auth.unlock", "user", user.id, email=user.email, had_restriction=cleared)
    return cleared
