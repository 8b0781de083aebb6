"""One base for the service's typed errors: `field` names what is wrong, `problem` says why."""

from __future__ import annotations

import pytest

from actors.core.accounting import BookingError
from actors.core.conversion import PriceError
from actors.core.drawdown import DrawdownError
from actors.core.valuation import ValuationError
from actors.journal_follower import StateNotCarried
from actors.runtime.settings_loader import ConfigError as LoaderConfigError
from kraken.models import FieldError as KrakenFieldError
from messages.codec import CodecError
from messages.codec import FieldError as CodecFieldError
from messages.errors import ConfigError, ServiceFieldError, SetupError
from service.config import ConfigError as ServiceConfigError


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (BookingError, ValueError),
        (PriceError, ValueError),
        (ValuationError, ValueError),
        (DrawdownError, ValueError),
        (StateNotCarried, ValueError),
        (ConfigError, ValueError),
        (SetupError, RuntimeError),
    ],
)
def test_every_field_error_is_one_service_error_and_keeps_its_builtin_base(cls, builtin):
    error = cls("prices.interval_seconds", "must be > 0, got 0")
    assert isinstance(error, ServiceFieldError)
    assert isinstance(error, builtin)
    assert (error.field, error.problem) == ("prices.interval_seconds", "must be > 0, got 0")
    assert str(error) == "prices.interval_seconds: must be > 0, got 0"
    assert error.args == ("prices.interval_seconds: must be > 0, got 0",)


def test_the_codec_and_kraken_field_errors_are_service_errors_too():
    codec = CodecFieldError("must be > 0, got '-1'", "ExecutionReport", "last_qty")
    assert isinstance(codec, ServiceFieldError) and isinstance(codec, CodecError)
    assert (codec.field, codec.problem) == ("last_qty", "must be > 0, got '-1'")
    assert str(codec) == "ExecutionReport.last_qty: must be > 0, got '-1'"
    kraken = KrakenFieldError("result.XXBT", "expected a decimal")
    assert isinstance(kraken, ServiceFieldError) and isinstance(kraken, ValueError)
    assert (kraken.field, kraken.problem, kraken.detail) == (
        "result.XXBT",
        "expected a decimal",
        "expected a decimal",
    )
    assert str(kraken) == "result.XXBT: expected a decimal"


def test_the_config_error_is_one_class_wherever_it_is_imported_from():
    assert LoaderConfigError is ConfigError
    assert ServiceConfigError is ConfigError


def test_a_config_error_names_its_key_or_only_the_problem():
    assert ConfigError("metrics.port", "must be 0..65535").key == "metrics.port"
    whole_file = ConfigError("", "the config file must be a mapping of sections")
    assert str(whole_file) == "the config file must be a mapping of sections"
    assert whole_file.key == ""
