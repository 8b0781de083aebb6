"""The bounds every request number and JSON body is read within (pure functions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kraken.paper.amounts import AmountError, bounded_decimal
from kraken.paper.bodies import BodyError, json_depth, load_json, load_json_object


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.500", Decimal("1.5")),
        (" 42 ", Decimal(42)),
        (7, Decimal(7)),
        (Decimal("0.000000000000000001"), Decimal("1E-18")),
        ("1" + "0" * 14, Decimal(10) ** 14),
        ("1." + "0" * 5000, Decimal(1)),  # trailing zeros are not digits that count
    ],
)
def test_bounded_decimal_takes_exact_values_within_the_bounds(raw, expected):
    value = bounded_decimal(raw)
    assert value == expected and len(value.as_tuple().digits) <= 28


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1E+999999", "at most"),
        ("1" * 5000, "significant digits"),
        (10**40, "significant digits"),
        ("1E-999999", "decimals"),
        ("0", "positive"),
        ("-0.5", "positive"),
        ("NaN", "finite"),
        ("sNaN", "finite"),
        ("-Infinity", "finite"),
        ("1e16", "at most"),
        ("abc", "not a decimal"),
        (1.5, "not a decimal"),
        (True, "not a decimal"),
        (None, "not a decimal"),
    ],
)
def test_bounded_decimal_refuses_saying_why(raw, problem):
    with pytest.raises(AmountError, match=problem):
        bounded_decimal(raw)


def test_bounded_decimal_bounds_by_argument():
    assert bounded_decimal("0", allow_zero=True) == 0
    assert bounded_decimal("1", maximum=Decimal(1)) == 1
    with pytest.raises(AmountError, match="at most 1"):
        bounded_decimal("1.01", maximum=Decimal(1))
    with pytest.raises(AmountError, match="at most 4 decimals"):
        bounded_decimal("0.00001", places=4)
    with pytest.raises(AmountError, match=">= 0"):
        bounded_decimal("-1", allow_zero=True)


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth('{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert json_depth('"\\"[["') == 0
    assert json_depth("[" * 100 + "]" * 100) == 100


def test_load_json_reads_numbers_exactly_and_refuses_what_is_not_json():
    assert load_json(b'{"a": 0.1, "b": 1e400, "c": 12}') == {
        "a": Decimal("0.1"),
        "b": Decimal("1E+400"),
        "c": 12,
    }
    assert load_json(b"[" + b"1" * 30 + b"]") == [Decimal("1" * 30)]
    assert load_json_object(b"") == {}
    for body, problem in [
        (b"[" * 17 + b"]" * 17, "nested deeper than 16"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b'{"a": 1e99999999999999999999}', "out of range"),
        (b'{"a": ', "not JSON"),
        (b"\xff", "not UTF-8"),
    ]:
        with pytest.raises(BodyError, match=problem) as raised:
            load_json(body)
        assert str(raised.value).startswith("body:")
    with pytest.raises(BodyError, match="must be a JSON object"):
        load_json_object(b"[1]")
