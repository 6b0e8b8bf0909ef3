"""Settings of the NLU component."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class NluSettings(BaseModel):
    """Which intent engine runs and how sure it must be to answer on its own."""

    engine: Literal["embedded", "rasa", "keyword"] = "embedded"
    target_precision: float = Field(default=0.95, gt=0, le=1)
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = Field(default=10.0, gt=0)
    # DIET's confidence is not calibrated like the embedded engine's, so Rasa gets a fixed threshold.
    rasa_threshold: float = Field(default=0.7, ge=0, le=1)
