"""Domain errors of the audience. The web layer maps them to HTTP; nothing here
speaks HTTP."""
from __future__ import annotations


class AudienceError(Exception):
    """Base of the audience's errors."""


class SubscriberNotFoundError(AudienceError):
    """No such subscriber in the caller's account (another account's id included)."""


class DuplicateSubscriberError(AudienceError):
    """The account already has a subscriber with this address."""


class InvalidSubscriberError(AudienceError):
    """Input failed validation; ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Invalid value for: " + ", ".join(sorted(errors)))
        self.errors = errors


class ImportPayloadError(AudienceError):
    """The uploaded import cannot be accepted as a whole (not CSV/JSON, no email
    column, empty); ``field`` names what was wrong."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


class ImportTooLargeError(ImportPayloadError):
    """The upload exceeds the byte or row limit."""


class InvalidFilterError(AudienceError):
    """A segment's input failed validation; ``errors`` maps each bad field, or each
    bad node of the filter by its path inside the request (``filter.all.2.op``), to
    its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Invalid filter at: " + ", ".join(sorted(errors)))
        self.errors = errors


class SegmentNotFoundError(AudienceError):
    """No such segment in the caller's account (another account's id included)."""


class SegmentTooLargeError(AudienceError):
    """The segment has more members than the action takes at once."""
