"""The reference to a stored file that a reply carries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class AttachmentRef(BaseModel):
    """An attachment an agent sends: `storage_key` must name a file already in the store (see `POST /attachments`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255,
                              pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
    size: StrictInt | None = Field(default=None, ge=0)
    storage_key: str = Field(min_length=1, max_length=512)
