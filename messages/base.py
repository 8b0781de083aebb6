"""What a message is: the `Message` base, the `@message` decorator, field constraints, schemas.

Every message the service exchanges is a frozen, keyword-only, slotted dataclass registered
under its class name, which is its type tag on the wire. The decorator also reads the field
annotations into a `MessageSchema`: the codec compiles that schema once per class, so no
reflection happens per message.

Field types a message may use:
    `str`, `int` (never `bool`), `bool`, `decimal.Decimal`, `X | None`, an `enum.Enum` whose
    values are all `str`, `tuple[T, ...]`, `dict[str, T]`, a specific message class, and
    `Message` (any registered message).
Constraints are `typing.Annotated` markers: `Positive`, `NonNegative` (int and Decimal),
`NonEmpty` and `MaxLen(n)` (str). A string may be empty unless it is marked `NonEmpty`.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import threading
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, TypeVar

__all__ = [
    "AnyMessageSpec",
    "BoolSpec",
    "DecimalSpec",
    "DictSpec",
    "EnumSpec",
    "FieldSpec",
    "FieldTypeSpec",
    "Identifier",
    "IntSpec",
    "MaxLen",
    "Message",
    "MessageDefinitionError",
    "MessageSchema",
    "MessageSpec",
    "NonEmpty",
    "NonNegative",
    "OptionalSpec",
    "Positive",
    "StrSpec",
    "TimestampNs",
    "TupleSpec",
    "message",
    "message_schema",
    "registered_types",
]


class Message:
    """Base of every message: immutable data with no behaviour and no fields of its own.

    Subclasses are declared with `@message(...)`, which makes them frozen, keyword-only,
    slotted dataclasses; instances are shared between actors without copying.
    """

    __slots__ = ()


class MessageDefinitionError(TypeError):
    """A message class is declared wrongly: duplicate tag, unsupported field type, bad marker.

    Raised when the class is defined (or, for a forward reference that could not be resolved
    then, when the codec first meets the class), never while a message is in flight.
    """


# --- constraint markers -----------------------------------------------------------------


class _SignMarker:
    """A sign constraint on an int or Decimal field; compared by identity (singletons)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


Positive = _SignMarker("Positive")
"""`Annotated[Decimal | int, Positive]`: the value must be > 0."""

NonNegative = _SignMarker("NonNegative")
"""`Annotated[Decimal | int, NonNegative]`: the value must be >= 0."""


class _NonEmptyMarker:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NonEmpty"


NonEmpty = _NonEmptyMarker()
"""`Annotated[str, NonEmpty]`: the string must not be empty."""


@dataclasses.dataclass(frozen=True, slots=True)
class MaxLen:
    """`Annotated[str, MaxLen(n)]`: the string must have at most `n` characters."""

    limit: int

    def __post_init__(self) -> None:
        if type(self.limit) is not int or self.limit < 0:
            raise MessageDefinitionError(f"MaxLen needs a non-negative int, got {self.limit!r}")


TimestampNs = Annotated[int, NonNegative]
"""Integer nanoseconds since the Unix epoch, UTC."""

Identifier = Annotated[str, NonEmpty, MaxLen(128)]
"""A non-empty identifier of at most 128 characters (ids, pairs, asset codes, actor names)."""


# --- schemas ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class StrSpec:
    """A `str` field; `non_empty` and `max_len` come from the `NonEmpty` / `MaxLen` markers."""

    non_empty: bool = False
    max_len: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class IntSpec:
    """An `int` field (a bool is refused); `sign` is None, `Positive` or `NonNegative`."""

    sign: _SignMarker | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BoolSpec:
    """A `bool` field."""


@dataclasses.dataclass(frozen=True, slots=True)
class DecimalSpec:
    """A `Decimal` field (finite only); `sign` is None, `Positive` or `NonNegative`."""

    sign: _SignMarker | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EnumSpec:
    """A field holding a member of `enum_type`, whose values are all `str`."""

    enum_type: type[enum.Enum]


@dataclasses.dataclass(frozen=True, slots=True)
class OptionalSpec:
    """`X | None`."""

    inner: FieldTypeSpec


@dataclasses.dataclass(frozen=True, slots=True)
class TupleSpec:
    """`tuple[T, ...]`."""

    item: FieldTypeSpec


@dataclasses.dataclass(frozen=True, slots=True)
class DictSpec:
    """`dict[str, T]`; `key` is a `StrSpec` so keys may carry string constraints."""

    key: StrSpec
    value: FieldTypeSpec


@dataclasses.dataclass(frozen=True, slots=True)
class MessageSpec:
    """A nested message of exactly the class `message_type`."""

    message_type: type[Message]


@dataclasses.dataclass(frozen=True, slots=True)
class AnyMessageSpec:
    """A nested message of any registered type (a field annotated `Message`)."""


FieldTypeSpec = (
    StrSpec
    | IntSpec
    | BoolSpec
    | DecimalSpec
    | EnumSpec
    | OptionalSpec
    | TupleSpec
    | DictSpec
    | MessageSpec
    | AnyMessageSpec
)

_NO_DEFAULT: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a message: its name, its type spec and how to fill it when absent.

    `default_factory` is set for a field with a default (a plain default is wrapped), and
    None for a required field.
    """

    name: str
    type_spec: FieldTypeSpec
    default_factory: Callable[[], Any] | None


@dataclasses.dataclass(frozen=True, slots=True)
class MessageSchema:
    """The resolved schema of one message class: wire tag, schema version, fields in order."""

    message_type: type[Message]
    tag: str
    version: int
    fields: tuple[FieldSpec, ...]


# --- registry ---------------------------------------------------------------------------

_registry: dict[str, type[Message]] = {}
_versions: dict[type[Message], int] = {}
_schemas: dict[type[Message], MessageSchema] = {}
_registry_lock = threading.RLock()

M = TypeVar("M", bound=Message)


def registered_types() -> Mapping[str, type[Message]]:
    """Every registered message class by its wire type tag (a read-only view)."""
    return types.MappingProxyType(_registry)


def message(
    cls: type[M] | None = None, *, version: int = 1
) -> type[M] | Callable[[type[M]], type[M]]:
    """Declare a message class: `@message` or `@message(version=2)`.

    Makes the class a frozen, keyword-only, slotted dataclass, registers it under its class
    name (the wire type tag) with its schema `version`, and checks its field types now so a
    mistake fails at import rather than in flight. Registering a second class under a tag
    already taken raises `MessageDefinitionError`.
    """
    if type(version) is not int or version < 1:
        raise MessageDefinitionError(f"message version must be an int >= 1, got {version!r}")

    def declare(target: type[M]) -> type[M]:
        return _declare(target, version)

    if cls is None:
        return declare
    return declare(cls)


def _declare(target: type[M], version: int) -> type[M]:
    if not isinstance(target, type) or not issubclass(target, Message):
        raise MessageDefinitionError(f"@message applies to subclasses of Message, got {target!r}")
    tag = target.__name__
    with _registry_lock:
        if tag in _registry:
            existing = _registry[tag]
            raise MessageDefinitionError(
                f"message type tag {tag!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}"
            )
        built = dataclasses.dataclass(frozen=True, kw_only=True, slots=True)(target)
        _versions[built] = version
        try:
            _schemas[built] = _resolve_schema(built)
        except NameError:
            # A forward reference to a class not yet defined: resolved on first use instead.
            pass
        except BaseException:
            del _versions[built]
            raise
        _registry[tag] = built
    return built


def message_schema(message_type: type[Message]) -> MessageSchema:
    """The schema of a registered message class, resolved once and cached.

    Raises `MessageDefinitionError` for a class that is not registered or whose field types
    cannot be resolved or are not supported.
    """
    schema = _schemas.get(message_type)
    if schema is not None:
        return schema
    with _registry_lock:
        if message_type not in _versions:
            raise MessageDefinitionError(f"{message_type!r} is not a registered message type")
        schema = _schemas.get(message_type)
        if schema is None:
            try:
                schema = _resolve_schema(message_type)
            except NameError as exc:
                raise MessageDefinitionError(
                    f"{message_type.__name__}: cannot resolve a field annotation: {exc}"
                ) from exc
            _schemas[message_type] = schema
        return schema


def _resolve_schema(message_type: type[Message]) -> MessageSchema:
    tag = message_type.__name__
    module = sys.modules.get(message_type.__module__)
    hints = typing.get_type_hints(
        message_type,
        globalns=vars(module) if module is not None else None,
        include_extras=True,
    )
    fields = []
    for field in dataclasses.fields(message_type):
        if field.name == "type":
            raise MessageDefinitionError(
                f"{tag}.type: the name 'type' is reserved for the type tag in JSON form"
            )
        where = f"{tag}.{field.name}"
        type_spec = _spec_of(hints[field.name], (), where)
        if field.default is not dataclasses.MISSING:
            default_factory = _constant(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            default_factory = field.default_factory
        else:
            default_factory = None
        fields.append(FieldSpec(field.name, type_spec, default_factory))
    return MessageSchema(message_type, tag, _versions[message_type], tuple(fields))


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _spec_of(annotation: Any, markers: tuple[Any, ...], where: str) -> FieldTypeSpec:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extra = typing.get_args(annotation)
        return _spec_of(base, markers + tuple(extra), where)
    if origin is typing.Union or origin is types.UnionType:
        members = typing.get_args(annotation)
        others = [member for member in members if member is not type(None)]
        if len(others) != 1 or len(members) != 2:
            raise MessageDefinitionError(f"{where}: only `X | None` unions are supported")
        return OptionalSpec(_spec_of(others[0], markers, where))
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise MessageDefinitionError(f"{where}: only `tuple[T, ...]` tuples are supported")
        _refuse_markers(markers, where, "a tuple")
        return TupleSpec(_spec_of(args[0], (), f"{where}[]"))
    if origin is dict:
        key, value = typing.get_args(annotation)
        key_spec = _spec_of(key, (), f"{where}{{key}}")
        if not isinstance(key_spec, StrSpec):
            raise MessageDefinitionError(f"{where}: dict keys must be str")
        _refuse_markers(markers, where, "a dict")
        return DictSpec(key_spec, _spec_of(value, (), f"{where}{{}}"))
    if origin is not None:
        raise MessageDefinitionError(f"{where}: unsupported field type {annotation!r}")
    return _spec_of_class(annotation, markers, where)


def _spec_of_class(annotation: Any, markers: tuple[Any, ...], where: str) -> FieldTypeSpec:
    if annotation is bool:
        _refuse_markers(markers, where, "a bool")
        return BoolSpec()
    if annotation is int:
        return IntSpec(_sign_of(markers, where))
    if annotation is Decimal:
        return DecimalSpec(_sign_of(markers, where))
    if annotation is str:
        non_empty = False
        max_len = None
        for marker in markers:
            if marker is NonEmpty:
                non_empty = True
            elif isinstance(marker, MaxLen):
                max_len = marker.limit if max_len is None else min(max_len, marker.limit)
            elif isinstance(marker, _SignMarker):
                raise MessageDefinitionError(f"{where}: {marker!r} does not apply to a str")
        return StrSpec(non_empty, max_len)
    if annotation is Message:
        _refuse_markers(markers, where, "a message")
        return AnyMessageSpec()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        _refuse_markers(markers, where, "an enum")
        if not all(isinstance(member.value, str) for member in annotation):
            raise MessageDefinitionError(f"{where}: enum {annotation.__name__} needs str values")
        return EnumSpec(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Message):
        if annotation not in _versions:
            raise MessageDefinitionError(
                f"{where}: {annotation.__name__} is not a registered message type"
            )
        _refuse_markers(markers, where, "a message")
        return MessageSpec(annotation)
    raise MessageDefinitionError(f"{where}: unsupported field type {annotation!r}")


def _sign_of(markers: tuple[Any, ...], where: str) -> _SignMarker | None:
    signs = {marker for marker in markers if isinstance(marker, _SignMarker)}
    for marker in markers:
        if marker is NonEmpty or isinstance(marker, MaxLen):
            raise MessageDefinitionError(f"{where}: {marker!r} applies to str fields only")
    if Positive in signs:
        return Positive
    if NonNegative in signs:
        return NonNegative
    return None


def _refuse_markers(markers: tuple[Any, ...], where: str, what: str) -> None:
    for marker in markers:
        if isinstance(marker, _SignMarker | MaxLen) or marker is NonEmpty:
            raise MessageDefinitionError(f"{where}: {marker!r} does not apply to {what}")
