"""Why an attachment is refused; each error carries the status the API answers with."""

from __future__ import annotations

from core.errors import DomainError


class AttachmentTooLargeError(DomainError):
    status_code = 413
    code = "payload_too_large"


class AttachmentRefusedError(DomainError):
    """A type or extension that could run code on the agent's or the customer's machine."""

    status_code = 415
    code = "unsupported_media_type"
