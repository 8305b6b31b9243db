"""One exception hierarchy for triptych.

Every error a user can cause or meet is a :class:`TriptychError`. Backend errors (SQLAlchemy,
fsspec, botocore…) are converted where they are caught, so callers handle one family. The CLI
maps the classes to exit codes and the server (later) to HTTP statuses through the two tables
at the bottom of this module.
"""

from __future__ import annotations


class TriptychError(Exception):
    """Root of every error triptych raises on purpose.

    ``hint`` is the one-line fix shown to the user after the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class NotFound(TriptychError):
    """The named experiment, run, artifact or version does not exist."""


class AlreadyExists(TriptychError):
    """Creating something whose unique name is taken."""


class InvalidInput(TriptychError):
    """Arguments that can never succeed: bad names, values, filters, paths."""


class UnsafePath(InvalidInput):
    """A user-given path or URI that would escape its root."""


class Conflict(TriptychError):
    """A valid request that clashes with the current state (e.g. changing a logged param)."""


class PermissionDenied(TriptychError):
    """The caller may not do this."""


class Unauthenticated(PermissionDenied):
    """The caller did not say who it is, or its credentials are unknown, revoked or expired."""


class IntegrityError(TriptychError):
    """Stored bytes or rows do not match their recorded digest or invariants."""


class StoreUnavailable(TriptychError):
    """The metadata or artifact store cannot be reached (after retries)."""


class MissingDependency(TriptychError):
    """An optional extra is needed for this feature."""


class StepFailed(TriptychError):
    """A pipeline step failed; ``result`` is the pipeline run as it ended."""

    def __init__(self, message: str, *, hint: str | None = None, result: object = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


class ConfigError(TriptychError):
    """The resolved configuration is unusable."""


class TriptychWarning(UserWarning):
    """Something triptych did on your behalf that you may want to know about (e.g. columns
    dropped before a prediction)."""


# One table for the CLI: the first matching class wins (most specific first). Command-line
# usage mistakes (unknown option, missing argument) exit 2 before any of these are raised.
EXIT_CODES: tuple[tuple[type[TriptychError], int], ...] = ((TriptychError, 1),)

# One table for the server: the first matching class wins.
HTTP_STATUS: tuple[tuple[type[TriptychError], int], ...] = (
    (NotFound, 404),
    (AlreadyExists, 409),
    (Conflict, 409),
    (InvalidInput, 400),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (IntegrityError, 500),
    (StoreUnavailable, 503),
    (TriptychError, 500),
)


def exit_code(error: BaseException) -> int:
    """Exit code for ``error`` (1 for anything triptych raises)."""
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return 1


def http_status(error: BaseException) -> int:
    """HTTP status for ``error`` (500 for anything unexpected)."""
    for cls, status in HTTP_STATUS:
        if isinstance(error, cls):
            return status
    return 500
