"""Classification of Kraken's error strings into typed exceptions (pure)."""

from __future__ import annotations

import pytest

from kraken import errors
from kraken.errors import (
    ConnectionFailed,
    HTTPStatusError,
    KrakenAPIError,
    NonJSONResponse,
    OrderOutcomeUnknown,
    RequestTimeout,
    classify,
)


@pytest.mark.parametrize(
    ("code", "expected", "retryable"),
    [
        ("EAPI:Invalid nonce", errors.InvalidNonce, True),
        ("EAPI:Invalid key", errors.InvalidKey, False),
        ("EAPI:Invalid signature", errors.InvalidSignature, False),
        ("EGeneral:Permission denied", errors.PermissionDenied, False),
        ("EAccount:Invalid permissions", errors.PermissionDenied, False),
        ("EAPI:Rate limit exceeded", errors.RateLimitExceeded, True),
        ("EGeneral:Too many requests", errors.RateLimitExceeded, True),
        ("EService:Unavailable", errors.ServiceUnavailable, True),
        ("EService:Busy", errors.ServiceBusy, True),
        ("EService:Throttled: 1716800000", errors.Throttled, True),
        ("EService:Something new", errors.ServiceError, True),
        ("EService:Market in cancel_only mode", errors.MarketModeRestricted, False),
        ("EService:Market in post_only mode", errors.MarketModeRestricted, False),
        ("EService:Deadline elapsed", errors.DeadlineElapsed, False),
        ("EGeneral:Internal error", errors.InternalError, True),
        ("EGeneral:Internal error:5", errors.InternalError, True),
        ("EGeneral:Invalid arguments", errors.InvalidArguments, False),
        ("EGeneral:Invalid arguments:volume", errors.InvalidArguments, False),
        ("EGeneral:Temporary lockout", errors.GeneralError, False),
        ("EGeneral:Unknown method", errors.GeneralError, False),
        ("EOrder:Insufficient funds", errors.InsufficientFunds, False),
        ("EOrder:Unknown order", errors.UnknownOrder, False),
        ("EOrder:Invalid order", errors.UnknownOrder, False),
        ("EOrder:Rate limit exceeded", errors.OrderRateLimitExceeded, False),
        ("EOrder:Domain rate limit exceeded", errors.OrderRateLimitExceeded, False),
        ("EOrder:Order minimum not met", errors.OrderMinimumNotMet, False),
        ("EOrder:Cost minimum not met", errors.OrderMinimumNotMet, False),
        (
            "EOrder:Invalid price:XXBTZEUR price can only be specified up to 1 decimals.",
            errors.OrderError,
            False,
        ),
        ("EOrder:Tick size check failed", errors.OrderError, False),
        ("EQuery:Unknown asset pair", errors.UnknownAssetPair, False),
        ("EQuery:Unknown asset", errors.UnknownAsset, False),
        ("EQuery:Invalid asset pair", errors.QueryError, False),
        ("EAuth:Account temporary disabled", KrakenAPIError, False),
        ("EFunding:Unknown withdraw key", KrakenAPIError, False),
    ],
)
def test_each_error_string_maps_to_its_class(code, expected, retryable):
    error = classify("AddOrder", [code])

    assert type(error) is expected
    assert error.retryable is retryable
    assert error.errors == (code,)
    assert error.code == code
    assert error.method == "AddOrder"
    assert str(error).startswith("AddOrder: ")
    assert code in str(error)


def test_prefix_match_needs_a_colon_boundary():
    # "Invalid keyword" is not "Invalid key": only a detail after a colon extends a prefix.
    error = classify("Balance", ["EAPI:Invalid keyword"])
    assert type(error) is KrakenAPIError


def test_class_hierarchy_lets_callers_catch_families():
    assert issubclass(errors.InsufficientFunds, errors.OrderError)
    assert issubclass(errors.UnknownOrder, errors.OrderError)
    assert issubclass(errors.Throttled, errors.ServiceError)
    assert issubclass(errors.UnknownAssetPair, errors.QueryError)
    assert issubclass(errors.InvalidArguments, errors.GeneralError)
    for cls in (errors.InvalidNonce, errors.OrderError, errors.ServiceError):
        assert issubclass(cls, KrakenAPIError)
        assert issubclass(cls, errors.KrakenError)


def test_warnings_alone_are_not_an_error():
    assert classify("Balance", ["WGeneral:Something deprecated"]) is None
    assert classify("Balance", []) is None


def test_first_error_chooses_the_class_and_every_string_is_kept():
    strings = ["WGeneral:Deprecated", "EOrder:Insufficient funds", "EGeneral:Internal error"]

    error = classify("AddOrder", strings)

    assert type(error) is errors.InsufficientFunds
    assert error.code == "EOrder:Insufficient funds"
    assert error.errors == tuple(strings)


def test_invalid_arguments_names_the_argument():
    error = classify("AddOrder", ["EGeneral:Invalid arguments:cl_ord_id"])
    assert isinstance(error, errors.InvalidArguments)
    assert error.argument == "cl_ord_id"
    bare = classify("AddOrder", ["EGeneral:Invalid arguments"])
    assert isinstance(bare, errors.InvalidArguments)
    assert bare.argument is None


def test_throttled_carries_the_retry_time_in_ns():
    error = classify("Balance", ["EService:Throttled: 1716800000.5"])
    assert isinstance(error, errors.Throttled)
    assert error.retry_at_ns == 1_716_800_000_500_000_000
    unparseable = classify("Balance", ["EService:Throttled"])
    assert isinstance(unparseable, errors.Throttled)
    assert unparseable.retry_at_ns is None


def test_transport_errors_say_what_failed_and_whether_to_retry():
    timeout = RequestTimeout("Balance", 2.5)
    assert timeout.retryable and "2.5 s" in str(timeout) and str(timeout).startswith("Balance:")
    assert ConnectionFailed("Ticker", "RemoteDisconnected").retryable
    assert NonJSONResponse("Ticker", 200, "text/html").retryable
    assert HTTPStatusError("Ticker", 502).retryable
    assert HTTPStatusError("Ticker", 429).retryable
    assert not HTTPStatusError("Ticker", 403).retryable
    assert "HTTP status 502" in str(HTTPStatusError("Ticker", 502))


def test_order_outcome_unknown_names_the_client_order_id():
    cause = RequestTimeout("AddOrder", 1)
    error = OrderOutcomeUnknown("abc-123", cause, "the lookup failed")
    assert error.cl_ord_id == "abc-123"
    assert error.cause is cause
    assert "abc-123" in str(error) and "AddOrder" in str(error)
    assert not error.retryable
