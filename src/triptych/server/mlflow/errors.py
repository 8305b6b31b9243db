"""Errors in MLflow's shape: ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}``
with MLflow's HTTP statuses, mapped from triptych's exceptions by the one table below."""

from __future__ import annotations

from triptych.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    TriptychError,
    http_status,
)


class MlflowApiError(TriptychError):
    """An error the MLflow API names itself (e.g. ``NOT_IMPLEMENTED``)."""

    def __init__(self, error_code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


# The first matching class wins. MLflow answers 400 for a name that is taken.
ERROR_CODES: tuple[tuple[type[TriptychError], str, int], ...] = (
    (NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (AlreadyExists, "RESOURCE_ALREADY_EXISTS", 400),
    (Conflict, "INVALID_STATE", 400),
    (InvalidInput, "INVALID_PARAMETER_VALUE", 400),
    (PermissionDenied, "PERMISSION_DENIED", 403),
    (StoreUnavailable, "TEMPORARILY_UNAVAILABLE", 503),
    (TriptychError, "INTERNAL_ERROR", 500),
)


def mlflow_error(error: TriptychError) -> tuple[int, dict[str, str]]:
    """The status and body MLflow's client expects for ``error``."""
    if isinstance(error, MlflowApiError):
        return error.status, {"error_code": error.error_code, "message": error.message}
    for cls, code, status in ERROR_CODES:
        if isinstance(error, cls):
            if status == 403 and http_status(error) == 401:  # who the caller is is unknown
                code, status = "UNAUTHENTICATED", 401
            message = error.message + (f" ({error.hint})" if error.hint else "")
            return status, {"error_code": code, "message": message}
    return 500, {"error_code": "INTERNAL_ERROR", "message": str(error)}


def invalid(message: str) -> MlflowApiError:
    return MlflowApiError("INVALID_PARAMETER_VALUE", message, 400)


def not_implemented(what: str) -> MlflowApiError:
    return MlflowApiError("NOT_IMPLEMENTED", f"{what} is not supported by triptych's server", 501)
