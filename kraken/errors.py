"""Typed errors of the Kraken client layer.

Kraken answers business failures with HTTP 200 and an ``error`` list of strings shaped
``<severity><category>:<description>[:<detail>]`` (``EOrder:Insufficient funds``,
``EGeneral:Internal error:5``, ``EService:Throttled: 1716800000``). ``classify`` maps such a
list to one exception class by prefix, so a detail after a second colon never breaks the
match. Transport failures (timeouts, dropped connections, HTTP 5xx pages, non-JSON bodies)
get their own classes. Every error names the Kraken method that failed and says why; none
ever carries the API key, the secret, the signature or a private request body.

``retryable`` says whether repeating the same request is safe and may succeed; whether a
particular call is repeated is the client's decision (an AddOrder is never repeated blindly).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

__all__ = [
    "ConnectionFailed",
    "DeadlineElapsed",
    "GeneralError",
    "HTTPStatusError",
    "InsufficientFunds",
    "InternalError",
    "InvalidArguments",
    "InvalidKey",
    "InvalidNonce",
    "InvalidSignature",
    "KrakenAPIError",
    "KrakenError",
    "MalformedResponse",
    "MarketModeRestricted",
    "MissingCredentials",
    "NonJSONResponse",
    "NonceLockTimeout",
    "OrderError",
    "OrderMinimumNotMet",
    "OrderOutcomeUnknown",
    "OrderRateLimitExceeded",
    "OrderRequestError",
    "PermissionDenied",
    "QueryError",
    "RateLimitExceeded",
    "RequestTimeout",
    "ServiceBusy",
    "ServiceError",
    "ServiceUnavailable",
    "Throttled",
    "TransportError",
    "UnknownAsset",
    "UnknownAssetPair",
    "UnknownOrder",
    "classify",
    "split_warnings",
]


class KrakenError(Exception):
    """Base of every error the client raises about a Kraken call.

    ``method`` is the Kraken method (``AddOrder``, ``Balance``) or a short description of the
    local step that failed; ``retryable`` is True when repeating the same request is safe
    and may succeed (rate limits, outages, lost connections).
    """

    retryable: bool = False

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}" if method else message)
        self.method = method


# ---------------------------------------------------------------------------- API errors


class KrakenAPIError(KrakenError):
    """Kraken answered with a non-empty ``error`` list.

    ``errors`` keeps every raw string Kraken sent (errors and warnings, in order); ``code``
    is the first error string, the one that chose the class. Used as is for error
    categories this module does not know (``EAuth``, ``EFunding``, ``ETrade``...).
    """

    def __init__(self, method: str, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        error_strings = [text for text in self.errors if not text.startswith("W")]
        self.code: str = error_strings[0] if error_strings else (self.errors or ("",))[0]
        super().__init__(method, "Kraken answered " + "; ".join(self.errors))


class InvalidNonce(KrakenAPIError):
    """``EAPI:Invalid nonce``: the nonce was not above the last one Kraken accepted for the
    key. Nothing was done; a fresh nonce may succeed."""

    retryable = True


class InvalidKey(KrakenAPIError):
    """``EAPI:Invalid key``: the API key is missing, unknown or revoked."""


class InvalidSignature(KrakenAPIError):
    """``EAPI:Invalid signature``: the API-Sign did not match (wrong secret, or a request
    body that differs from what was signed)."""


class PermissionDenied(KrakenAPIError):
    """``EGeneral:Permission denied`` (or ``EAccount:Invalid permissions``): the key lacks the
    permission this method needs."""


class RateLimitExceeded(KrakenAPIError):
    """``EAPI:Rate limit exceeded`` (also ``EGeneral:Too many requests``): the REST call
    counter is full. Nothing was done; retry after backing off."""

    retryable = True


class ServiceError(KrakenAPIError):
    """``EService:*``: Kraken's service is unavailable, busy or throttling. Retryable; for an
    AddOrder its outcome is unknown until looked up."""

    retryable = True


class ServiceUnavailable(ServiceError):
    """``EService:Unavailable``: the engine or API is offline (maintenance)."""


class ServiceBusy(ServiceError):
    """``EService:Busy``: the service is overloaded."""


class Throttled(ServiceError):
    """``EService:Throttled: <unix seconds>``: too many concurrent requests.

    ``retry_at_ns`` is the time Kraken named for a retry, as integer nanoseconds since the
    epoch, or None when the string carried no parseable time.
    """

    def __init__(self, method: str, errors: Sequence[str]) -> None:
        super().__init__(method, errors)
        self.retry_at_ns: int | None = _throttled_until_ns(self.code)


class MarketModeRestricted(ServiceError):
    """``EService:Market in cancel_only mode`` / ``post_only mode`` / ``limit_only mode``: the
    market refuses this kind of order now. A refusal, so the order was not placed; retrying
    soon will not help."""

    retryable = False


class DeadlineElapsed(ServiceError):
    """``EService:Deadline elapsed``: the order's ``deadline`` passed before matching, so it
    was not placed."""

    retryable = False


class InternalError(KrakenAPIError):
    """``EGeneral:Internal error[:<code>]``: a server-side failure; retryable."""

    retryable = True


class GeneralError(KrakenAPIError):
    """Any other ``EGeneral:*`` error (``Temporary lockout``, ``Unknown method``...)."""


class InvalidArguments(GeneralError):
    """``EGeneral:Invalid arguments[:<param>]``: a parameter is missing or invalid.

    ``argument`` is the parameter Kraken named, or None.
    """

    def __init__(self, method: str, errors: Sequence[str]) -> None:
        super().__init__(method, errors)
        _, _, detail = self.code.partition("EGeneral:Invalid arguments")
        self.argument: str | None = detail.lstrip(":").strip() or None


class OrderError(KrakenAPIError):
    """``EOrder:*``: the order was refused (nothing was placed) or the order id is unknown."""


class InsufficientFunds(OrderError):
    """``EOrder:Insufficient funds``: the available balance does not cover the order."""


class UnknownOrder(OrderError):
    """``EOrder:Unknown order`` or ``EOrder:Invalid order``: no open order matches the id
    (never existed, or already closed or canceled)."""


class OrderRateLimitExceeded(OrderError):
    """``EOrder:Rate limit exceeded`` (per-pair trading counter) or ``EOrder:Domain rate limit
    exceeded``. The order was not placed."""


class OrderMinimumNotMet(OrderError):
    """``EOrder:Order minimum not met`` (volume below ``ordermin``) or ``EOrder:Cost minimum
    not met`` (price × volume below ``costmin``)."""


class QueryError(KrakenAPIError):
    """``EQuery:*``: a lookup named something Kraken does not know."""


class UnknownAssetPair(QueryError):
    """``EQuery:Unknown asset pair``."""


class UnknownAsset(QueryError):
    """``EQuery:Unknown asset``."""


# Most specific first. A prefix matches the whole string, or a string that continues with a
# colon (details follow a second colon). A prefix ending in ':' or ' ' is open: it matches
# anything that starts with it (a whole category, or a family such as "Market in ...").
_PREFIXES: tuple[tuple[str, type[KrakenAPIError]], ...] = (
    ("EAPI:Invalid nonce", InvalidNonce),
    ("EAPI:Invalid key", InvalidKey),
    ("EAPI:Invalid signature", InvalidSignature),
    ("EAPI:Rate limit exceeded", RateLimitExceeded),
    ("EGeneral:Too many requests", RateLimitExceeded),
    ("EGeneral:Permission denied", PermissionDenied),
    ("EAccount:Invalid permissions", PermissionDenied),
    ("EGeneral:Internal error", InternalError),
    ("EGeneral:Invalid arguments", InvalidArguments),
    ("EGeneral:", GeneralError),
    ("EService:Unavailable", ServiceUnavailable),
    ("EService:Busy", ServiceBusy),
    ("EService:Throttled", Throttled),
    ("EService:Market in ", MarketModeRestricted),
    ("EService:Deadline elapsed", DeadlineElapsed),
    ("EService:", ServiceError),
    ("EOrder:Insufficient funds", InsufficientFunds),
    ("EOrder:Unknown order", UnknownOrder),
    ("EOrder:Invalid order", UnknownOrder),
    ("EOrder:Rate limit exceeded", OrderRateLimitExceeded),
    ("EOrder:Domain rate limit exceeded", OrderRateLimitExceeded),
    ("EOrder:Order minimum not met", OrderMinimumNotMet),
    ("EOrder:Cost minimum not met", OrderMinimumNotMet),
    ("EOrder:", OrderError),
    ("EQuery:Unknown asset pair", UnknownAssetPair),
    ("EQuery:Unknown asset", UnknownAsset),
    ("EQuery:", QueryError),
)


def _matches(text: str, prefix: str) -> bool:
    if not text.startswith(prefix):
        return False
    rest = text[len(prefix) :]
    return prefix.endswith((":", " ")) or rest == "" or rest[0] == ":"


def error_class(code: str) -> type[KrakenAPIError]:
    """The exception class for one Kraken error string (``KrakenAPIError`` if unknown)."""
    text = code.strip()
    for prefix, cls in _PREFIXES:
        if _matches(text, prefix):
            return cls
    return KrakenAPIError


def split_warnings(strings: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split an ``error`` list into (errors, warnings): warnings start with ``W``."""
    errors = [text for text in strings if not text.startswith("W")]
    warnings = [text for text in strings if text.startswith("W")]
    return errors, warnings


def classify(method: str, strings: Sequence[str]) -> KrakenAPIError | None:
    """The exception for an envelope's ``error`` list, or None when it holds only warnings.

    The first error string chooses the class; the exception keeps every string.
    """
    errors, _ = split_warnings(strings)
    if not errors:
        return None
    return error_class(errors[0])(method, strings)


def _throttled_until_ns(code: str) -> int | None:
    _, _, detail = code.partition("EService:Throttled")
    detail = detail.lstrip(":").strip()
    if not detail:
        return None
    try:
        seconds = Decimal(detail)
    except InvalidOperation:
        return None
    if not seconds.is_finite() or seconds <= 0:
        return None
    return int(seconds.scaleb(9).to_integral_value())


# ---------------------------------------------------------------------------- transport


class TransportError(KrakenError):
    """The request did not get a usable Kraken answer: for a write, its outcome is unknown."""

    retryable = True


class RequestTimeout(TransportError):
    """No answer within the call's timeout. ``timeout_seconds`` is that timeout."""

    def __init__(self, method: str, timeout_seconds: float) -> None:
        super().__init__(method, f"no answer within {timeout_seconds:g} s")
        self.timeout_seconds = timeout_seconds


class ConnectionFailed(TransportError):
    """The connection could not be opened or was closed before an answer arrived.
    ``reason`` is a short description (the underlying exception's class name)."""

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(method, f"connection failed ({reason})")
        self.reason = reason


class HTTPStatusError(TransportError):
    """A non-2xx HTTP status: Kraken's edge, not the API, answered (Kraken reports business
    errors with HTTP 200). Retryable for 5xx and 429 only."""

    def __init__(self, method: str, status: int) -> None:
        super().__init__(method, f"HTTP status {status}")
        self.status = status
        self.retryable = status >= 500 or status == 429


class NonJSONResponse(TransportError):
    """The body was not JSON (an HTML error page, an empty body). ``status`` is the HTTP
    status and ``content_type`` the declared type."""

    def __init__(self, method: str, status: int | None, content_type: str) -> None:
        super().__init__(
            method, f"answer is not JSON (HTTP {status}, Content-Type {content_type or 'none'})"
        )
        self.status = status
        self.content_type = content_type


# ---------------------------------------------------------------------------- local


class MalformedResponse(KrakenError):
    """Kraken's answer had an unexpected shape; ``field`` names the place (``result.count``,
    ``trades[T...].price``) and the message says what was wrong. Not retryable."""

    def __init__(self, method: str, field: str, detail: str) -> None:
        super().__init__(method, f"malformed answer at {field}: {detail}")
        self.field = field
        self.detail = detail


class MissingCredentials(KrakenError):
    """A private method was called on a client built without credentials."""

    def __init__(self, method: str) -> None:
        super().__init__(method, "private method needs API credentials; none were given")


class NonceLockTimeout(KrakenError):
    """The nonce lock of this API key could not be taken in time (another thread or process
    held it). The request was not sent, so a retry is safe."""

    retryable = True

    def __init__(self, method: str, timeout_seconds: float) -> None:
        super().__init__(
            method, f"nonce lock of the API key not acquired within {timeout_seconds:g} s"
        )
        self.timeout_seconds = timeout_seconds


class OrderRequestError(KrakenError, ValueError):
    """An order request that was refused locally, before anything was sent: ``field`` names
    the parameter (``volume``, ``price``, ``pair``...)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__("AddOrder", f"{field}: {detail}")
        self.field = field


class OrderOutcomeUnknown(KrakenError):
    """An AddOrder failed ambiguously (timeout, dropped connection, 5xx, outage) and the
    lookup by ``cl_ord_id`` could not tell whether the order was placed. The order may be
    live: look it up before placing it again. ``cl_ord_id`` is None when the order was sent
    with a ``userref`` instead (Kraken allows only one of the two), so no lookup was possible.
    ``cause`` is the failure that made the outcome unknown."""

    def __init__(self, cl_ord_id: str | None, cause: BaseException | None, detail: str) -> None:
        super().__init__("AddOrder", f"outcome unknown for cl_ord_id={cl_ord_id}: {detail}")
        self.cl_ord_id = cl_ord_id
        self.cause = cause
