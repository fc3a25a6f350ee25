"""Typed errors. Each carries the HTTP status and a stable code; the message says what to fix.

The HTTP layer maps every ``SapheneiaError`` to the one error body in one place, so nothing here
knows about HTTP beyond the status number.
"""

from __future__ import annotations


class SapheneiaError(Exception):
    """Base of every error a caller can see. ``message`` must never contain server paths."""

    status: int = 500
    code: str = "internal_error"
    #: Seconds after which a retry may succeed; sent as ``Retry-After`` (503, 429).
    retry_after_s: int | None = None
    #: More response headers (a 429's X-RateLimit-*), set on the instance that is raised.
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SapheneiaError):
    """The request is malformed or asks for something impossible."""

    status = 400
    code = "invalid_input"


class DataError(InvalidInput):
    """The data itself cannot be forecast as sent (bad timestamps, NaNs, too short, ...)."""

    status = 422
    code = "data_error"


class UnknownColumn(DataError):
    code = "unknown_column"


class DuplicateTimestamps(DataError):
    code = "duplicate_timestamps"


class UnparseableTimestamps(DataError):
    code = "unparseable_timestamps"


class MissingTargetValues(DataError):
    code = "missing_target_values"


class SeriesTooShort(DataError):
    code = "series_too_short"


class MissingFutureCovariates(DataError):
    code = "missing_future_covariates"


class IrregularTimestamps(DataError):
    code = "irregular_timestamps"


class UnsupportedFormat(InvalidInput):
    code = "unsupported_format"


class CovariatesNotSupported(InvalidInput):
    code = "covariates_not_supported"


class SourceForbidden(SapheneiaError):
    """A data source outside what the server allows (path outside the data dir, private URL)."""

    status = 403
    code = "source_forbidden"


class SourceNotFound(SapheneiaError):
    status = 404
    code = "source_not_found"


class SourceUnreachable(SapheneiaError):
    """A URL that timed out or answered with an error: the caller can fix the URL or retry."""

    status = 422
    code = "source_unreachable"


class PayloadTooLarge(SapheneiaError):
    status = 413
    code = "payload_too_large"


class NotFound(SapheneiaError):
    """No such route (an old server, or a wrong base URL): answered by the HTTP framework."""

    status = 404
    code = "not_found"


class MethodNotAllowed(SapheneiaError):
    """The route exists with another method: answered by the HTTP framework."""

    status = 405
    code = "method_not_allowed"


class ModelNotFound(SapheneiaError):
    status = 404
    code = "model_not_found"


class ModelUnavailable(SapheneiaError):
    """The model is configured but cannot serve (weights missing, shut down, still loading)."""

    status = 503
    code = "model_unavailable"
    retry_after_s = 5


class Conflict(SapheneiaError):
    status = 409
    code = "conflict"


class Unauthorized(SapheneiaError):
    status = 401
    code = "unauthorized"


class Forbidden(SapheneiaError):
    """A valid key without the right to this action (an admin route called with a forecast key)."""

    status = 403
    code = "forbidden"


class AuthUnavailable(SapheneiaError):
    """The JWT issuer's key set cannot be fetched, so no token can be checked now: retry shortly."""

    status = 503
    code = "auth_unavailable"
    retry_after_s = 30


class TrackingUnavailable(SapheneiaError):
    """The MLflow tracking store did not record a run the caller asked for (``track``): the
    forecast is not answered without it, so the caller retries or sends without ``track``."""

    status = 503
    code = "tracking_unavailable"
    retry_after_s = 30


class RateLimited(SapheneiaError):
    """Too many requests for this key; the caller retries after a pause."""

    status = 429
    code = "rate_limited"
    retry_after_s = 10


class QuotaExceeded(RateLimited):
    """The key's daily quota of series is spent; it renews at midnight UTC."""

    code = "quota_exceeded"


class StateUnavailable(SapheneiaError):
    """The shared state store (rate counts, quotas, desired model states) cannot be reached, so the
    request cannot be counted: retry shortly."""

    status = 503
    code = "state_unavailable"
    retry_after_s = 5


class Overloaded(SapheneiaError):
    """The model's queue is full: the server sheds this request rather than let queues grow."""

    status = 503
    code = "overloaded"
    retry_after_s = 1


class RequestTimeout(SapheneiaError):
    """The model did not answer within the server's request deadline (``SAPHENEIA_REQUEST_TIMEOUT_S``);
    the work still queued for this request was dropped."""

    status = 504
    code = "request_timeout"


class FitTimeout(SapheneiaError):
    """A model took longer than its configured time limit (Prophet's ``timeout_s``)."""

    status = 504
    code = "model_timeout"


class LimitExceeded(InvalidInput):
    """A request over one of the server's caps (rows, columns, series, output size, ...): the
    message names the cap, the value sent and how to get under it."""

    status = 413
    code = "limit_exceeded"


class NonFiniteValues(DataError):
    """A target or covariate holds inf or -inf (CSV ``inf``, JSON ``1e999``)."""

    code = "non_finite_values"


class ModelOutputInvalid(SapheneiaError):
    """A model answered with values that are not finite numbers: a server-side fault."""

    status = 502
    code = "model_output_invalid"


class ValuesOutOfRange(DataError):
    """The model overflowed on a series whose values are too large for its arithmetic: the caller
    can rescale them."""

    code = "values_out_of_range"


class JobNotFound(SapheneiaError):
    """No job with that id for this key (another key's job looks the same: it is not yours)."""

    status = 404
    code = "job_not_found"


class JobNotReady(Conflict):
    """The job has no result (yet): it is queued, running, failed or cancelled."""

    code = "job_not_ready"
