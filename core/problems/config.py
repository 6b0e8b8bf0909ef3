"""Settings of typical-problem analysis (SWITCHBOARD_PROBLEMS__...), part of the one settings object."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator


class ProblemsSettings(BaseModel):
    """Rising-problem detection and the clusters of what the bot did not understand."""

    rising_enabled: bool = Field(default=True, description="Run the rising-problem job (with the workers).")
    rising_every_seconds: float = Field(
        default=300.0, gt=0, description="How often the rising-problem job looks at the recent volume.")
    rising_window_hours: int = Field(
        default=2, ge=1, le=24, description="The recent window: the last N hours (the current hour counts in part).")
    rising_baseline_days: int = Field(
        default=14, ge=3, le=56,
        description="The usual volume of the window is the median of the same hours over the previous N days.")
    rising_ratio: float = Field(
        default=3.0, gt=1, description="An intent or channel rises when its window volume is at least this many "
                                       "times its usual volume ...")
    rising_min_count: int = Field(
        default=10, ge=1, description="... and at least this many tickets (so 1 -> 3 is no alert).")
    rising_resolve_ratio: float = Field(
        default=1.5, ge=1, description="An alert resolves when the volume is back under this many times the usual "
                                       "(below the raise ratio: a volume hovering at the threshold does not "
                                       "flap), or under half the minimum count.")
    clusters_max_messages: int = Field(
        default=2000, ge=10, le=20000,
        description="The clusters read at most this many not-understood messages of the period, the most recent "
                    "first (the cost is bounded on a year of data: bench/problems.py).")
    clusters_distance: float = Field(
        default=0.85, gt=0, lt=1,
        description="Two groups of texts join while their average cosine distance (TF-IDF, word and character "
                    "n-grams) is under this.")
    clusters_min_size: int = Field(default=2, ge=2, description="Smaller groups are not shown as clusters.")

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.rising_resolve_ratio >= self.rising_ratio:
            raise ValueError("rising_resolve_ratio must be below rising_ratio")
        return self
