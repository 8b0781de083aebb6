"""Faults reach the client as typed errors; reads and cancels are retried, AddOrder is
resolved through its cl_ord_id and never placed twice."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from kraken import errors
from tests.kraken import proxy as scripted
from tests.kraken.conftest import NO_RETRY, clear_faults, fast_retry, fault

SHORT_TIMEOUT = 0.3
# Far longer than SHORT_TIMEOUT: the answer of a faulted request arrives after the timeout.
LATENCY_MS = 600

KIND_TO_ERROR = {
    "unavailable": errors.ServiceUnavailable,
    "rate_limit": errors.RateLimitExceeded,
    "internal": errors.InternalError,
    "http_502": errors.HTTPStatusError,
    "drop": errors.ConnectionFailed,
    "latency": errors.RequestTimeout,
}


def _fault(server, kind: str) -> None:
    if kind == "latency":
        fault(server, kind, latency_ms=LATENCY_MS)
    else:
        fault(server, kind)


def _orders_with(client, cl_ord_id: str) -> list:
    return [*client.open_orders(cl_ord_id=cl_ord_id), *client.closed_orders(cl_ord_id=cl_ord_id)]


# ---------------------------------------------------------------------------- reads


@pytest.mark.parametrize("kind", sorted(KIND_TO_ERROR))
def test_each_fault_kind_reaches_the_client_as_its_typed_error(make_client, server, kind):
    client = make_client(retry=NO_RETRY, timeout_seconds=SHORT_TIMEOUT)
    _fault(server, kind)

    with pytest.raises(KIND_TO_ERROR[kind]) as raised:
        client.balance()

    assert raised.value.method == "Balance"
    assert raised.value.retryable
    if kind == "http_502":
        assert raised.value.status == 502


@pytest.mark.parametrize("kind", sorted(KIND_TO_ERROR))
def test_reads_are_retried_through_each_fault_kind(make_client, server, sleeps, kind):
    client = make_client(sleep=sleeps, timeout_seconds=SHORT_TIMEOUT)
    _fault(server, kind)
    sleeps.hooks.append(lambda: clear_faults(server))

    lines = client.balance()

    assert [line.raw_asset for line in lines] == ["ZUSD"]
    assert len(sleeps.pauses) == 1


def test_non_json_answer_is_typed_and_retried(make_client, proxy, sleeps):
    client = make_client(url=proxy.url, sleep=sleeps)
    proxy.script("/0/public/Time", scripted.text("<html>maintenance</html>"))
    assert client.server_time() > 0
    assert len(sleeps.pauses) == 1
    proxy.script("/0/public/Time", scripted.text("<html>maintenance</html>"))
    with pytest.raises(errors.NonJSONResponse) as raised:
        make_client(url=proxy.url, retry=NO_RETRY).server_time()
    assert raised.value.status == 200 and raised.value.content_type == "text/html"


def test_retries_stop_after_max_attempts(make_client, server, sleeps):
    client = make_client(sleep=sleeps, retry=fast_retry(max_attempts=3))
    fault(server, "unavailable")
    with pytest.raises(errors.ServiceUnavailable):
        client.balance()
    assert len(sleeps.pauses) == 2


def test_retries_stop_at_the_deadline(make_client, server, sleeps):
    client = make_client(
        sleep=sleeps,
        retry=fast_retry(
            max_attempts=50, base_delay_seconds=1, max_delay_seconds=2, deadline_seconds=0.4
        ),
    )
    fault(server, "unavailable")
    with pytest.raises(errors.ServiceUnavailable):
        client.balance()
    assert sleeps.pauses == []


def test_throttled_waits_until_the_time_kraken_named(make_client, proxy, sleeps):
    now_ns = 1_800_000_000_000_000_000
    client = make_client(url=proxy.url, sleep=sleeps, clock_ns=lambda: now_ns)
    retry_at = now_ns // 1_000_000_000 + 3
    proxy.script(
        "/0/private/Balance", scripted.answer({"error": [f"EService:Throttled: {retry_at}"]})
    )
    client.balance()
    assert len(sleeps.pauses) == 1 and sleeps.pauses[0] >= 3.0


# ---------------------------------------------------------------------------- AddOrder


def test_rate_limited_add_order_is_retried_without_a_lookup(make_client, server, proxy, sleeps):
    client = make_client(url=proxy.url, sleep=sleeps)
    fault(server, "rate_limit")
    sleeps.hooks.append(lambda: clear_faults(server))

    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))

    assert placed.attempts == 2 and not placed.recovered
    assert proxy.count("/0/private/OpenOrders") == 0
    assert [o.txid for o in _orders_with(client, placed.cl_ord_id)] == [placed.txid]


@pytest.mark.parametrize("kind", ["unavailable", "internal", "http_502", "drop"])
def test_add_order_not_placed_under_a_fault_is_resent_once(make_client, server, sleeps, kind):
    client = make_client(sleep=sleeps)
    fault(server, kind)
    # The first pause is the lookup's own retry: the fault ends there, the lookup then
    # proves the order absent, and the order is sent again.
    sleeps.hooks.append(lambda: clear_faults(server))

    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))

    assert placed.attempts == 2 and not placed.recovered
    assert [o.txid for o in _orders_with(client, placed.cl_ord_id)] == [placed.txid]


@pytest.mark.parametrize(
    ("ordertype", "price", "status"),
    [("limit", Decimal("50000"), "open"), ("market", None, "closed")],
)
def test_add_order_placed_but_answer_dropped_returns_the_placed_order_once(
    make_client, proxy, sleeps, ordertype, price, status
):
    client = make_client(url=proxy.url, sleep=sleeps)
    proxy.script("/0/private/AddOrder", scripted.DROP_ANSWER)

    placed = client.add_order("XBT/USD", "buy", ordertype, Decimal("0.01"), price)

    assert placed.recovered and placed.attempts == 1
    assert placed.order is not None and placed.order.status == status
    assert placed.order.cl_ord_id == placed.cl_ord_id
    assert proxy.count("/0/private/AddOrder") == 1
    assert [o.txid for o in _orders_with(client, placed.cl_ord_id)] == [placed.txid]


def test_add_order_placed_but_answered_with_a_gateway_error_is_recovered(make_client, proxy):
    client = make_client(url=proxy.url)
    proxy.script("/0/private/AddOrder", scripted.placed_then_status(504))

    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))

    assert placed.recovered and proxy.count("/0/private/AddOrder") == 1
    assert len(_orders_with(client, placed.cl_ord_id)) == 1


def test_add_order_answer_after_the_timeout_is_found_after_the_settle_delay(
    make_client, server, proxy
):
    def sleep(seconds: float) -> None:
        clear_faults(server)
        time.sleep(seconds)

    client = make_client(
        url=proxy.url,
        sleep=sleep,
        timeout_seconds=SHORT_TIMEOUT,
        retry=fast_retry(order_lookup_delay_seconds=LATENCY_MS / 1000 + 0.9),
    )
    fault(server, "latency", latency_ms=LATENCY_MS)

    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))

    assert placed.recovered and placed.attempts == 1
    assert proxy.count("/0/private/AddOrder") == 1
    assert [o.txid for o in _orders_with(client, placed.cl_ord_id)] == [placed.txid]


def test_add_order_whose_lookup_fails_raises_outcome_unknown_and_is_not_resent(
    make_client, proxy, server
):
    client = make_client(url=proxy.url, retry=fast_retry(max_attempts=3))
    proxy.script("/0/private/AddOrder", scripted.DROP_ANSWER)
    proxy.script("/0/private/OpenOrders", *[scripted.status(502)] * 3)

    with pytest.raises(errors.OrderOutcomeUnknown) as raised:
        client.add_order(
            "XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"), cl_ord_id="probe-1"
        )

    assert raised.value.cl_ord_id == "probe-1"
    assert isinstance(raised.value.cause, errors.ConnectionFailed)
    assert proxy.count("/0/private/AddOrder") == 1
    # It was in fact placed: exactly the case the caller must look up before acting.
    direct = make_client()
    assert len(direct.open_orders(cl_ord_id="probe-1")) == 1


def test_add_order_with_userref_cannot_be_looked_up(make_client, proxy):
    client = make_client(url=proxy.url)
    proxy.script("/0/private/AddOrder", scripted.DROP_ANSWER)

    with pytest.raises(errors.OrderOutcomeUnknown) as raised:
        client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"), userref=12)

    assert raised.value.cl_ord_id is None
    assert proxy.count("/0/private/AddOrder") == 1
    assert proxy.count("/0/private/OpenOrders") == 0


def test_resend_refused_for_a_taken_cl_ord_id_finds_the_late_order(make_client, proxy):
    """Kraken may list a just-placed order late: the lookup misses it, the resend is refused
    because its cl_ord_id is taken, and a second lookup finds the one order."""
    client = make_client(url=proxy.url)
    proxy.script("/0/private/AddOrder", scripted.DROP_ANSWER)
    proxy.script("/0/private/OpenOrders", scripted.answer({"error": [], "result": {"open": {}}}))
    proxy.script(
        "/0/private/ClosedOrders",
        scripted.answer({"error": [], "result": {"closed": {}, "count": 0}}),
    )

    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))

    assert placed.recovered and placed.attempts == 2
    assert proxy.count("/0/private/AddOrder") == 2
    assert [o.txid for o in _orders_with(client, placed.cl_ord_id)] == [placed.txid]


def test_found_order_with_other_terms_is_not_taken_for_ours(make_client, proxy):
    client = make_client(url=proxy.url)
    stranger = {
        "refid": None,
        "userref": None,
        "cl_ord_id": "dup-id",
        "status": "open",
        "opentm": 1716800000.5,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "1000.0",
            "price2": "0",
            "order": "buy 5.00000000 XBTUSD @ limit 1000.0",
        },
        "vol": "5.00000000",
        "vol_exec": "0.00000000",
        "cost": "0",
        "fee": "0",
        "price": "0",
    }
    proxy.script("/0/private/AddOrder", scripted.DROP)
    proxy.script(
        "/0/private/OpenOrders",
        scripted.answer({"error": [], "result": {"open": {"OSTRAN-GER00-000000": stranger}}}),
    )
    with pytest.raises(errors.OrderOutcomeUnknown, match="other terms"):
        client.add_order(
            "XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"), cl_ord_id="dup-id"
        )


def test_order_refusals_are_never_retried(make_client, proxy, sleeps):
    client = make_client(url=proxy.url, sleep=sleeps)
    with pytest.raises(errors.InsufficientFunds):
        client.add_order("XBT/USD", "buy", "market", Decimal("100"))
    assert sleeps.pauses == [] and proxy.count("/0/private/AddOrder") == 1
    assert proxy.count("/0/private/OpenOrders") == 0


def test_market_mode_refusal_proves_nothing_was_placed(make_client, proxy, sleeps):
    client = make_client(url=proxy.url, sleep=sleeps)
    proxy.script(
        "/0/private/AddOrder",
        scripted.answer({"error": ["EService:Market in cancel_only mode"]}),
    )
    with pytest.raises(errors.MarketModeRestricted):
        client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))
    assert sleeps.pauses == [] and proxy.count("/0/private/OpenOrders") == 0


# ---------------------------------------------------------------------------- cancels


def test_cancel_is_retried_through_a_dropped_connection(make_client, server, sleeps):
    client = make_client(sleep=sleeps)
    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))
    fault(server, "drop")
    sleeps.hooks.append(lambda: clear_faults(server))

    result = client.cancel_order(placed.txid)

    assert result.count == 1 and not result.uncertain
    assert client.open_orders() == ()


def test_cancel_whose_answer_was_lost_reports_an_uncertain_success(make_client, proxy):
    client = make_client(url=proxy.url)
    placed = client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))
    proxy.script("/0/private/CancelOrder", scripted.DROP_ANSWER)

    result = client.cancel_order(cl_ord_id=placed.cl_ord_id)

    assert (result.count, result.uncertain) == (0, True)
    assert client.open_orders() == ()
    assert proxy.count("/0/private/CancelOrder") == 2


def test_cancel_all_is_retried(make_client, server, sleeps):
    client = make_client(sleep=sleeps)
    client.add_order("XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("50000"))
    fault(server, "unavailable")
    sleeps.hooks.append(lambda: clear_faults(server))
    assert client.cancel_all().count == 1
    assert len(sleeps.pauses) == 1
