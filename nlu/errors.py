"""Errors of the NLU component; each one says what went wrong in words an admin can act on."""

from __future__ import annotations


class NluError(Exception):
    """Base class of every NLU error."""


class DataFormatError(NluError):
    """Training data that cannot be read: bad syntax, unknown structure, invalid values."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = ""
        if source:
            where = f"{source}"
        if line is not None:
            where = f"{where}, line {line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class TrainingInProgressError(NluError):
    """A training job was started while another one is still running on the same engine."""


class ModelNotFoundError(NluError):
    """No model (or not the requested version) is available in the model directory."""


class EngineUnavailableError(NluError):
    """The engine cannot be reached (e.g. the Rasa server is down); callers escalate to humans."""
