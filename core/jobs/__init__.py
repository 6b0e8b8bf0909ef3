"""Every background or time-driven job: a named job on one registry (schedule, lease, backoff, health)."""

from core.jobs.backoff import Backoff
from core.jobs.job import Job, JobContext, JobHealth, JobState
from core.jobs.registry import JobRegistry
from core.jobs.schedule import DailyAt, Every, Schedule, parse_schedule

__all__ = ["Backoff", "DailyAt", "Every", "Job", "JobContext", "JobHealth", "JobRegistry", "JobState", "Schedule",
           "parse_schedule"]
