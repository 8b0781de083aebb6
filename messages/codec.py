"""The one codec: a message to one msgpack frame and back, validating every field both ways.

Wire form of a message: `msgpack.packb([tag, version, {field_name: wire_value}])` where
    Decimal -> its `str()` (finite, at most 64 characters, 1E-999 <= |value| < 1E+1000),
    int -> int (64-bit range, never a bool), str -> str, bool -> bool, Enum -> its str value,
    tuple -> array, dict -> map with str keys, nested message -> the same `[tag, version,
    {...}]` array, None -> nil.
No pickle and no msgpack ext types, ever.

The same validators serve `decode` (frames from a socket), `from_fields` (external input such as
a replay file) and `encode` (so an invalid message is refused by its sender, not its
receiver). Each message class is compiled once into straight-line encode / decode functions;
nothing is reflected per message.
"""

from __future__ import annotations

import dataclasses
import decimal
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import msgpack

from messages.base import (
    AnyMessageSpec,
    BoolSpec,
    DecimalSpec,
    DictSpec,
    EnumSpec,
    FieldTypeSpec,
    IntSpec,
    Message,
    MessageDefinitionError,
    MessageSchema,
    MessageSpec,
    NonNegative,
    OptionalSpec,
    Positive,
    StrSpec,
    TupleSpec,
    message_schema,
    registered_types,
)
from messages.errors import ServiceFieldError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_DECIMAL_CHARS",
    "MAX_DECIMAL_EXPONENT",
    "MAX_MESSAGE_DEPTH",
    "CodecError",
    "FieldError",
    "FrameTooLarge",
    "MalformedFrame",
    "Packed",
    "UnknownMessageType",
    "UnsupportedVersion",
    "decimal_problem",
    "decode",
    "encode",
    "encode_nesting",
    "from_fields",
    "from_json_dict",
    "pack_field",
    "to_fields",
    "to_json_dict",
]

DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
"""Frames larger than this (1 MiB) are refused before they are parsed."""

MAX_MESSAGE_DEPTH = 16
"""How deeply messages may nest inside messages; deeper frames are refused as malformed."""

MAX_DECIMAL_CHARS = 64
"""Longest decimal string accepted; money never needs more, and it bounds parsing work."""

MAX_DECIMAL_EXPONENT = 999
"""Largest magnitude of a decimal's adjusted exponent (its order of magnitude): larger values
are no money, and would overflow later arithmetic in an ordinary context."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # msgpack carries signed and unsigned 64-bit integers

# Used only to signal malformed text; it never rounds, since the Decimal constructor keeps
# every digit whatever the context precision.
_PARSE_CONTEXT = decimal.Context(traps=[decimal.InvalidOperation])
_ZERO = Decimal(0)
_unpackb = msgpack.unpackb

M = TypeVar("M", bound=Message)


# --- errors -----------------------------------------------------------------------------


class CodecError(ServiceFieldError, ValueError):
    """A message could not be encoded or decoded; says which type and field, and why.

    `type_tag` is the wire tag of the message concerned (None when the frame is unreadable),
    `field` the dotted path of the offending field (None when the problem is not one field),
    `detail` (= `problem`) the reason alone.
    """

    def __init__(self, detail: str, type_tag: str | None = None, field: str | None = None):
        ValueError.__init__(self, detail, type_tag, field)
        self.detail = detail
        self.problem = detail
        self.type_tag = type_tag
        self.field = field

    def __str__(self) -> str:
        if self.type_tag is not None and self.field is not None:
            return f"{self.type_tag}.{self.field}: {self.detail}"
        if self.type_tag is not None:
            return f"{self.type_tag}: {self.detail}"
        return self.detail


class UnknownMessageType(CodecError):
    """The frame's type tag names no registered message; `type_tag` holds that tag."""


class UnsupportedVersion(CodecError):
    """The frame's schema version is not the one this process knows for its type."""


class FieldError(CodecError):
    """A field is missing, unexpected, of the wrong type, or violates its constraint."""


class FrameTooLarge(CodecError):
    """The frame is larger than the receiver accepts; refused before parsing."""


class MalformedFrame(CodecError):
    """The bytes are not one msgpack `[tag, version, {fields}]` array (or nest too deeply)."""


class _Problem(Exception):
    """Internal: a field problem on its way up, collecting the path innermost first."""

    def __init__(self, reason: str, kind: type[CodecError] = FieldError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.path: list[str] = []

    def error(self, type_tag: str) -> CodecError:
        field = ".".join(reversed(self.path)) if self.path else None
        return self.kind(self.reason, type_tag, field)


class _ExtTypeRefused(Exception):
    """Raised from msgpack's ext hook: the wire carries no ext types (pickle-free, typed)."""


def _refuse_ext(code: int, data: bytes) -> Any:
    raise _ExtTypeRefused(code)


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _got(value: Any) -> str:
    if type(value) is str:
        return f"got {_shown(value)}"
    return f"got {type(value).__name__} {_shown(value)}"


# --- field codecs -----------------------------------------------------------------------
#
# Each field type compiles to a pair of functions `(value, depth) -> value`: an encoder
# (Python value -> wire value) and a decoder (wire value -> Python value). The happy path is a
# few type checks; explaining a refusal is left to a slow path that runs only on failure.

_FieldFunction = Callable[[Any, int], Any]


def _str_codec(spec: StrSpec) -> tuple[_FieldFunction, _FieldFunction]:
    min_len = 1 if spec.non_empty else 0
    max_len = spec.max_len if spec.max_len is not None else _INT_MAX

    def explain(value: Any) -> _Problem:
        if not isinstance(value, str):
            return _Problem(f"must be a string, {_got(value)}")
        if len(value) < min_len:
            return _Problem("must not be empty")
        return _Problem(f"must be at most {max_len} characters, got {len(value)}")

    def decode_str(value: Any, depth: int) -> Any:
        if type(value) is str and min_len <= len(value) <= max_len:
            return value
        raise explain(value)

    def encode_str(value: Any, depth: int) -> Any:
        if type(value) is str and min_len <= len(value) <= max_len:
            return value
        if isinstance(value, str) and min_len <= len(value) <= max_len:
            return str.__str__(value)  # a str subclass (say a StrEnum) travels as plain str
        raise explain(value)

    return encode_str, decode_str


def _int_codec(spec: IntSpec) -> tuple[_FieldFunction, _FieldFunction]:
    low = {Positive: 1, NonNegative: 0, None: _INT_MIN}[spec.sign]

    def explain(value: Any) -> _Problem:
        if type(value) is not int:
            return _Problem(f"must be an integer, {_got(value)}")
        if value < low and spec.sign is not None:
            return _Problem(f"must be {'> 0' if low == 1 else '>= 0'}, got {value}")
        return _Problem(f"must fit in 64 bits, got {_shown(value)}")

    def int_field(value: Any, depth: int) -> Any:
        if type(value) is int and low <= value <= _INT_MAX:
            return value
        raise explain(value)

    return int_field, int_field


def _bool_codec(spec: BoolSpec) -> tuple[_FieldFunction, _FieldFunction]:
    def bool_field(value: Any, depth: int) -> Any:
        if type(value) is bool:
            return value
        raise _Problem(f"must be a boolean, {_got(value)}")

    return bool_field, bool_field


def _parse_decimal_text(text: str) -> Decimal | None:
    """The decimal a wire string denotes, or None when the string is not acceptable.

    Acceptable: plain decimal notation in ASCII (sign, digits, point, exponent) without
    whitespace or underscores (which `Decimal()` would quietly accept), at most
    `MAX_DECIMAL_CHARS` long, finite, adjusted exponent within ±`MAX_DECIMAL_EXPONENT`.
    The generated decoders inline exactly these checks.
    """
    if len(text) > MAX_DECIMAL_CHARS or not text.isascii() or "_" in text:
        return None
    try:
        value = Decimal(text, _PARSE_CONTEXT)
    except decimal.InvalidOperation:
        return None
    if (
        value.is_finite()
        and -MAX_DECIMAL_EXPONENT <= value.adjusted() <= MAX_DECIMAL_EXPONENT
        and text[0] > " " < text[-1]  # ASCII whitespace sorts at or below the space
    ):
        return value
    return None


def _explain_decimal_text(text: Any) -> _Problem:
    if type(text) is not str:
        return _Problem(f"must be a decimal string, {_got(text)}")
    if len(text) > MAX_DECIMAL_CHARS:
        return _Problem(f"must be at most {MAX_DECIMAL_CHARS} characters, got {len(text)}")
    try:
        parsed = Decimal(text.strip().replace("_", ""), _PARSE_CONTEXT)
    except decimal.InvalidOperation:
        return _Problem(f"must be a decimal string, {_got(text)}")
    if not parsed.is_finite():
        return _Problem(f"must be a finite decimal, {_got(text)}")
    if not -MAX_DECIMAL_EXPONENT <= parsed.adjusted() <= MAX_DECIMAL_EXPONENT:
        return _Problem(f"must be within 1E±{MAX_DECIMAL_EXPONENT}, {_got(text)}")
    return _Problem(f"must be a plain ASCII decimal string, {_got(text)}")


def _decimal_text(value: Decimal) -> str | None:
    """`str(value)` when it is acceptable on the wire (see `_parse_decimal_text`), else None.

    For a Decimal, `str()` is always plain ASCII notation, so finiteness, the exponent range
    and the length are all there is to check.
    """
    if value.is_finite() and -MAX_DECIMAL_EXPONENT <= value.adjusted() <= MAX_DECIMAL_EXPONENT:
        text = str(value)
        if len(text) <= MAX_DECIMAL_CHARS:
            return text
    return None


def decimal_problem(value: Decimal) -> str | None:
    """None when `value` can travel in a Decimal field (what `encode` checks of it, sign
    constraints aside), else the reason it cannot, as `encode` would give it.

    A fold checks what it computed with this before taking it, so that a value the wire
    cannot carry is found at the event that made it, not later when a state is sent.
    """
    if type(value) is Decimal and _decimal_text(value) is not None:
        return None
    if not isinstance(value, Decimal):
        return f"must be a Decimal, {_got(value)}"
    return _explain_decimal_text(str(value)).reason


def _decimal_codec(spec: DecimalSpec) -> tuple[_FieldFunction, _FieldFunction]:
    if spec.sign is Positive:
        sign_ok, sign_rule = _ZERO.__lt__, "> 0"  # 0 < value
    elif spec.sign is NonNegative:
        sign_ok, sign_rule = _ZERO.__le__, ">= 0"  # 0 <= value
    else:
        sign_ok, sign_rule = None, ""

    def decode_decimal(value: Any, depth: int) -> Any:
        parsed = _parse_decimal_text(value) if type(value) is str else None
        if parsed is None:
            raise _explain_decimal_text(value)
        if sign_ok is not None and not sign_ok(parsed):
            raise _Problem(f"must be {sign_rule}, got {value!r}")
        return parsed

    def encode_decimal(value: Any, depth: int) -> Any:
        if not isinstance(value, Decimal):
            raise _Problem(f"must be a Decimal, {_got(value)}")
        text = _decimal_text(value)
        if text is None:
            raise _explain_decimal_text(str(value))
        # Compared only once known finite: comparing a NaN would signal.
        if sign_ok is not None and not sign_ok(value):
            raise _Problem(f"must be {sign_rule}, got {text!r}")
        return text

    return encode_decimal, decode_decimal


def _enum_codec(spec: EnumSpec) -> tuple[_FieldFunction, _FieldFunction]:
    enum_type = spec.enum_type
    by_value = {member.value: member for member in enum_type}
    allowed = ", ".join(repr(value) for value in by_value)

    def explain(value: Any) -> _Problem:
        return _Problem(f"must be one of {allowed}, {_got(value)}")

    def decode_enum(value: Any, depth: int) -> Any:
        if type(value) is str:
            member = by_value.get(value)
            if member is not None:
                return member
        raise explain(value)

    def encode_enum(value: Any, depth: int) -> Any:
        if type(value) is enum_type:
            return value.value
        if isinstance(value, str) and value in by_value:
            return by_value[value].value
        raise explain(value)

    return encode_enum, decode_enum


def _optional_codec(spec: OptionalSpec) -> tuple[_FieldFunction, _FieldFunction]:
    encode_inner, decode_inner = _field_codec(spec.inner)

    def encode_optional(value: Any, depth: int) -> Any:
        return None if value is None else encode_inner(value, depth)

    def decode_optional(value: Any, depth: int) -> Any:
        return None if value is None else decode_inner(value, depth)

    return encode_optional, decode_optional


def _first_failing_item(items: Any, convert: _FieldFunction, depth: int) -> _Problem:
    for index, item in enumerate(items):
        try:
            convert(item, depth)
        except _Problem as problem:
            problem.path.append(str(index))
            return problem
    raise AssertionError("unreachable: an item failed once, so it fails again")


def _tuple_codec(spec: TupleSpec) -> tuple[_FieldFunction, _FieldFunction]:
    encode_item, decode_item = _field_codec(spec.item)

    def encode_tuple(value: Any, depth: int) -> Any:
        if type(value) is not tuple:
            raise _Problem(f"must be a tuple, {_got(value)}")
        try:
            return [encode_item(item, depth) for item in value]
        except _Problem:
            raise _first_failing_item(value, encode_item, depth) from None

    def decode_tuple(value: Any, depth: int) -> Any:
        if type(value) is not list and type(value) is not tuple:
            raise _Problem(f"must be an array, {_got(value)}")
        try:
            return tuple([decode_item(item, depth) for item in value])
        except _Problem:
            raise _first_failing_item(value, decode_item, depth) from None

    return encode_tuple, decode_tuple


def _dict_codec(spec: DictSpec) -> tuple[_FieldFunction, _FieldFunction]:
    encode_key, decode_key = _str_codec(spec.key)
    encode_value, decode_value = _field_codec(spec.value)

    def first_failing_entry(
        value: Mapping[Any, Any],
        convert_key: _FieldFunction,
        convert_value: _FieldFunction,
        depth: int,
    ) -> _Problem:
        for key, item in value.items():
            shown_key = key if type(key) is str else _shown(key)
            try:
                convert_key(key, 0)
            except _Problem as problem:
                problem.reason = f"key {_shown(key)}: {problem.reason}"
                return problem
            try:
                convert_value(item, depth)
            except _Problem as problem:
                problem.path.append(shown_key)
                return problem
        raise AssertionError("unreachable: an entry failed once, so it fails again")

    def encode_dict(value: Any, depth: int) -> Any:
        if not isinstance(value, Mapping):
            raise _Problem(f"must be a dict, {_got(value)}")
        try:
            return {
                encode_key(key, depth): encode_value(item, depth) for key, item in value.items()
            }
        except _Problem:
            raise first_failing_entry(value, encode_key, encode_value, depth) from None

    def decode_dict(value: Any, depth: int) -> Any:
        if type(value) is not dict:
            raise _Problem(f"must be a map, {_got(value)}")
        try:
            return {
                decode_key(key, depth): decode_value(item, depth) for key, item in value.items()
            }
        except _Problem:
            raise first_failing_entry(value, decode_key, decode_value, depth) from None

    return encode_dict, decode_dict


def _too_deep() -> _Problem:
    return _Problem(f"messages nest deeper than {MAX_MESSAGE_DEPTH} levels", MalformedFrame)


def _explain_nested(value: Any, expected: str | None) -> _Problem:
    if (type(value) is not list and type(value) is not tuple) or len(value) != 3:
        return _Problem(f"must be a [type, version, fields] array, {_got(value)}")
    tag, version, fields = value
    if type(tag) is not str:
        return _Problem(f"must carry a string type tag, {_got(tag)}")
    if expected is not None and tag != expected:
        return _Problem(f"must be a {expected} message, got {_shown(tag)}")
    codec = _codec_for_tag(tag)
    if codec is None:
        return _Problem(f"unknown message type {_shown(tag)}")
    if type(version) is not int or version != codec.version:
        return _Problem(f"unsupported version {_shown(version)} of {tag} (known: {codec.version})")
    return _Problem(f"must carry a fields map, {_got(fields)}")


def _nested_codec(spec: MessageSpec) -> tuple[_FieldFunction, _FieldFunction]:
    codec = _codec_for_type(spec.message_type)
    tag = codec.tag
    version = codec.version

    def encode_nested(value: Any, depth: int) -> Any:
        if type(value) is not codec.message_type:
            raise _Problem(f"must be a {tag} message, {_got(value)}")
        if depth >= MAX_MESSAGE_DEPTH:
            raise _too_deep()
        return [tag, version, codec.encode_fields(value, depth + 1)]

    def decode_nested(value: Any, depth: int) -> Any:
        if (
            (type(value) is list or type(value) is tuple)
            and len(value) == 3
            and value[0] == tag
            and value[1] == version
            and type(value[1]) is int
            and type(value[2]) is dict
        ):
            if depth >= MAX_MESSAGE_DEPTH:
                raise _too_deep()
            return codec.decode_fields(value[2], depth + 1)
        raise _explain_nested(value, tag)

    return encode_nested, decode_nested


def _any_message_codec(spec: AnyMessageSpec) -> tuple[_FieldFunction, _FieldFunction]:
    def encode_any(value: Any, depth: int) -> Any:
        codec = _codecs.get(type(value))
        if codec is None:
            if registered_types().get(type(value).__name__) is not type(value):
                raise _Problem(f"must be a registered message, {_got(value)}")
            codec = _codec_for_type(type(value))
        if depth >= MAX_MESSAGE_DEPTH:
            raise _too_deep()
        return [codec.tag, codec.version, codec.encode_fields(value, depth + 1)]

    def decode_any(value: Any, depth: int) -> Any:
        if (type(value) is list or type(value) is tuple) and len(value) == 3:
            tag, version, fields = value
            codec = _codec_for_tag(tag) if type(tag) is str else None
            if (
                codec is not None
                and type(version) is int
                and version == codec.version
                and type(fields) is dict
            ):
                if depth >= MAX_MESSAGE_DEPTH:
                    raise _too_deep()
                return codec.decode_fields(fields, depth + 1)
        raise _explain_nested(value, None)

    return encode_any, decode_any


_FIELD_CODEC_BUILDERS: dict[type, Callable[[Any], tuple[_FieldFunction, _FieldFunction]]] = {
    StrSpec: _str_codec,
    IntSpec: _int_codec,
    BoolSpec: _bool_codec,
    DecimalSpec: _decimal_codec,
    EnumSpec: _enum_codec,
    OptionalSpec: _optional_codec,
    TupleSpec: _tuple_codec,
    DictSpec: _dict_codec,
    MessageSpec: _nested_codec,
    AnyMessageSpec: _any_message_codec,
}


def _field_codec(spec: FieldTypeSpec) -> tuple[_FieldFunction, _FieldFunction]:
    return _FIELD_CODEC_BUILDERS[type(spec)](spec)


# --- message codecs ---------------------------------------------------------------------


def _indent(lines: list[str], levels: int) -> list[str]:
    return ["    " * levels + line for line in lines]


def _inline_decoder(spec: FieldTypeSpec, out: str, slow: str, ns: dict[str, Any]) -> list[str]:
    """Source lines turning wire `value` into `out`, the common case inline.

    Each line mirrors the checks of the field's decoder function `slow`, and anything the
    inline test does not accept goes to `slow`, which accepts it or raises the explained
    problem: the inline code is purely a fast path, never a second validator.
    """
    if isinstance(spec, OptionalSpec):
        inner = _inline_decoder(spec.inner, out, slow, ns)
        return ["if value is None:", f"    {out} = None", "else:", *_indent(inner, 1)]
    if isinstance(spec, StrSpec):
        if spec.non_empty or spec.max_len is not None:
            low = 1 if spec.non_empty else 0
            high = _INT_MAX if spec.max_len is None else spec.max_len
            test = f"type(value) is str and {low} <= len(value) <= {high}"
        else:
            test = "type(value) is str"
        return [f"if {test}:", f"    {out} = value", "else:", f"    {out} = {slow}(value, depth)"]
    if isinstance(spec, IntSpec):
        low = {Positive: 1, NonNegative: 0, None: _INT_MIN}[spec.sign]
        test = f"type(value) is int and {low} <= value <= {_INT_MAX}"
        return [f"if {test}:", f"    {out} = value", "else:", f"    {out} = {slow}(value, depth)"]
    if isinstance(spec, BoolSpec):
        test = "type(value) is bool"
        return [f"if {test}:", f"    {out} = value", "else:", f"    {out} = {slow}(value, depth)"]
    if isinstance(spec, DecimalSpec):
        ns.update(Decimal=Decimal, InvalidOperation=decimal.InvalidOperation)
        ns.update(context=_PARSE_CONTEXT, ZERO=_ZERO)
        low, high = -MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT
        accept = f"{out}.is_finite() and {low} <= {out}.adjusted() <= {high}"
        if spec.sign is not None:
            accept += f" and ZERO {'<' if spec.sign is Positive else '<='} {out}"
        # `value.strip() is value` holds exactly when there is no surrounding whitespace (str
        # returns itself then); should it ever not, the slow path decides, so it is safe.
        return [
            f"if type(value) is str and len(value) <= {MAX_DECIMAL_CHARS}"
            ' and value.isascii() and "_" not in value and value.strip() is value:',
            "    try:",
            f"        {out} = Decimal(value, context)",
            "    except InvalidOperation:",
            f"        {out} = {slow}(value, depth)",
            f"    if not ({accept}):",
            f"        {out} = {slow}(value, depth)",
            "else:",
            f"    {out} = {slow}(value, depth)",
        ]
    if isinstance(spec, EnumSpec):
        members = f"members_of_{out}"
        ns[members] = {member.value: member for member in spec.enum_type}
        return [
            f"{out} = {members}.get(value) if type(value) is str else None",
            f"if {out} is None:",
            f"    {out} = {slow}(value, depth)",
        ]
    return [f"{out} = {slow}(value, depth)"]


def _inline_encoder(spec: FieldTypeSpec, out: str, slow: str, ns: dict[str, Any]) -> list[str]:
    """Source lines turning attribute `value` into wire `out`; see `_inline_decoder`."""
    if isinstance(spec, OptionalSpec):
        inner = _inline_encoder(spec.inner, out, slow, ns)
        return ["if value is None:", f"    {out} = None", "else:", *_indent(inner, 1)]
    if isinstance(spec, StrSpec | IntSpec | BoolSpec):
        # Same acceptance test as decoding; the slow path also admits str subclasses.
        return _inline_decoder(spec, out, slow, ns)
    if isinstance(spec, DecimalSpec):
        ns.update(Decimal=Decimal, ZERO=_ZERO)
        low, high = -MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT
        # The sign is compared only once the value is known finite: a NaN would signal.
        accept = f"value.is_finite() and {low} <= value.adjusted() <= {high}"
        if spec.sign is not None:
            accept += f" and ZERO {'<' if spec.sign is Positive else '<='} value"
        return [
            f"if type(value) is Decimal and {accept}:",
            f"    {out} = str(value)",
            f"    if len({out}) > {MAX_DECIMAL_CHARS}:",
            f"        {out} = {slow}(value, depth)",
            "else:",
            f"    {out} = {slow}(value, depth)",
        ]
    if isinstance(spec, EnumSpec):
        enum_type = f"enum_of_{out}"
        ns[enum_type] = spec.enum_type
        return [
            f"if type(value) is {enum_type}:",
            f"    {out} = value._value_",
            "else:",
            f"    {out} = {slow}(value, depth)",
        ]
    return [f"{out} = {slow}(value, depth)"]


class _MessageCodec:
    """The compiled encoder and decoder of one message class.

    `encode_fields(message, depth) -> dict` and `decode_fields(fields, depth) -> message` are
    generated as straight-line Python per class (the technique `dataclasses` itself uses for
    `__init__`): scalar checks inline, one call per container or nested message, no loop
    over fields and no reflection per message.
    """

    def __init__(self, schema: MessageSchema) -> None:
        self.message_type = schema.message_type
        self.tag = schema.tag
        self.version = schema.version
        self.schema = schema
        self.field_names = frozenset(field.name for field in schema.fields)
        self.encode_fields: Callable[[Any, int], dict[str, Any]] = self._not_ready
        self.decode_fields: Callable[[dict[str, Any], int], Any] = self._not_ready
        self.field_encoders: dict[str, _FieldFunction] = {}

    def _not_ready(self, *args: Any) -> Any:
        raise RuntimeError(f"codec of {self.tag} used before it was compiled")

    def compile(self) -> None:
        message_type = self.message_type
        # Without a __post_init__ the dataclass __init__ only sets each slot, which the
        # decoder does directly with the slot descriptors (about twice as fast).
        direct = not hasattr(message_type, "__post_init__")
        namespace: dict[str, Any] = {
            "Problem": _Problem,
            "message_type": message_type,
            "new": object.__new__,
            "unexpected": self._unexpected,
        }
        required = sum(1 for field in self.schema.fields if field.default_factory is None)
        encode_body: list[str] = []
        decode_body: list[str] = []
        wire_items = []
        construct = ["message = new(message_type)"] if direct else []
        arguments = []
        for index, field in enumerate(self.schema.fields):
            encode_field, decode_field = _field_codec(field.type_spec)
            self.field_encoders[field.name] = encode_field
            namespace[f"encode_{index}"] = encode_field
            namespace[f"decode_{index}"] = decode_field
            name = repr(field.name)
            encode_body += [
                f"field = {name}",
                f"value = message.{field.name}",
                *_inline_encoder(field.type_spec, f"wire_{index}", f"encode_{index}", namespace),
            ]
            wire_items.append(f"{name}: wire_{index}")
            decoding = _inline_decoder(
                field.type_spec, f"value_{index}", f"decode_{index}", namespace
            )
            decode_body += [f"field = {name}", "try:", f"    value = fields[{name}]"]
            if field.default_factory is None:
                decode_body += ["except KeyError:", "    raise Problem('missing') from None"]
                decode_body += decoding
            else:
                namespace[f"default_{index}"] = field.default_factory
                decode_body += [
                    "except KeyError:",
                    f"    value_{index} = default_{index}()",
                    "else:",
                    "    present += 1",
                    *_indent(decoding, 1),
                ]
            if direct:
                namespace[f"set_{index}"] = message_type.__dict__[field.name].__set__
                construct.append(f"set_{index}(message, value_{index})")
            else:
                arguments.append(f"{field.name}=value_{index}")
        if not direct:
            construct.append("message = message_type(" + ", ".join(arguments) + ")")
        failure = [
            "except Problem as problem:",
            "    if field is not None:",
            "        problem.path.append(field)",
            "    raise",
        ]
        encode_source = [
            "def encode_fields(message, depth):",
            "    field = None",
            "    try:",
            *_indent(encode_body or ["pass"], 2),
            *_indent(failure, 1),
            "    return {" + ", ".join(wire_items) + "}",
        ]
        decode_source = [
            "def decode_fields(fields, depth):",
            "    field = None",
            f"    present = {required}",
            "    try:",
            *_indent(decode_body or ["pass"], 2),
            *_indent(failure, 1),
            "    if len(fields) != present:",
            "        unexpected(fields)",
            *_indent(construct, 1),
            "    return message",
        ]
        source = "\n".join([*encode_source, "", *decode_source, ""])
        exec(compile(source, f"<codec of {self.tag}>", "exec"), namespace)
        self.source = source
        self.encode_fields = namespace["encode_fields"]
        self.decode_fields = namespace["decode_fields"]

    def _unexpected(self, fields: dict[Any, Any]) -> None:
        extra = [key for key in fields if key not in self.field_names]
        first = extra[0] if extra else None
        problem = _Problem("unexpected field")
        problem.path.append(first if type(first) is str else _shown(first))
        raise problem


_codecs: dict[type, _MessageCodec] = {}
_codecs_by_tag: dict[str, _MessageCodec] = {}
_compile_lock = threading.RLock()
_compiling: dict[type, _MessageCodec] = {}


def _codec_for_type(message_type: type) -> _MessageCodec:
    """The compiled codec of a registered class, compiling it (and what it nests) once."""
    codec = _codecs.get(message_type)
    if codec is not None:
        return codec
    with _compile_lock:
        codec = _codecs.get(message_type) or _compiling.get(message_type)
        if codec is not None:
            return codec
        outermost = not _compiling
        codec = _MessageCodec(message_schema(message_type))
        # Published to `_compiling` first so that a class nesting itself finds its codec.
        _compiling[message_type] = codec
        try:
            codec.compile()
        except BaseException:
            _compiling.clear()
            raise
        if outermost:
            # Only complete codecs become visible to other threads.
            for compiled in _compiling.values():
                _codecs_by_tag[compiled.tag] = compiled
                _codecs[compiled.message_type] = compiled
            _compiling.clear()
        return codec


def _codec_for_tag(tag: str) -> _MessageCodec | None:
    codec = _codecs_by_tag.get(tag)
    if codec is not None:
        return codec
    message_type = registered_types().get(tag)
    return None if message_type is None else _codec_for_type(message_type)


def _codec_of_message(message: Any) -> _MessageCodec:
    codec = _codecs.get(type(message))
    if codec is not None:
        return codec
    message_type = type(message)
    if not isinstance(message, Message) or registered_types().get(message_type.__name__) is not (
        message_type
    ):
        raise CodecError(f"not a registered message: {_got(message)}")
    try:
        return _codec_for_type(message_type)
    except MessageDefinitionError as exc:
        raise CodecError(str(exc), message_type.__name__) from exc


# --- public API -------------------------------------------------------------------------


def to_fields(message: Message) -> dict[str, Any]:
    """The message's fields as wire values (JSON-friendly: decimals as strings), validated.

    Raises `FieldError` naming the field when a value breaks its declared type or constraint.
    """
    codec = _codec_of_message(message)
    try:
        return codec.encode_fields(message, 1)
    except _Problem as problem:
        raise problem.error(codec.tag) from None


def to_json_dict(message: Message) -> dict[str, Any]:
    """`{"type": tag, **to_fields(message)}`: a JSON-serializable form of the message."""
    fields = to_fields(message)
    return {"type": type(message).__name__, **fields}


_thread_packers = threading.local()


def _packer() -> msgpack.Packer:
    # A Packer is reused (about twice as fast as packb) but is not thread-safe: one per thread.
    packer = msgpack.Packer(autoreset=True, use_bin_type=True)
    _thread_packers.packer = packer
    return packer


def encode(message: Message) -> bytes:
    """One msgpack frame `[tag, version, {field: wire value}]`; validates every field first."""
    codec = _codecs.get(type(message))
    if codec is None:
        codec = _codec_of_message(message)
    try:
        fields = codec.encode_fields(message, 1)
    except _Problem as problem:
        raise problem.error(codec.tag) from None
    packer = getattr(_thread_packers, "packer", None) or _packer()
    try:
        return packer.pack([codec.tag, codec.version, fields])
    except (ValueError, TypeError, OverflowError) as exc:
        # e.g. a string holding a lone surrogate, which UTF-8 cannot carry.
        raise FieldError(f"cannot be packed: {exc}", codec.tag, _unpackable(fields)) from exc


class Packed:
    """One field's wire value, validated and packed by `pack_field`, for `encode_nesting`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def pack_field(message_type: type[Message], name: str, value: Any) -> Packed:
    """`value` as field `name` of `message_type` would be encoded, packed on its own.

    Validated exactly as `encode` validates the field (FieldError naming it). A reader that
    answers many times with mostly unchanged fields packs each once and splices it with
    `encode_nesting`.
    """
    codec = _codecs.get(message_type) or _codec_for_type(message_type)
    encoder = codec.field_encoders.get(name)
    if encoder is None:
        raise ValueError(f"{codec.tag} has no field {name!r}")
    try:
        wire = encoder(value, 1)
    except _Problem as problem:
        problem.path.append(name)
        raise problem.error(codec.tag) from None
    packer = getattr(_thread_packers, "packer", None) or _packer()
    try:
        return Packed(packer.pack(wire))
    except (ValueError, TypeError, OverflowError) as exc:
        raise FieldError(f"cannot be packed: {exc}", codec.tag, name) from exc


class FieldPacker:
    """Encodes messages of one type for a reader that answers many times with mostly the
    same fields: each field is packed (`pack_field`) once and kept while it is the same
    object, and the frame is spliced with `encode_nesting`. Only immutable field values may
    be given (a value changed in place would keep its old packing)."""

    __slots__ = ("_kept", "_names", "_type")

    def __init__(self, message_type: type[Message]) -> None:
        self._type = message_type
        self._names = tuple(f.name for f in dataclasses.fields(message_type))
        self._kept: dict[str, tuple[Any, Packed]] = {}

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """The frame `encode` gives for the message of `values` (every field, by name)."""
        fields: dict[str, Any] = {}
        for name in self._names:
            value = values[name]
            kept = self._kept.get(name)
            if kept is None or kept[0] is not value:
                kept = (value, pack_field(self._type, name, value))
                self._kept[name] = kept
            fields[name] = kept[1]
        return encode_nesting(self._type, fields)


def encode_nesting(message_type: type[Message], fields: Mapping[str, Any]) -> bytes:
    """The frame `encode` gives for a `message_type` whose nested messages are already frames.

    `fields` holds every field of `message_type`, in its declared order: a nested message as
    the `bytes` that `encode` made of it (or a tuple of such frames for a tuple of messages),
    any field as the `Packed` that `pack_field` made of it, both spliced in verbatim, neither
    decoded nor packed again; any other field as its wire value (int, str, bool or None).
    The journal relays the frames it stored this way; the portfolio packs each field of its
    answer once. The frames are trusted to come from `encode`: the result is byte for byte
    what `encode` gives for the same message (a test holds it to that). ValueError when a
    field is missing, out of order or not a frame, a `Packed` or a scalar.
    """
    codec = _codecs.get(message_type) or _codec_for_type(message_type)
    names = [field.name for field in codec.schema.fields]
    if list(fields) != names:
        raise ValueError(f"{codec.tag} needs the fields {names} in that order, got {list(fields)}")
    packer = getattr(_thread_packers, "packer", None) or _packer()
    parts = [
        packer.pack_array_header(3),
        packer.pack(codec.tag),
        packer.pack(codec.version),
        packer.pack_map_header(len(names)),
    ]
    for name, value in fields.items():
        parts.append(packer.pack(name))
        if type(value) is bytes:
            parts.append(value)
        elif type(value) is Packed:
            parts.append(value.data)
        elif type(value) is tuple and all(type(item) is bytes for item in value):
            parts.append(packer.pack_array_header(len(value)))
            parts.extend(value)
        elif value is None or type(value) in (int, str, bool):
            parts.append(packer.pack(value))
        else:
            raise ValueError(f"{codec.tag}.{name}: a frame or a scalar, {_got(value)}")
    return b"".join(parts)


def _unpackable(fields: dict[str, Any]) -> str | None:
    """The name of the first field msgpack refuses to pack, to name it in the error."""
    packer = msgpack.Packer(autoreset=True, use_bin_type=True)
    for name, value in fields.items():
        try:
            packer.pack(value)
        except (ValueError, TypeError, OverflowError):
            return name
    return None


def decode(frame: bytes, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Message:
    """The message in one frame, every field validated.

    Raises only `CodecError` subclasses, whatever the bytes: `FrameTooLarge` above
    `max_bytes`, `MalformedFrame` for anything that is not one msgpack `[tag, version,
    {fields}]` array (truncated, trailing bytes, ext types, nesting too deep, invalid UTF-8),
    `UnknownMessageType`, `UnsupportedVersion`, and `FieldError` naming the field.
    """
    if type(frame) is not bytes:
        frame = _frame_bytes(frame)
    if len(frame) > max_bytes:
        raise FrameTooLarge(f"frame of {len(frame)} bytes exceeds the limit of {max_bytes}")
    try:
        unpacked = _unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_refuse_ext,
            max_ext_len=0,  # also refuses the built-in timestamp ext type
        )
    except Exception as exc:  # any failure of the C parser means the bytes are malformed
        raise _unreadable(exc) from None
    if type(unpacked) is list and len(unpacked) == 3:
        tag, version, fields = unpacked
        codec = _codecs_by_tag.get(tag) if type(tag) is str else None
        if (
            codec is not None
            and type(version) is int
            and version == codec.version
            and type(fields) is dict
        ):
            try:
                return codec.decode_fields(fields, 1)
            except _Problem as problem:
                raise problem.error(codec.tag) from None
            except Exception as exc:
                raise _undecodable(exc, codec) from exc
    return _refuse_envelope(unpacked)


def _frame_bytes(frame: Any) -> bytes:
    try:
        return bytes(memoryview(frame))
    except TypeError:
        raise MalformedFrame(f"a frame must be bytes, {_got(frame)}") from None


def _unreadable(exc: Exception) -> MalformedFrame:
    if isinstance(exc, _ExtTypeRefused) or "max_ext_len" in str(exc):
        return MalformedFrame("msgpack ext types are not allowed")
    if isinstance(exc, msgpack.StackError):
        return MalformedFrame("msgpack data nests too deeply")
    return MalformedFrame(f"not a msgpack frame: {type(exc).__name__}: {exc}")


def _undecodable(exc: Exception, codec: _MessageCodec) -> CodecError:
    # Validation should have caught everything; whatever still goes wrong building the
    # message is the frame's fault and must leave as a CodecError, never as itself.
    if isinstance(exc, RecursionError | MemoryError):
        return MalformedFrame(f"cannot be decoded: {type(exc).__name__}", codec.tag)
    return FieldError(f"refused: {type(exc).__name__}: {exc}", codec.tag)


def _refuse_envelope(unpacked: Any) -> Message:
    """Decode a frame the fast path did not take, or raise the error that explains why."""
    if type(unpacked) is not list or len(unpacked) != 3:
        raise MalformedFrame(f"a frame must be a [type, version, fields] array, {_got(unpacked)}")
    tag, version, fields = unpacked
    if type(tag) is not str:
        raise MalformedFrame(f"the type tag must be a string, {_got(tag)}")
    codec = _lookup_tag(tag)  # the tag may be registered but not compiled yet
    if type(version) is not int:
        raise MalformedFrame(f"the version must be an integer, {_got(version)}", tag)
    if version != codec.version:
        raise UnsupportedVersion(
            f"version {version} is not supported (known: {codec.version})", tag
        )
    if type(fields) is not dict:
        raise MalformedFrame(f"the fields must be a map, {_got(fields)}", tag)
    return _decode_fields(codec, fields)


def from_fields(message_type: type[M] | str, fields: Mapping[str, Any]) -> M:
    """Build a message from wire values (as `to_fields` gives), validating as `decode` does.

    For external input such as a replay file: `message_type` is the class or its type tag.
    Raises only `CodecError` subclasses.
    """
    if isinstance(message_type, str):
        codec = _lookup_tag(message_type)
    else:
        codec = _codec_of_message_type(message_type)
    if not isinstance(fields, Mapping):
        raise MalformedFrame(f"the fields must be a map, {_got(fields)}", codec.tag)
    return _decode_fields(codec, fields if type(fields) is dict else dict(fields))


def from_json_dict(json_dict: Mapping[str, Any]) -> Message:
    """The inverse of `to_json_dict`: the `"type"` key names the message, the rest its fields."""
    if not isinstance(json_dict, Mapping):
        raise MalformedFrame(f"a message must be a JSON object, {_got(json_dict)}")
    fields = dict(json_dict)
    tag = fields.pop("type", None)
    if type(tag) is not str:
        raise MalformedFrame(f'the "type" key must be a string type tag, {_got(tag)}')
    return from_fields(tag, fields)


def _lookup_tag(tag: str) -> _MessageCodec:
    try:
        codec = _codec_for_tag(tag)
    except MessageDefinitionError as exc:
        raise CodecError(str(exc), tag) from exc
    if codec is None:
        raise UnknownMessageType(f"unknown message type {_shown(tag)}", tag[:128])
    return codec


def _codec_of_message_type(message_type: Any) -> _MessageCodec:
    if (
        not isinstance(message_type, type)
        or registered_types().get(message_type.__name__) is not message_type
    ):
        raise UnknownMessageType(f"not a registered message type: {_shown(message_type)}")
    try:
        return _codec_for_type(message_type)
    except MessageDefinitionError as exc:
        raise CodecError(str(exc), message_type.__name__) from exc


def _decode_fields(codec: _MessageCodec, fields: dict[str, Any]) -> Any:
    try:
        return codec.decode_fields(fields, 1)
    except _Problem as problem:
        raise problem.error(codec.tag) from None
    except Exception as exc:
        raise _undecodable(exc, codec) from exc
