"""Errors a use case can end in. The API maps each to problem+json with a stable type and its sentence."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from gpulease.services.work import AuditEntry


class ServiceError(Exception):
    status = 400
    type = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, record: AuditEntry | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.record = record  # kept in the audit log although the action was refused
        self.extra = extra


class InvalidRequest(ServiceError):
    status = 422
    type = "invalid-request"
    title = "Invalid request"


class NotFound(ServiceError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    type = "conflict"
    title = "Conflict"


class NoCapacity(Conflict):
    type = "no-capacity"
    title = "Cannot be placed"


class Forbidden(ServiceError):
    status = 403
    type = "forbidden"
    title = "Forbidden"


class NotCleared(Forbidden):
    type = "not-cleared"
    title = "Customer not cleared"


def store_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (a connection lost, or refused): the request may be sent
    again once it is back (the API answers 503 with Retry-After), unlike an error of the request or of the code."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = type(exc.orig)
    # psycopg's own OperationalError (not a subclass: a lock timeout or a deadlock is one too) is a connection
    # that could not be made.
    return orig.__name__ == "OperationalError" and orig.__module__.split(".")[0] == "psycopg"
