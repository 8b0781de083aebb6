"""JSON request bodies, read within bounds: UTF-8, nesting depth, exact numbers.

Numbers are read as Decimal (``1e400`` stays a finite Decimal, never a float ``inf``); long
integers too, so a field check names them instead of Python's integer-length limit. NaN and
Infinity are refused. Every problem is a ``BodyError`` whose message starts with ``body:``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from itertools import accumulate
from typing import Any

from kraken.paper.amounts import shown

MAX_JSON_DEPTH = 16
# Integers longer than this are read as Decimal: the field's own check refuses them by name.
_INT_DIGITS = 20
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DEPTH_STEP = str.maketrans({"[": "\x01", "{": "\x01", "]": "\x02", "}": "\x02"})


class BodyError(ValueError):
    """A request body that is not acceptable JSON; the message names the problem."""


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    brackets = _STRING.sub("", text).translate(_DEPTH_STEP)
    steps = (1 if c == "\x01" else -1 for c in brackets if c in "\x01\x02")
    return max(accumulate(steps, initial=0))


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BodyError(f"body: number out of range: {shown(text)}") from None


def _constant(text: str) -> Any:
    raise BodyError(f"body: {text} is not a number JSON allows")


def load_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in ``body``; BodyError when it is not UTF-8, not JSON, nested
    deeper than ``max_depth`` or holds NaN/Infinity or an out-of-range exponent."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(f"body: not UTF-8 (byte {error.start})") from None
    if json_depth(text) > max_depth:
        raise BodyError(f"body: JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_float=_number, parse_int=_integer, parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise BodyError(
            f"body: not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise BodyError(f"body: JSON nested deeper than {max_depth} levels") from None
    except BodyError:
        raise
    except (ValueError, InvalidOperation) as error:
        raise BodyError(f"body: not JSON: {error}") from None


def load_json_object(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """``load_json`` for a body that must be an object; an empty body is ``{}``."""
    if not body.strip():
        return {}
    document = load_json(body, max_depth)
    if not isinstance(document, dict):
        raise BodyError(f"body: must be a JSON object, got {type(document).__name__}")
    return document
