"""The messages: immutable typed records, registered once, with the constraints the books need."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

import pytest

from messages import (
    Acknowledgement,
    DrawdownFigures,
    DrawdownMarked,
    ErrorCode,
    ErrorReply,
    EventBatch,
    ExecutionReport,
    FieldError,
    GetPortfolioState,
    GetProcessHealth,
    MaxLen,
    Message,
    MessageDefinitionError,
    NonEmpty,
    OrderStatus,
    Ping,
    Pong,
    PortfolioState,
    PositionState,
    Positive,
    ProcessHealth,
    ReplayEvents,
    SequencedEvent,
    Side,
    UnsupportedVersion,
    decode,
    encode,
    from_fields,
    message,
    registered_types,
    to_fields,
)
from messages.base import message_schema
from tests.support import factories

FIRST_SET = {
    Ping,
    Pong,
    ErrorReply,
    Acknowledgement,
    DrawdownFigures,
    DrawdownMarked,
    GetProcessHealth,
    ProcessHealth,
    ExecutionReport,
    SequencedEvent,
    ReplayEvents,
    EventBatch,
    GetPortfolioState,
    PositionState,
    PortfolioState,
}


# Test-only messages: a later schema version, defaults, and a forward reference. They are
# valid messages, so the generic round-trip test covers them too.


@message(version=3)
class CodecProbe(Message):
    """A version-3 message with defaulted fields of container types."""

    name: Annotated[str, NonEmpty, MaxLen(8)]
    sides: tuple[Side, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    note: str | None = None


@message
class ForwardHolder(Message):
    """Names a class defined after it: resolved on first use, not at definition."""

    child: ForwardChild | None


@message
class ForwardChild(Message):
    """The target of `ForwardHolder.child`."""

    amount: Annotated[Decimal, Positive]


execution_report = partial(
    factories.execution_report,
    exec_id="TQ4W2B-ABCDE-FGHIJK",
    order_id="OQCLML-BW3P3-BUCMWZ",
    pair="ETH/XBT",
    side=Side.SELL,
    status=OrderStatus.FILLED,
    last_qty="2.5",
    last_price="0.05123",
    fee="0.0003",
    quote_rate="60123.4",
    ts_event=1,
    ts_init=2,
)
"""The sample report: a cross-pair sell, its fee in XBT."""


# --- what every message is ---------------------------------------------------------------


def test_the_first_set_is_registered_under_class_names() -> None:
    types = registered_types()

    for message_type in FIRST_SET:
        assert types[message_type.__name__] is message_type


def test_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        registered_types()["Fake"] = Ping  # type: ignore[index]


@pytest.mark.parametrize("message_type", sorted(FIRST_SET, key=lambda cls: cls.__name__))
def test_messages_are_frozen_slotted_keyword_only_dataclasses(message_type: type) -> None:
    params = message_type.__dataclass_params__

    assert params.frozen
    assert "__dict__" not in dir(message_type)  # slots: no per-instance dict
    assert all(f.kw_only for f in dataclasses.fields(message_type))
    assert message_type.__doc__


def test_a_message_cannot_be_changed_or_built_positionally() -> None:
    ping = Ping(correlation_id="c", sent_ns=1)

    with pytest.raises(dataclasses.FrozenInstanceError):
        ping.sent_ns = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        Ping("c", 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    "message_type",
    [
        Ping,
        Pong,
        ErrorReply,
        GetPortfolioState,
        PortfolioState,
        ReplayEvents,
        EventBatch,
        GetProcessHealth,
        ProcessHealth,
    ],
    ids=lambda message_type: message_type.__name__,
)
def test_requests_and_their_replies_carry_a_correlation_id(message_type: type) -> None:
    assert "correlation_id" in {f.name for f in dataclasses.fields(message_type)}


# --- registration -------------------------------------------------------------------------


def test_registering_a_second_class_under_a_taken_tag_raises() -> None:
    before = dict(registered_types())

    with pytest.raises(MessageDefinitionError, match="'Ping' is already registered"):

        @message
        class Ping(Message):  # the duplicate tag is the point
            correlation_id: str

    assert dict(registered_types()) == before


@pytest.mark.parametrize(
    ("annotation", "complaint"),
    [
        (float, "unsupported field type"),
        (list[int], "unsupported field type"),
        (tuple[int, str], "tuple"),
        (dict[int, str], "dict keys must be str"),
        (int | str, "only `X | None`"),
        (Annotated[str, Positive], "does not apply"),
        (Annotated[int, NonEmpty], "str fields only"),
        (Annotated[bool, Positive], "does not apply"),
    ],
    ids=repr,
)
def test_an_unsupported_field_type_fails_at_definition(annotation: Any, complaint: str) -> None:
    before = dict(registered_types())
    namespace = {"__annotations__": {"value": annotation}, "__module__": __name__}
    probe = type("UnsupportedProbe", (Message,), namespace)

    with pytest.raises(MessageDefinitionError, match=complaint):
        message(probe)

    assert dict(registered_types()) == before


def test_only_message_subclasses_can_be_declared() -> None:
    class NotAMessage:
        pass

    with pytest.raises(MessageDefinitionError):
        message(NotAMessage)  # type: ignore[type-var]


def test_a_field_named_type_is_refused_because_json_uses_it() -> None:
    namespace = {"__annotations__": {"type": str}, "__module__": __name__}
    probe = type("TypedProbe", (Message,), namespace)

    with pytest.raises(MessageDefinitionError, match="reserved"):
        message(probe)
    assert "TypedProbe" not in registered_types()


def test_the_schema_records_version_constraints_and_defaults() -> None:
    schema = message_schema(CodecProbe)

    assert (schema.tag, schema.version) == ("CodecProbe", 3)
    name, sides, limits, note = schema.fields
    assert (name.type_spec.non_empty, name.type_spec.max_len) == (True, 8)
    assert name.default_factory is None
    assert sides.default_factory() == ()
    assert limits.default_factory() == {}
    assert note.default_factory() is None


def test_a_versioned_message_travels_with_its_version() -> None:
    probe = CodecProbe(name="p", sides=(Side.BUY, Side.SELL), limits={"XBT": 3})

    frame = encode(probe)

    assert decode(frame) == probe
    fields = to_fields(probe)
    assert from_fields(CodecProbe, {"name": "p"}) == CodecProbe(name="p")
    with pytest.raises(UnsupportedVersion):
        decode(encode(probe).replace(b"\x03", b"\x01", 1))
    with pytest.raises(FieldError, match=r"CodecProbe\.name: must be at most 8 characters"):
        from_fields(CodecProbe, {**fields, "name": "x" * 9})


def test_a_forward_reference_resolves_on_first_use() -> None:
    holder = ForwardHolder(child=ForwardChild(amount=Decimal("1.5")))

    assert decode(encode(holder)) == holder
    with pytest.raises(FieldError, match=r"ForwardHolder\.child\.amount: must be > 0"):
        from_fields(ForwardHolder, {"child": ["ForwardChild", 1, {"amount": "0"}]})


# --- control ------------------------------------------------------------------------------


def test_error_codes_have_their_wire_values() -> None:
    assert {code.value for code in ErrorCode} == {
        "malformed",
        "unknown_type",
        "refused",
        "handler_failed",
        "timeout",
        "unavailable",
    }


def test_an_error_reply_may_lack_a_correlation_id() -> None:
    reply = ErrorReply(correlation_id=None, code=ErrorCode.MALFORMED, detail="bad frame")

    assert decode(encode(reply)) == reply
    assert to_fields(reply)["code"] == "malformed"


def test_pong_counters_cannot_be_negative() -> None:
    pong = Pong(
        correlation_id="c",
        actor="journal",
        process="core",
        pid=4242,
        handled=10,
        failed=0,
        malformed=-1,
        sent_ns=5,
    )

    with pytest.raises(FieldError, match=r"Pong\.malformed: must be >= 0"):
        encode(pong)


def test_acknowledgement_carries_key_seq_and_duplicate_flag() -> None:
    first = Acknowledgement(key="T1", seq=7, duplicate=False)
    unjournaled = Acknowledgement(key="T1", seq=None, duplicate=True)

    assert decode(encode(first)) == first
    assert decode(encode(unjournaled)).seq is None
    with pytest.raises(FieldError, match=r"Acknowledgement\.key: must not be empty"):
        encode(Acknowledgement(key="", seq=1, duplicate=False))


def test_process_health_nests_the_pongs_of_its_actors() -> None:
    pong = Pong(
        correlation_id="c",
        actor="journal",
        process="core",
        pid=1,
        handled=0,
        failed=0,
        malformed=0,
        sent_ns=0,
    )
    health = ProcessHealth(correlation_id="h", process="core", pid=1, ready=True, actors=(pong,))

    assert decode(encode(health)) == health


# --- journal ------------------------------------------------------------------------------


def test_order_status_and_side_values_are_exactly_the_wire_strings() -> None:
    assert [status.value for status in OrderStatus] == [
        "NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "EXPIRED",
        "REJECTED",
    ]
    assert [side.value for side in Side] == ["buy", "sell"]


def test_execution_report_names_its_delivery_key_without_making_it_a_field() -> None:
    report = execution_report()

    assert ExecutionReport.delivery_key == "exec_id"
    assert "delivery_key" not in {f.name for f in dataclasses.fields(ExecutionReport)}
    assert getattr(report, ExecutionReport.delivery_key) == "TQ4W2B-ABCDE-FGHIJK"
    assert "delivery_key" not in to_fields(report)


def test_a_report_without_a_fill_has_zero_quantity_and_an_empty_reason_by_default() -> None:
    cancel = execution_report(
        status=OrderStatus.CANCELED, last_qty=Decimal(0), last_price=Decimal(0), fee=Decimal(0)
    )

    assert cancel.reason == ""
    assert decode(encode(cancel)) == cancel


def test_quote_rate_is_positive_when_present() -> None:
    assert decode(encode(execution_report(quote_rate=None))).quote_rate is None
    with pytest.raises(FieldError, match=r"ExecutionReport\.quote_rate: must be > 0"):
        encode(execution_report(quote_rate=Decimal("-60123.4")))


def test_a_sequenced_event_needs_a_positive_seq_and_a_registered_event() -> None:
    with pytest.raises(FieldError, match=r"SequencedEvent\.seq: must be > 0, got 0"):
        encode(SequencedEvent(seq=0, ts_journal=1, event=execution_report()))
    with pytest.raises(FieldError, match=r"SequencedEvent\.event: must be a registered message"):
        encode(SequencedEvent(seq=1, ts_journal=1, event="fill"))  # type: ignore[arg-type]


def test_replay_request_bounds() -> None:
    request = ReplayEvents(correlation_id="r", from_seq=1, to_seq=None, max_events=500)

    assert decode(encode(request)) == request
    with pytest.raises(FieldError, match=r"ReplayEvents\.max_events: must be > 0"):
        encode(ReplayEvents(correlation_id="r", from_seq=1, to_seq=10, max_events=0))


def test_an_event_batch_only_holds_sequenced_events() -> None:
    batch = EventBatch(
        correlation_id="r",
        events=(execution_report(),),  # type: ignore[arg-type]
        head_seq=1,
        complete=True,
    )

    with pytest.raises(FieldError, match=r"EventBatch\.events\.0: must be a SequencedEvent"):
        encode(batch)


# --- portfolio ----------------------------------------------------------------------------


def test_a_short_position_has_a_negative_quantity_but_never_a_negative_cost() -> None:
    short = PositionState(
        asset="ETH",
        quantity=Decimal("-3"),
        average_cost=Decimal("2500"),
        realized_pnl=Decimal("-10"),
        fees=Decimal("1.2"),
        market_value=None,
        unrealized_pnl=None,
    )

    assert decode(encode(short)) == short
    with pytest.raises(FieldError, match=r"PositionState\.average_cost: must be >= 0"):
        encode(dataclasses.replace(short, average_cost=Decimal("-1")))


def test_portfolio_state_round_trips_cash_and_positions() -> None:
    state = PortfolioState(
        correlation_id="q",
        seq=0,
        as_of_ns=0,
        valuation_currency="USD",
        equity=None,
        cash={"USD": Decimal("-5.00"), "EUR": Decimal("0")},
        positions={},
    )

    decoded = decode(encode(state))

    assert decoded == state
    assert str(decoded.cash["USD"]) == "-5.00"


def test_a_drawdown_mark_between_events_round_trips_and_names_its_seq() -> None:
    figures = DrawdownFigures(
        seq=4,
        peak_equity=Decimal("110000.5"),
        daily_peak=Decimal("110000.5"),
        weekly_peak=None,
        daily_window_start_ns=1_700_000_000_000_000_000,
        weekly_window_start_ns=None,
        last_equity=Decimal("105000"),
        last_mark_ns=1_700_000_000_000_000_001,
        breached=("daily",),
        marks=9,
    )
    marked = DrawdownMarked(seq=4, figures=figures)

    assert registered_types()["DrawdownMarked"] is DrawdownMarked
    assert decode(encode(marked)) == marked
    assert decode(encode(DrawdownMarked(seq=0, figures=figures))).seq == 0
    with pytest.raises(FieldError, match=r"DrawdownMarked\.seq: must be >= 0"):
        encode(dataclasses.replace(marked, seq=-1))
