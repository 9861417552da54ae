"""One exception family for the whole package.

User errors (bad configuration, unknown monitor, bad request) map to 4xx in the HTTP API and to exit
code 2 on the command line; system errors (storage, judge outages) map to 5xx / exit code 1.
Every message says what is wrong and, where it can, what to do about it.
"""

from __future__ import annotations

from typing import Any


class MonitorError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class UserError(MonitorError):
    """The caller asked for something wrong; they can fix it."""

    code = "bad_request"
    status = 400


class ConfigError(UserError):
    """A monitor configuration (or a setting) failed validation; details list the fields."""

    code = "validation_error"
    status = 422


class NotFoundError(UserError):
    code = "not_found"
    status = 404


class ServiceError(MonitorError):
    """Something on our side or a dependency failed; retrying may help."""

    code = "system_error"
    status = 500


class StorageError(ServiceError):
    code = "storage_error"
    status = 503


class JudgeError(ServiceError):
    """A judge call failed in a way that retrying will not fix for this record."""

    code = "judge_error"
    status = 502


class JudgeFatalError(JudgeError):
    """The judge cannot work at all (bad key, no permission, unknown deployment): stop the batch."""

    code = "judge_unavailable"
