"""Settings of sign-in protection, part of the one settings object (`SWITCHBOARD_LOGIN__...`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LoginProtectionSettings(BaseModel):
    """Failed sign-ins slow down, then lock the account for a while; the address is throttled separately.

    Account and address are separate on purpose: the account lock stops guessing one password from many
    addresses, while the address throttle (delays only, never a lock, a higher threshold) slows one address
    guessing many accounts without shutting out a whole office behind one NAT address.
    """

    enabled: bool = True
    failure_window_minutes: float = Field(
        default=60.0, gt=0, description="Failures are forgotten this long after the last one.")
    account_free_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins to one account before each further try must wait.")
    account_delay_seconds: float = Field(
        default=1.0, gt=0, description="The first wait; it doubles with each further failure...")
    account_max_delay_seconds: float = Field(default=60.0, gt=0, description="...up to this.")
    account_lock_failures: int = Field(
        default=15, ge=2, description="Failures that lock the account (the right password is refused too).")
    account_lock_minutes: float = Field(
        default=15.0, gt=0, description="How long a lock lasts unless an admin unlocks the account sooner.")
    address_free_failures: int = Field(
        default=30, ge=1, description="Failed sign-ins (any accounts) from one address before it must wait.")
    address_delay_seconds: float = Field(default=1.0, gt=0)
    address_max_delay_seconds: float = Field(default=60.0, gt=0)
