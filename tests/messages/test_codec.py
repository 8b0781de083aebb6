"""The codec: every registered message round-trips; every bad frame is a typed CodecError."""

from __future__ import annotations

import dataclasses
import json
import threading
import types
import typing
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Annotated, Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messages import (
    DEFAULT_MAX_FRAME_BYTES,
    CodecError,
    ErrorCode,
    ErrorReply,
    EventBatch,
    ExecutionReport,
    FieldError,
    FrameTooLarge,
    MalformedFrame,
    MaxLen,
    Message,
    NonEmpty,
    NonNegative,
    Ping,
    PortfolioState,
    PositionState,
    Positive,
    SequencedEvent,
    Side,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    encode,
    from_fields,
    from_json_dict,
    registered_types,
    to_fields,
    to_json_dict,
)
from messages.codec import (
    MAX_DECIMAL_CHARS,
    MAX_DECIMAL_EXPONENT,
    MAX_MESSAGE_DEPTH,
    FieldPacker,
    encode_nesting,
    pack_field,
)
from tests.support import factories
from tests.support.factories import sequenced

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- sample messages --------------------------------------------------------------------


execution_report = partial(
    factories.execution_report,
    exec_id="TQ4W2B-ABCDE-FGHIJK",
    order_id="OQCLML-BW3P3-BUCMWZ",
    last_qty="0.01250000",
    last_price="43210.1",
    fee="0.86420",
    ts_event=1_700_000_000_000_000_000,
    ts_init=1_700_000_000_000_000_100,
)
"""The sample report; fields given to it are made valid (a Decimal, a Side): a test that needs
a field exactly as it gives it changes the sample with `dataclasses.replace`."""


def position(asset: str, **changes: Any) -> PositionState:
    fields: dict[str, Any] = {
        "asset": asset,
        "quantity": Decimal("-1.5"),
        "average_cost": Decimal("2345.67"),
        "realized_pnl": Decimal("-12.34"),
        "fees": Decimal("3.21"),
        "market_value": Decimal("-3600.00"),
        "unrealized_pnl": None,
    }
    fields.update(changes)
    return PositionState(**fields)


def portfolio_state(assets: tuple[str, ...] = ("XBT", "ETH", "SOL", "ADA", "DOT")):
    return PortfolioState(
        correlation_id="c-1",
        seq=42,
        as_of_ns=1_700_000_000_000_000_000,
        valuation_currency="USD",
        equity=Decimal("100000.00"),
        cash={"USD": Decimal("50000.00"), "EUR": Decimal("-100.5")},
        positions={asset: position(asset) for asset in assets},
    )


def event_batch() -> EventBatch:
    events = tuple(
        sequenced(execution_report(exec_id=f"T{seq}"), seq=seq, ts_journal=seq * 10)
        for seq in (1, 2)
    )
    return EventBatch(correlation_id="c-2", events=events, head_seq=2, complete=True)


def frame_of(tag: Any, version: Any, fields: Any) -> bytes:
    return msgpack.packb([tag, version, fields])


# --- strategies derived from the type hints ---------------------------------------------
# Deliberately independent of the codec's own schema reader, so a misread annotation shows.


def decimals(markers: tuple[Any, ...]) -> st.SearchStrategy[Decimal]:
    built = st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=20),
        st.integers(-20, 12),
    )
    if Positive in markers:
        return built.filter(lambda value: value > 0)
    if NonNegative in markers:
        return built.filter(lambda value: value >= 0)
    return built


def strings(markers: tuple[Any, ...]) -> st.SearchStrategy[str]:
    min_size = 1 if NonEmpty in markers else 0
    limits = [marker.limit for marker in markers if isinstance(marker, MaxLen)]
    return st.text(min_size=min_size, max_size=min(limits) if limits else 24)


def integers(markers: tuple[Any, ...]) -> st.SearchStrategy[int]:
    low = 1 if Positive in markers else 0 if NonNegative in markers else -(2**63)
    return st.integers(low, 2**64 - 1)


def flat_message_types() -> list[type[Message]]:
    """Registered types with no nested message field: the leaves of recursive strategies."""

    def nests(annotation: Any) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, Message):
            return True
        return any(nests(arg) for arg in typing.get_args(annotation))

    flat = []
    for cls in registered_types().values():
        hints = typing.get_type_hints(cls)
        if not any(nests(hints[field.name]) for field in dataclasses.fields(cls)):
            flat.append(cls)
    return flat


def strategy_for(annotation: Any, depth: int, markers: tuple[Any, ...] = ()) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return strategy_for(args[0], depth, markers + tuple(annotation.__metadata__))
    if origin is typing.Union or origin is types.UnionType:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return st.none() | strategy_for(inner, depth, markers)
    if origin is tuple:
        return st.lists(strategy_for(args[0], depth), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(
            strategy_for(args[0], depth), strategy_for(args[1], depth), max_size=3
        )
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return integers(markers)
    if annotation is Decimal:
        return decimals(markers)
    if annotation is str:
        return strings(markers)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if annotation is Message:
        choices = list(registered_types().values()) if depth < 3 else flat_message_types()
        return st.sampled_from(sorted(choices, key=lambda cls: cls.__name__)).flatmap(
            lambda cls: message_strategy(cls, depth + 1)
        )
    if isinstance(annotation, type) and issubclass(annotation, Message):
        return message_strategy(annotation, depth + 1)
    raise AssertionError(f"no strategy for {annotation!r}")


def message_strategy(cls: type[Message], depth: int = 0) -> st.SearchStrategy[Message]:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [field.name for field in dataclasses.fields(cls)]  # not ClassVars
    return st.builds(cls, **{name: strategy_for(hints[name], depth) for name in names})


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("tag", sorted(registered_types()))
@FAST
@given(data=st.data())
def test_every_registered_message_round_trips(tag: str, data: st.DataObject) -> None:
    message_type = registered_types()[tag]
    original = data.draw(message_strategy(message_type))

    frame = encode(original)
    decoded = decode(frame)

    assert type(decoded) is message_type
    assert decoded == original
    assert encode(decoded) == frame  # decimals keep their exact digits, e.g. "1.10"
    assert from_fields(message_type, to_fields(original)) == original
    as_json = json.loads(json.dumps(to_json_dict(original)))
    assert as_json["type"] == tag
    assert from_json_dict(as_json) == original


def test_decimals_keep_their_exact_representation() -> None:
    report = execution_report(last_qty=Decimal("1.10"), last_price=Decimal("1E+3"))

    decoded = decode(encode(report))

    assert str(decoded.last_qty) == "1.10"
    assert str(decoded.last_price) == "1E+3"
    assert to_fields(report)["last_qty"] == "1.10"


def test_a_missing_field_with_a_default_takes_the_default() -> None:
    fields = to_fields(execution_report(reason="late fill"))
    del fields["reason"]

    assert decode(frame_of("ExecutionReport", 1, fields)).reason == ""


def test_nested_messages_of_any_type_round_trip() -> None:
    batch = event_batch()

    decoded = decode(encode(batch))

    assert decoded == batch
    assert isinstance(decoded.events[0].event, ExecutionReport)
    assert decoded.events[1].event.exec_id == "T2"


@FAST
@given(data=st.data())
def test_a_frame_nesting_encoded_messages_is_byte_for_byte_what_encode_gives(
    data: st.DataObject,
) -> None:
    batch = data.draw(message_strategy(EventBatch))
    sequenced = tuple(
        encode_nesting(
            SequencedEvent,
            {"seq": e.seq, "ts_journal": e.ts_journal, "event": encode(e.event)},
        )
        for e in batch.events
    )

    frame = encode_nesting(
        EventBatch,
        {
            "correlation_id": batch.correlation_id,
            "events": sequenced,
            "head_seq": batch.head_seq,
            "complete": batch.complete,
            "journal_id": batch.journal_id,
        },
    )

    assert frame == encode(batch)
    assert decode(frame) == batch


@FAST
@given(data=st.data())
def test_a_frame_of_packed_fields_is_byte_for_byte_what_encode_gives(data: st.DataObject) -> None:
    state = data.draw(message_strategy(PortfolioState))
    names = [field.name for field in dataclasses.fields(PortfolioState)]

    frame = encode_nesting(
        PortfolioState,
        {name: pack_field(PortfolioState, name, getattr(state, name)) for name in names},
    )

    assert frame == encode(state)
    assert decode(frame) == state


@FAST
@given(data=st.data())
def test_a_field_packer_keeps_unchanged_fields_and_encodes_as_encode_does(
    data: st.DataObject,
) -> None:
    first = data.draw(message_strategy(PortfolioState))
    second = data.draw(message_strategy(PortfolioState))
    packer = FieldPacker(PortfolioState)
    names = [field.name for field in dataclasses.fields(PortfolioState)]
    # The second answer keeps the first one's objects for half its fields, as a reader
    # answering between two changes does: the kept packing must still be right.
    mixed = {n: getattr(first if i % 2 else second, n) for i, n in enumerate(names)}

    assert packer.encode({n: getattr(first, n) for n in names}) == encode(first)
    assert packer.encode(mixed) == encode(PortfolioState(**mixed))
    assert packer.encode({n: getattr(second, n) for n in names}) == encode(second)


def test_pack_field_validates_as_encode_does_and_names_the_field() -> None:
    with pytest.raises(FieldError) as raised:
        pack_field(PortfolioState, "cash", {"USD": Decimal("NaN")})
    assert raised.value.field == "cash.USD"
    with pytest.raises(FieldError) as raised:
        pack_field(PortfolioState, "seq", -1)
    assert raised.value.field == "seq"
    with pytest.raises(ValueError, match="no field"):
        pack_field(PortfolioState, "nope", 1)


def test_nesting_refuses_fields_missing_out_of_order_or_not_frames() -> None:
    frame = encode(execution_report())
    with pytest.raises(ValueError, match="seq"):
        encode_nesting(SequencedEvent, {"seq": 1, "event": frame})
    with pytest.raises(ValueError, match="order"):
        encode_nesting(SequencedEvent, {"ts_journal": 1, "seq": 1, "event": frame})
    with pytest.raises(ValueError, match=r"SequencedEvent\.event"):
        encode_nesting(SequencedEvent, {"seq": 1, "ts_journal": 1, "event": execution_report()})


def test_decode_accepts_bytearray_and_memoryview() -> None:
    frame = encode(Ping(correlation_id="c", sent_ns=1))

    assert decode(bytearray(frame)) == decode(memoryview(frame)) == decode(frame)


def test_concurrent_encoders_in_many_threads_stay_correct() -> None:
    failures: list[str] = []

    def work(index: int) -> None:
        for n in range(300):
            report = execution_report(exec_id=f"T{index}-{n}", last_qty=Decimal(n))
            if decode(encode(report)) != report:
                failures.append(report.exec_id)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


# --- bad fields: one validator for decode and from_fields --------------------------------


def report_fields(**changes: Any) -> dict[str, Any]:
    fields = to_fields(execution_report())
    fields.update(changes)
    return fields


def without(fields: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key != name}


def state_fields_with_position(name: str, value: Any) -> dict[str, Any]:
    fields = to_fields(portfolio_state())
    fields["positions"]["XBT"][2][name] = value
    return fields


def batch_fields_with_report(name: str, value: Any) -> dict[str, Any]:
    fields = to_fields(event_batch())
    fields["events"][1][2]["event"][2][name] = value
    return fields


BAD_FIELDS = [
    # (id, tag, fields, dotted field path, words the reason must contain)
    ("wrong type", "ExecutionReport", report_fields(exec_id=7), "exec_id", "must be a string"),
    ("bool for int", "ExecutionReport", report_fields(ts_event=True), "ts_event", "integer"),
    ("str for int", "ExecutionReport", report_fields(ts_init="1"), "ts_init", "integer"),
    ("float decimal", "ExecutionReport", report_fields(fee=0.5), "fee", "decimal string"),
    ("int decimal", "ExecutionReport", report_fields(fee=1), "fee", "decimal string"),
    ("NaN", "ExecutionReport", report_fields(last_price="NaN"), "last_price", "finite"),
    ("sNaN", "ExecutionReport", report_fields(last_price="sNaN"), "last_price", "finite"),
    ("Infinity", "ExecutionReport", report_fields(last_qty="Infinity"), "last_qty", "finite"),
    ("-Inf", "ExecutionReport", report_fields(last_qty="-Inf"), "last_qty", "finite"),
    ("garbage", "ExecutionReport", report_fields(fee="abc"), "fee", "decimal string"),
    ("empty decimal", "ExecutionReport", report_fields(fee=""), "fee", "decimal string"),
    ("spaces", "ExecutionReport", report_fields(fee=" 1.5"), "fee", "plain ASCII"),
    ("underscore", "ExecutionReport", report_fields(fee="1_000"), "fee", "plain ASCII"),
    ("arabic digits", "ExecutionReport", report_fields(fee="١٢"), "fee", "plain ASCII"),
    ("huge exponent", "ExecutionReport", report_fields(fee="1E+1000"), "fee", "within"),
    ("long decimal", "ExecutionReport", report_fields(fee="1" * 65), "fee", "at most 64"),
    ("negative", "ExecutionReport", report_fields(last_qty="-1"), "last_qty", ">= 0, got '-1'"),
    ("zero positive", "ExecutionReport", report_fields(quote_rate="0"), "quote_rate", "> 0"),
    ("negative int", "Ping", {"correlation_id": "c", "sent_ns": -1}, "sent_ns", ">= 0"),
    ("missing", "ExecutionReport", without(report_fields(), "fee"), "fee", "missing"),
    ("unexpected", "ExecutionReport", report_fields(bonus="1"), "bonus", "unexpected"),
    ("empty id", "ExecutionReport", report_fields(order_id=""), "order_id", "not be empty"),
    ("too long", "ExecutionReport", report_fields(pair="X" * 129), "pair", "at most 128"),
    ("bad enum", "ExecutionReport", report_fields(side="hold"), "side", "one of 'buy', 'sell'"),
    ("enum case", "ExecutionReport", report_fields(status="filled"), "status", "one of"),
    ("None not optional", "ExecutionReport", report_fields(fee=None), "fee", "decimal"),
    ("bool field", "EventBatch", {**to_fields(event_batch()), "complete": 1}, "complete", "bool"),
    (
        "nested path",
        "PortfolioState",
        state_fields_with_position("quantity", "x"),
        "positions.XBT.quantity",
        "decimal string",
    ),
    (
        "nested sign",
        "PortfolioState",
        state_fields_with_position("fees", "-0.01"),
        "positions.XBT.fees",
        ">= 0",
    ),
    (
        "nested missing",
        "PortfolioState",
        {**to_fields(portfolio_state()), "positions": {"XBT": ["PositionState", 1, {}]}},
        "positions.XBT.asset",
        "missing",
    ),
    (
        "nested wrong type",
        "PortfolioState",
        {**to_fields(portfolio_state()), "positions": {"XBT": ["Ping", 1, {}]}},
        "positions.XBT",
        "must be a PositionState",
    ),
    (
        "dict value",
        "PortfolioState",
        {**to_fields(portfolio_state()), "cash": {"USD": "NaN"}},
        "cash.USD",
        "finite",
    ),
    (
        "dict key",
        "PortfolioState",
        {**to_fields(portfolio_state()), "cash": {b"USD": "1"}},
        "cash",
        "key b'USD'",
    ),
    (
        "any-message path",
        "EventBatch",
        batch_fields_with_report("last_qty", "-1"),
        "events.1.event.last_qty",
        ">= 0",
    ),
    (
        "nested missing in a tuple",
        "EventBatch",
        {**to_fields(event_batch()), "events": [["SequencedEvent", 1, {}]]},
        "events.0.seq",
        "missing",
    ),
    (
        "tuple not array",
        "EventBatch",
        {**to_fields(event_batch()), "events": "abc"},
        "events",
        "array",
    ),
]


@pytest.mark.parametrize(
    ("tag", "fields", "path", "reason"),
    [case[1:] for case in BAD_FIELDS],
    ids=[case[0] for case in BAD_FIELDS],
)
def test_each_bad_field_is_a_field_error_naming_the_field(
    tag: str, fields: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(FieldError) as from_wire:
        decode(frame_of(tag, 1, fields))
    with pytest.raises(FieldError) as from_external:
        from_fields(tag, fields)

    error = from_wire.value
    assert error.type_tag == tag
    assert error.field == path
    assert str(error).startswith(f"{tag}.{path}: ")
    assert reason in str(error)
    # One validator: external input is refused exactly as a frame is.
    assert type(from_external.value) is type(error)
    assert str(from_external.value) == str(error)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_external_ints_beyond_64_bits_are_refused(value: int) -> None:
    # msgpack cannot carry them, so only external input (a replay file) can hold them.
    fields = {"key": "T1", "seq": value, "duplicate": False}

    with pytest.raises(FieldError, match=r"Acknowledgement\.seq: must fit in 64 bits"):
        from_fields("Acknowledgement", fields)


def test_a_nested_message_of_an_unknown_type_names_its_field() -> None:
    fields = batch_fields_with_report("exec_id", "T1")
    fields["events"][0][2]["event"] = ["Teleported", 1, {}]

    with pytest.raises(FieldError, match=r"EventBatch\.events\.0\.event: unknown message type"):
        decode(frame_of("EventBatch", 1, fields))


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"last_qty": Decimal("NaN")}, "last_qty", "finite"),
        ({"last_qty": Decimal("-Infinity")}, "last_qty", "finite"),
        ({"last_qty": Decimal("-0.5")}, "last_qty", ">= 0, got '-0.5'"),
        ({"quote_rate": Decimal("0")}, "quote_rate", "> 0"),
        ({"fee": 0.5}, "fee", "must be a Decimal, got float"),
        ({"fee": 1}, "fee", "must be a Decimal, got int"),
        ({"ts_event": True}, "ts_event", "integer"),
        ({"ts_event": 1.0}, "ts_event", "integer"),
        ({"exec_id": ""}, "exec_id", "not be empty"),
        ({"side": "sideways"}, "side", "one of"),
        ({"exec_id": "\ud800"}, "exec_id", "cannot be packed"),
    ],
)
def test_encode_refuses_an_invalid_message_naming_the_field(
    changes: dict[str, Any], path: str, reason: str
) -> None:
    report = dataclasses.replace(execution_report(), **changes)

    with pytest.raises(FieldError) as caught:
        encode(report)

    assert caught.value.type_tag == "ExecutionReport"
    assert caught.value.field == path
    assert reason in str(caught.value)


def test_encode_refuses_a_list_for_a_tuple_and_names_nested_fields() -> None:
    batch = EventBatch(correlation_id="c", events=[], head_seq=0, complete=True)  # type: ignore
    with pytest.raises(FieldError, match=r"EventBatch\.events: must be a tuple"):
        encode(batch)

    state = portfolio_state(("XBT",))
    state.positions["XBT"] = position("XBT", fees=Decimal("-1"))
    with pytest.raises(FieldError, match=r"PortfolioState\.positions\.XBT\.fees: must be >= 0"):
        encode(state)


def test_encode_normalizes_a_valid_enum_value_given_as_plain_str() -> None:
    report = dataclasses.replace(execution_report(), side="sell")

    assert decode(encode(report)).side is Side.SELL


def test_encode_refuses_what_is_not_a_registered_message() -> None:
    with pytest.raises(CodecError, match="not a registered message"):
        encode(object())  # type: ignore[arg-type]


@FAST
@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        lambda digits, exponent: Decimal((0, tuple(digits), exponent)),
        st.lists(st.integers(0, 9), min_size=1, max_size=70),
        st.integers(-1100, 1100),
    )
)
def test_encode_and_decode_accept_exactly_the_same_decimals(value: Decimal) -> None:
    fields = {"correlation_id": "c", "seq": 0, "as_of_ns": 0, "valuation_currency": "USD"}
    state = PortfolioState(**fields, equity=value, cash={}, positions={})
    try:
        frame = encode(state)
    except FieldError:
        encoded = False
    else:
        encoded = True
        assert str(decode(frame).equity) == str(value)
    wire = {**fields, "equity": str(value), "cash": {}, "positions": {}}
    try:
        from_fields(PortfolioState, wire)
    except FieldError:
        decodable = False
    else:
        decodable = True
    assert encoded == decodable
    expected = (
        value.is_finite()
        and -MAX_DECIMAL_EXPONENT <= value.adjusted() <= MAX_DECIMAL_EXPONENT
        and len(str(value)) <= MAX_DECIMAL_CHARS
    )
    assert encoded == expected


# --- envelope and frame errors ----------------------------------------------------------


def test_an_unknown_type_tag_is_unknown_message_type() -> None:
    with pytest.raises(UnknownMessageType) as caught:
        decode(frame_of("Teleported", 1, {}))

    assert caught.value.type_tag == "Teleported"
    assert "unknown message type 'Teleported'" in str(caught.value)


def test_a_wrong_version_is_unsupported_version() -> None:
    fields = {"correlation_id": "c", "sent_ns": 1}

    with pytest.raises(UnsupportedVersion) as caught:
        decode(frame_of("Ping", 2, fields))

    assert caught.value.type_tag == "Ping"
    assert "version 2" in str(caught.value)


@pytest.mark.parametrize(
    "envelope",
    [
        ["Ping", True, {"correlation_id": "c", "sent_ns": 1}],
        ["Ping", "1", {"correlation_id": "c", "sent_ns": 1}],
        ["Ping", 1.0, {"correlation_id": "c", "sent_ns": 1}],
        ["Ping", 1, [["correlation_id", "c"]]],
        ["Ping", 1, {"correlation_id": "c", "sent_ns": 1, 7: "non-str key"}],
        ["Ping", 1],
        ["Ping", 1, {}, {}],
        [1, 1, {}],
        {"type": "Ping"},
        "Ping",
        None,
    ],
    ids=repr,
)
def test_a_frame_that_is_not_tag_version_fields_is_malformed(envelope: Any) -> None:
    with pytest.raises(MalformedFrame):
        decode(msgpack.packb(envelope))


def test_trailing_bytes_after_the_frame_are_malformed() -> None:
    with pytest.raises(MalformedFrame):
        decode(encode(Ping(correlation_id="c", sent_ns=1)) + b"\xc0")


@pytest.mark.parametrize(
    "message",
    [execution_report(), portfolio_state(), event_batch()],
    ids=lambda message: type(message).__name__,
)
def test_every_truncated_prefix_of_a_valid_frame_is_malformed(message: Message) -> None:
    frame = encode(message)

    for length in range(len(frame)):
        with pytest.raises(MalformedFrame):
            decode(frame[:length])


@FAST
@given(st.binary(max_size=512))
def test_random_bytes_raise_nothing_but_codec_error(frame: bytes) -> None:
    try:
        decode(frame)
    except CodecError:
        pass


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.sampled_from(["Ping", "ExecutionReport", "SequencedEvent", "NaN", "-1", "1.5"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["event", "seq"]), children, max_size=4
        )
    ),
    max_leaves=20,
)


@FAST
@given(
    tag=st.sampled_from(sorted(registered_types())) | st.text(max_size=8),
    version=st.sampled_from([1, 0, 2, -1, True, None]),
    fields=st.dictionaries(st.text(max_size=12), msgpack_values, max_size=6),
)
def test_structured_garbage_raises_nothing_but_codec_error(
    tag: str, version: Any, fields: dict[str, Any]
) -> None:
    try:
        decode(frame_of(tag, version, fields))
    except CodecError:
        pass


@FAST
@given(position_and_byte=st.tuples(st.integers(0, 10_000), st.integers(0, 255)))
def test_a_corrupted_valid_frame_raises_nothing_but_codec_error(
    position_and_byte: tuple[int, int],
) -> None:
    frame = bytearray(encode(event_batch()))
    index, byte = position_and_byte
    frame[index % len(frame)] = byte

    try:
        decode(bytes(frame))
    except CodecError:
        pass


def test_an_oversized_frame_is_refused_before_parsing() -> None:
    frame = encode(portfolio_state())

    assert decode(frame, max_bytes=len(frame)) == portfolio_state()
    with pytest.raises(FrameTooLarge):
        decode(frame, max_bytes=len(frame) - 1)
    with pytest.raises(FrameTooLarge):
        decode(b"\x00" * (DEFAULT_MAX_FRAME_BYTES + 1))


def test_a_deeply_nested_array_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        decode(b"\x91" * 100_000 + b"\xc0")
    # [ "Ping", 1, {"sent_ns": [[[...]]]} ] written out byte by byte.
    inside_a_field = b"\x93\xa4Ping\x01\x81\xa7sent_ns" + b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(MalformedFrame):
        decode(inside_a_field)


def nested_events(levels: int) -> Any:
    """Wire form of `levels` SequencedEvents nested in each other around a Ping."""
    nested: Any = ["Ping", 1, {"correlation_id": "c", "sent_ns": 1}]
    for _ in range(levels):
        nested = ["SequencedEvent", 1, {"seq": 1, "ts_journal": 1, "event": nested}]
    return nested


def test_messages_nested_beyond_the_limit_are_malformed_both_ways() -> None:
    at_limit = msgpack.packb(nested_events(MAX_MESSAGE_DEPTH - 1))
    beyond = msgpack.packb(nested_events(MAX_MESSAGE_DEPTH))

    decoded = decode(at_limit)
    assert encode(decoded) == at_limit
    with pytest.raises(MalformedFrame, match="nest deeper"):
        decode(beyond)
    with pytest.raises(MalformedFrame, match="nest deeper"):
        encode(SequencedEvent(seq=1, ts_journal=1, event=decoded))


@pytest.mark.parametrize(
    "value",
    [msgpack.ExtType(1, b"x"), msgpack.ExtType(5, b""), msgpack.Timestamp(1, 0)],
    ids=["ext", "empty ext", "timestamp"],
)
def test_an_ext_type_anywhere_is_malformed(value: Any) -> None:
    frame = msgpack.packb(["Ping", 1, {"correlation_id": value, "sent_ns": 1}], datetime=False)

    with pytest.raises(MalformedFrame, match="ext types are not allowed"):
        decode(frame)


def test_invalid_utf8_is_malformed() -> None:
    frame = msgpack.packb(["Ping", 1, {"correlation_id": "c", "sent_ns": 1}])
    broken = frame.replace(b"\xa1c", b"\xa1\xff")

    with pytest.raises(MalformedFrame):
        decode(broken)


def test_a_frame_that_is_not_bytes_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        decode("not bytes")  # type: ignore[arg-type]


# --- from_fields and JSON ---------------------------------------------------------------


def test_from_fields_takes_the_class_or_its_tag() -> None:
    fields = to_fields(execution_report())

    assert from_fields(ExecutionReport, fields) == execution_report()
    assert from_fields("ExecutionReport", fields) == execution_report()


def test_from_fields_refuses_unknown_types_and_non_mappings() -> None:
    with pytest.raises(UnknownMessageType):
        from_fields("Teleported", {})
    with pytest.raises(UnknownMessageType):
        from_fields(dict, {})  # type: ignore[arg-type]
    with pytest.raises(MalformedFrame):
        from_fields(Ping, [("correlation_id", "c")])  # type: ignore[arg-type]


def test_to_json_dict_is_json_serializable_and_reads_back() -> None:
    reply = ErrorReply(correlation_id=None, code=ErrorCode.HANDLER_FAILED, detail="boom")

    text = json.dumps(to_json_dict(reply))

    assert json.loads(text) == {
        "type": "ErrorReply",
        "correlation_id": None,
        "code": "handler_failed",
        "detail": "boom",
    }
    assert from_json_dict(json.loads(text)) == reply


def test_from_json_dict_refuses_a_missing_or_bad_type_key() -> None:
    with pytest.raises(MalformedFrame):
        from_json_dict({"correlation_id": "c"})
    with pytest.raises(UnknownMessageType):
        from_json_dict({"type": "Teleported"})
    with pytest.raises(FieldError, match=r"Ping\.sent_ns: must be >= 0"):
        from_json_dict({"type": "Ping", "correlation_id": "c", "sent_ns": -5})


def test_codec_errors_are_value_errors_with_their_fields() -> None:
    error = FieldError("must be > 0, got '-1'", "ExecutionReport", "last_qty")

    assert isinstance(error, ValueError)
    assert str(error) == "ExecutionReport.last_qty: must be > 0, got '-1'"
    assert (error.type_tag, error.field, error.detail) == (
        "ExecutionReport",
        "last_qty",
        "must be > 0, got '-1'",
    )
