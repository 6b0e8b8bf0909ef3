"""What the NLU admin API reads and returns: intents, examples, answers, training jobs, versions, suggestions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.decision.policy import IntentAction
from core.nlu_admin.service import MAX_ANSWER_CHARS


class IntentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=64)
    description: str = Field(default="", max_length=2000)


class ExampleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)


class ExampleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    text: str
    language: str
    source: str


class IntentRead(BaseModel):
    name: str
    description: str
    examples: list[ExampleRead]
    responses: dict[str, str]


class ResponsesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ru: str | None = Field(default=None, max_length=MAX_ANSWER_CHARS)
    en: str | None = Field(default=None, max_length=MAX_ANSWER_CHARS)


class IntentActionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: IntentAction = Field(description="answer: the bot answers (FAQ, needs an answer text); "
                                 "answer_and_escalate: the bot says the intent's answer, then the ticket goes to its "
                                 "queue; escalate: straight to the queue; self_service: the bot looks the answer "
                                 "up (order_status)")


class IntentActionRead(BaseModel):
    intent: str
    action: IntentAction
    declared: bool = Field(description="set by an admin (false: the shipped default, or for an intent without "
                                       "one: answer when it has an answer text, else escalate)")


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activate: bool = Field(default=False, description="Switch the new model on when training succeeds")


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    state: str
    progress: float
    stage: str
    version: str | None
    activate: bool
    error: str | None
    report: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SuggestionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    intent: str = Field(min_length=2, max_length=64)


class SuggestionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    message_id: int | None
    text: str
    intent: str
    predicted_intent: str | None
    status: str
    suggested_by: int | None
    created_at: datetime


class VersionRead(BaseModel):
    """A saved model version as admins see it (from the engine's manifest)."""

    version: str
    active: bool  # the version all instances should use (the database's, else the engine's own record)
    loaded_here: bool = False  # the version this instance parses with right now
    instances: list[str] = []  # the instances that report they parse with it
    created_at: str | None
    n_examples: int | None
    n_intents: int | None
    threshold: float | None
    target_precision: float | None = None  # what the threshold was chosen for, when the engine chooses one
    train_seconds: float | None
    size_bytes: int | None
    cross_validation: dict[str, Any]


class InstanceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    host: str
    pid: int
    engine: str
    version: str | None
    in_sync: bool
    this_instance: bool
    started_at: datetime
    seen_at: datetime


DataKind = Literal["synonym", "regex", "lookup"]


class DataItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: DataKind
    name: str = Field(max_length=1000, description="synonym: the canonical value; regex, lookup: the entity name")
    value: str = Field(max_length=5000, description="synonym: one variant; regex: the pattern; lookup: one entry")


class DataItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=1000)
    value: str | None = Field(default=None, max_length=5000)


class DataItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    name: str
    value: str
    position: int


class DataItemPage(BaseModel):
    items: list[DataItemRead]
    limit: int
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page (keyset: no value "
                                    "is skipped or repeated while values are added or deleted); null on the last "
                                    "page")


class ExampleMarkupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    markup: str = Field(max_length=5000, description='Rasa markup: "fly to [Moscow](city)" or '
                        '[Moscow]{"entity": "city", "role": "to"}')


class ExampleAnnotationsRead(BaseModel):
    id: int
    text: str
    language: str
    markup: str
    entities: list[dict[str, Any]]


class VariantsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variants: list[str] = Field(max_length=100, description="In order; at least one")


class VariantsRead(BaseModel):
    intent: str
    language: str
    variants: list[str]
