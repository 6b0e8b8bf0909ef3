"""Intents, examples and answers as admins edit them; training jobs; agents' suggested examples."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, JSONType, utcnow
from core.users.models import str_enum


class NluIntent(Base):
    __tablename__ = "nlu_intents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # Rasa's `metadata:` of the intent item

    examples: Mapped[list[NluExample]] = relationship(lazy="raise", order_by="NluExample.id",
                                                      cascade="all, delete-orphan")
    # Every variant of every language, each language's variants in their order (the first is "the" answer).
    responses: Mapped[list[NluResponse]] = relationship(lazy="raise", cascade="all, delete-orphan",
                                                        order_by="[NluResponse.language, NluResponse.position]")


class IntentActionRule(Base):
    """What the bot does with an intent, as an admin declared it (the shipped defaults live in code:
    core/nlu_admin/actions.py); one row per intent an admin set."""

    __tablename__ = "intent_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    intent: Mapped[str] = mapped_column(String(100), unique=True)
    action: Mapped[str] = mapped_column(String(32))


class NluExample(Base):
    __tablename__ = "nlu_examples"
    __table_args__ = (UniqueConstraint("intent_id", "text"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("nlu_intents.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(1000))
    language: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16), default="admin")  # shipped | admin | suggestion | import
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Entity annotations on `text` ([{start, end, entity, value?, role?, group?}], see nlu.protocol.ExampleEntity)
    # and Rasa's per-example metadata; None when there are none.
    entities: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class NluDataItem(Base):
    """One value of the data set's synonyms, regexes or lookups (kind synonym | regex | lookup; for a synonym
    `name` is the canonical value and `value` one variant), in the order it was imported."""

    __tablename__ = "nlu_data_items"
    __table_args__ = (Index("ix_nlu_data_items_kind", "kind", "name", "position", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)


class NluResponse(Base):
    __tablename__ = "nlu_responses"
    __table_args__ = (UniqueConstraint("intent_id", "language", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("nlu_intents.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    # The variant's place among the intent's answers in this language (Rasa's response variants); 0 is the first.
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    text: Mapped[str] = mapped_column(Text)


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class NluTrainingJob(Base):
    __tablename__ = "nlu_training_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[JobState] = mapped_column(str_enum(JobState), default=JobState.queued, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(200), default="queued")
    version: Mapped[str | None] = mapped_column(String(100))
    activate: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Written every few seconds by the process running the job: a running job whose heartbeat is over a minute
    # old lost its process, and whoever is alive fails it (so a crash does not block training).
    heartbeat_at: Mapped[datetime | None]


class SuggestionStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class NluSuggestion(Base):
    """An agent's correction of a customer message's intent, waiting for an admin to accept it as an example."""

    __tablename__ = "nlu_suggestions"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    text: Mapped[str] = mapped_column(String(1000))
    intent: Mapped[str] = mapped_column(String(100))
    predicted_intent: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[SuggestionStatus] = mapped_column(str_enum(SuggestionStatus), default=SuggestionStatus.pending,
                                                     index=True)
    suggested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_at: Mapped[datetime | None]


class NluActiveModel(Base):
    """The model version every instance should parse with (one row, id 1): the switch all instances follow.

    The engine's files say which versions exist; this row says which one is on, so an instance that missed the
    switch event (Redis down, or it was restarting) finds out on its next look.
    """

    __tablename__ = "nlu_active_model"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class NluInstance(Base):
    """What one running instance (one server process) reports it parses with, for admins and /health."""

    __tablename__ = "nlu_instances"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    engine: Mapped[str] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class NluModelVersion(Base):
    """A trained model version's files, published by the instance that trained it: every other instance fetches
    them from here into its local model directory (a cache) before loading the version, so no disk is shared.

    The model file is a compressed joblib of a few MB and is loaded whole anyway, so it is one value."""

    __tablename__ = "nlu_model_versions"
    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    engine: Mapped[str] = mapped_column(String(32))
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it was last switched on (None: never, or rolled back from): rollback goes to the latest before the
    # current one, whichever instance switched it, as the engine's own history.json does on one machine.
    activated_at: Mapped[datetime | None]
