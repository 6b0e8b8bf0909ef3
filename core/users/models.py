from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, JSONType, utcnow


class Role(enum.StrEnum):
    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"agent": 1, "supervisor": 2, "admin": 3}[self.value]


class AssignmentMode(enum.StrEnum):
    """How a queue's waiting tickets reach agents (core/assignment)."""

    manual = "manual"  # agents take them
    round_robin = "round_robin"  # the next eligible agent after the last one given a ticket
    least_loaded = "least_loaded"  # the eligible agent with the fewest open tickets


def str_enum(cls: type[enum.StrEnum]) -> Enum:
    """A portable (non-native) enum column storing the member values."""
    return Enum(cls, native_enum=False, length=16, validate_strings=True,
                values_callable=lambda e: [m.value for m in e])


class Team(Base):
    """A team of agents; tickets are queued to a team ("queue" in the API)."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Hand-over (core/handover): the queue's business hours (None: always open), whether the bot may still answer
    # self-service questions while a customer waits, and the wait to quote before the queue has any history.
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="SET NULL"))
    bot_answers_while_waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    default_wait_minutes: Mapped[int] = mapped_column(Integer, default=15)
    assignment_mode: Mapped[AssignmentMode] = mapped_column(str_enum(AssignmentMode),
                                                            default=AssignmentMode.manual)
    # An offline agent's untouched tickets go back to the queue after this long (automatic queues).
    return_after_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # Round robin's pointer: the agent last given a ticket here (no foreign key: a deleted agent's id still
    # orders the next one after it).
    last_assigned_user_id: Mapped[int | None] = mapped_column(Integer)
    # Satisfaction surveys (core/csat): sent this long after a person resolves a ticket of this queue; off until
    # an admin turns them on (a message the customer did not ask for).
    csat_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    csat_delay_minutes: Mapped[int] = mapped_column(Integer, default=60)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # What customers see on the agent's replies and typing (web chat, Telegram, e-mail); None: `shown_name`.
    display_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.agent)
    language: Mapped[str] = mapped_column(String(8), default="en")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    # Languages the agent answers in (["ru", "en"]); empty: no restriction, any ticket's language.
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Set by the agent: no new tickets are assigned while away, the ones held stay.
    away: Mapped[bool] = mapped_column(Boolean, default=False)
    last_assigned_at: Mapped[datetime | None]

    team: Mapped[Team | None] = relationship(lazy="raise")

    @property
    def shown_name(self) -> str:
        """The name customers see: the display name, else the first word of the full name."""
        return display_name_of(self.display_name, self.name)


def display_name_of(display_name: str | None, name: str) -> str:
    """A display name, or the first word of `name` when there is none ("Anna Petrova" -> "Anna")."""
    if display_name and display_name.strip():
        return display_name.strip()
    words = name.split()
    return words[0] if words else name


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
