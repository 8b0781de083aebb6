"""The prices actor: its feed thread, latest-wins quotes, and the actor on a real paper exchange.

The pure parts (quote from a ticker, the retry delay, `LatestQuotes`) and `TickerFeed` with a
scripted source are tested directly. Then a real `PaperExchangeServer` (no background
ticking: prices move only when a test moves them) feeds a `PricesActor` hosted by
`ActorHost`; the test listens on `prices.events` and asks on `prices.query` like any client.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zmq

from actors.prices import (
    LatestQuotes,
    TickerFailed,
    TickerFeed,
    TickersRead,
    quote_from_price_mark,
    quote_from_ticker,
    retry_delay_seconds,
)
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import ActorHost, HostStartError
from kraken.errors import RequestTimeout, ServiceUnavailable
from kraken.models import Ticker
from kraken.names import UnknownPairName
from kraken.paper import PaperExchangeServer, PaperSettings
from messages import ErrorCode, GetPrices, PriceMark, PriceQuote, PricesState, PricesUpdated
from messages.codec import decode
from service.config import EXCHANGE_URL_VARIABLE, ServiceConfig, load_config
from service.registry import ACTOR_CLASSES
from tests.support.factories import prices_updated, quote
from tests.support.group import wait_for, write_config

D = Decimal


def ticker(symbol: str, bid: str, ask: str, last: str, received_ns: int) -> Ticker:
    """A Ticker entry with the prices that matter here and plausible rest."""
    zero = D(0)
    return Ticker(
        symbol=symbol,
        pair_id=symbol.replace("/", ""),
        ask=D(ask),
        ask_volume=D(1),
        bid=D(bid),
        bid_volume=D(1),
        last=D(last),
        last_volume=D(1),
        volume_today=zero,
        volume_24h=zero,
        vwap_today=zero,
        vwap_24h=zero,
        trades_today=0,
        trades_24h=0,
        low_today=zero,
        low_24h=zero,
        high_today=zero,
        high_24h=zero,
        open=zero,
        received_ns=received_ns,
    )


# ---------------------------------------------------------------------------- pure parts


def test_a_ticker_becomes_a_quote_with_decimal_prices_and_the_read_time():
    q = quote_from_ticker(ticker("XBT/USD", "59988.0", "60012.0", "60000.5", 1_000))
    assert q == PriceQuote(
        pair="XBT/USD",
        bid=D("59988.0"),
        ask=D("60012.0"),
        last=D("60000.5"),
        exchange_ns=None,
        received_ns=1_000,
    )
    assert all(isinstance(v, Decimal) for v in (q.bid, q.ask, q.last))


def test_a_zero_last_price_means_no_trade_yet_and_becomes_none():
    q = quote_from_ticker(ticker("SOL/USD", "149", "151", "0", 5))
    assert q.last is None and q.bid == D(149)


def test_a_price_mark_becomes_a_quote_in_event_time():
    mark = PriceMark(pair="ETH/USD", bid=D("2999"), ask=D("3001"), ts_event=42)
    q = quote_from_price_mark(mark)
    assert (q.pair, q.bid, q.ask, q.last, q.received_ns) == ("ETH/USD", D(2999), D(3001), None, 42)


def test_the_retry_delay_doubles_from_the_interval_up_to_the_cap():
    delays = [retry_delay_seconds(1.0, 8.0, failures) for failures in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert retry_delay_seconds(1.0, 8.0, 10_000) == 8.0  # a long outage stays at the cap
    assert retry_delay_seconds(5.0, 2.0, 3) == 5.0  # never shorter than the normal interval


def test_latest_wins_and_an_older_quote_is_ignored():
    book = LatestQuotes()
    assert book.apply([quote(pair="XBT/USD", bid="100", ask="101", received_ns=20)]) == (
        quote(pair="XBT/USD", bid="100", ask="101", received_ns=20),
    )
    older = quote(pair="XBT/USD", bid="90", ask="91", received_ns=10)
    assert book.apply([older]) == ()  # older: ignored
    assert book.get("XBT/USD") == quote(pair="XBT/USD", bid="100", ask="101", received_ns=20)
    newer = quote(pair="XBT/USD", bid="102", ask="103", received_ns=30)
    assert book.apply([newer]) == (newer,)
    assert book.get("XBT/USD") == newer


def test_only_quotes_whose_prices_moved_are_changes_but_a_confirmation_refreshes_the_age():
    book = LatestQuotes()
    book.apply(
        [
            quote(pair="XBT/USD", bid="100", ask="101", received_ns=10, last="100"),
            quote(pair="ETH/USD", bid="10", ask="11", received_ns=10),
        ]
    )
    changed = book.apply(
        [
            quote(pair="XBT/USD", bid="100", ask="101", received_ns=20, last="100"),
            quote(pair="ETH/USD", bid="10", ask="12", received_ns=20),
        ]
    )
    assert changed == (quote(pair="ETH/USD", bid="10", ask="12", received_ns=20),)
    assert book.get("XBT/USD").received_ns == 20  # confirmed at 20: its age restarts
    last_moved = book.apply(
        [quote(pair="XBT/USD", bid="100", ask="101", received_ns=30, last="100.5")]
    )
    assert [q.pair for q in last_moved] == ["XBT/USD"]  # a new last price is a change too


def test_a_new_pair_is_a_change_and_all_is_sorted_by_pair():
    book = LatestQuotes()
    changed = book.apply(
        [
            quote(pair="XBT/USD", bid="1", ask="2", received_ns=1),
            quote(pair="ETH/USD", bid="1", ask="2", received_ns=1),
        ]
    )
    assert [q.pair for q in changed] == ["ETH/USD", "XBT/USD"]
    assert [q.pair for q in book.all()] == ["ETH/USD", "XBT/USD"]
    assert len(book) == 2


# ---------------------------------------------------------------------------- the feed


class ScriptedSource:
    """A ticker source that answers from a script: an exception to raise or prices to give."""

    def __init__(self, script: Sequence[object] = ()) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []
        self.closed = False
        self.now = 0

    def ticker(self, pairs: Sequence[str]) -> Mapping[str, Ticker]:
        self.calls.append(list(pairs))
        self.now += 1_000
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, Exception):
            raise step
        for pair in pairs:
            if pair.startswith("NOPE"):
                raise UnknownPairName(pair)
        return {pair: ticker(pair, "100", "101", "100.5", self.now) for pair in pairs}

    def close(self) -> None:
        self.closed = True


def make_feed(
    source: ScriptedSource, pairs: Sequence[str] = ("XBT/USD", "ETH/USD"), **kwargs: object
) -> tuple[TickerFeed, list[object]]:
    delivered: list[object] = []
    settings = {"interval_seconds": 1.0, "retry_max_seconds": 8.0, **kwargs}
    return TickerFeed(source, pairs, delivered.append, **settings), delivered


def test_a_read_hands_the_actor_one_quote_per_pair():
    feed, delivered = make_feed(ScriptedSource())
    assert feed.read_once() == 1.0
    (read,) = delivered
    assert isinstance(read, TickersRead)
    assert [q.pair for q in read.quotes] == ["ETH/USD", "XBT/USD"]
    assert all(q.bid == D(100) and q.ask == D(101) for q in read.quotes)
    assert (feed.reads_ok, feed.reads_failed, feed.consecutive_failures) == (1, 0, 0)


def test_failures_back_off_doubling_to_the_cap_and_a_success_returns_to_the_interval():
    errors = [ServiceUnavailable("Ticker", ["EService:Unavailable"])] * 2 + [
        RequestTimeout("Ticker", 2.0),
        RuntimeError("an answer no parser foresaw"),
        ServiceUnavailable("Ticker", ["EService:Unavailable"]),
    ]
    feed, delivered = make_feed(ScriptedSource(errors))
    pauses = [feed.read_once() for _ in range(6)]
    assert pauses == [2.0, 4.0, 8.0, 8.0, 8.0, 1.0]
    failures = delivered[:5]
    assert all(isinstance(f, TickerFailed) for f in failures)
    assert [f.kind for f in failures] == [
        "ServiceUnavailable",
        "ServiceUnavailable",
        "RequestTimeout",
        "RuntimeError",
        "ServiceUnavailable",
    ]
    assert "EService:Unavailable" in failures[0].error
    assert isinstance(delivered[5], TickersRead)
    assert (feed.reads_ok, feed.reads_failed, feed.consecutive_failures) == (1, 5, 0)


def test_an_unknown_pair_is_reported_and_left_out_so_the_others_are_still_read():
    source = ScriptedSource()
    feed, delivered = make_feed(source, pairs=("XBT/USD", "NOPE/USD"))
    feed.read_once()
    feed.read_once()
    failed, read = delivered
    assert isinstance(failed, TickerFailed) and failed.kind == "UnknownPairName"
    assert "NOPE/USD" in failed.error
    assert isinstance(read, TickersRead) and [q.pair for q in read.quotes] == ["XBT/USD"]
    assert source.calls[-1] == ["XBT/USD"]


def test_the_thread_survives_errors_recovers_and_stops_within_its_deadline():
    source = ScriptedSource([ServiceUnavailable("Ticker", ["EService:Unavailable"]), KeyError("x")])
    inbox: queue.Queue[object] = queue.Queue()
    feed = TickerFeed(source, ["XBT/USD"], inbox.put, interval_seconds=0.01, retry_max_seconds=0.02)
    feed.start()
    try:
        seen: list[object] = []
        deadline = time.monotonic() + 5
        while not any(isinstance(m, TickersRead) for m in seen):
            seen.append(inbox.get(timeout=max(0.01, deadline - time.monotonic())))
        assert [type(m) for m in seen] == [TickerFailed, TickerFailed, TickersRead]
        assert feed.alive
    finally:
        started = time.monotonic()
        assert feed.stop(2.0)
    assert time.monotonic() - started < 1.0
    assert not feed.alive and source.closed


def test_a_feed_waiting_a_long_interval_stops_at_once():
    feed, _ = make_feed(ScriptedSource(), interval_seconds=60.0, retry_max_seconds=60.0)
    feed.start()
    wait_for(lambda: feed.reads_ok == 1, timeout=5)
    started = time.monotonic()
    assert feed.stop(2.0)
    assert time.monotonic() - started < 1.0


def test_the_thread_ends_when_the_actor_is_gone():
    def gone(message: object) -> None:
        raise RuntimeError("actor dead")

    feed = TickerFeed(
        ScriptedSource(), ["XBT/USD"], gone, interval_seconds=0.01, retry_max_seconds=0.02
    )
    feed.start()
    try:
        wait_for(lambda: not feed.alive, timeout=5)
    finally:
        feed.stop(1.0)


# ---------------------------------------------------------------------------- the actor


class Listener:
    """A SUB socket on prices.events that keeps every PricesUpdated it receives."""

    def __init__(self, context: zmq.Context, address: str) -> None:
        self.sock = context.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(address)
        self.received: list[PricesUpdated] = []

    def quotes(self) -> list[PriceQuote]:
        return [q for update in self.received for q in update.quotes]

    def wait(self, predicate: Callable[[], object], timeout: float = 10.0) -> object:
        """Receive until `predicate()` is truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise AssertionError(f"condition not met within {timeout} s")
            if self.sock.poll(min(left_ms, 50), zmq.POLLIN):
                message = decode(self.sock.recv())
                assert isinstance(message, PricesUpdated)
                self.received.append(message)

    def drain(self) -> None:
        while self.sock.poll(0, zmq.POLLIN):
            self.received.append(decode(self.sock.recv()))

    def close(self) -> None:
        self.sock.close(linger=0)


class PricesRig:
    """A paper exchange (optional), the prices actor in its own host, a listener, a client."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        with_exchange: bool = True,
        prices: Mapping[str, object] | None = None,
        actor_class: str = "actors.prices:PricesActor",
    ) -> None:
        self.server: PaperExchangeServer | None = None
        self.context = zmq.Context()
        self.host: ActorHost | None = None
        self.listener: Listener | None = None
        self.client: RequestClient | None = None
        try:
            if with_exchange:
                self.server = PaperExchangeServer(PaperSettings(tick_interval_seconds=0, seed=11))
                self.server.start()
            self.config = self._configure(tmp_path, prices or {}, actor_class)
            self.listener = Listener(self.context, self.config.endpoints["prices.events"])
            self.host = ActorHost(
                self.config, "market", registry=ACTOR_CLASSES, context=self.context
            )
            self.host.start()
            self.client = RequestClient(
                self.context,
                "prices.query",
                self.config.endpoints["prices.query"],
                self.config.transport,
            )
        except BaseException:
            self.close()
            raise

    def _configure(
        self, tmp_path: Path, prices: Mapping[str, object], actor_class: str
    ) -> ServiceConfig:
        url = self.server.url if self.server is not None else "http://127.0.0.1:9"
        path = write_config(
            tmp_path,
            processes={"market": ["prices"]},
            endpoints={
                "prices.events": "inproc://prices.events",
                "prices.query": "inproc://prices.query",
            },
            exchange_mode="paper",
            extra={
                "actor_classes": {"prices": actor_class},
                "exchange": {"url": url, "timeout_seconds": 2},
                "prices": {
                    "interval_seconds": 0.05,
                    "pairs": ["XXBTZUSD", "ETH/USD", "ETH/XBT"],
                    "max_age_seconds": 1.0,
                    "retry_max_seconds": 0.2,
                    **prices,
                },
            },
        )
        return load_config(path)

    def state(self) -> PricesState:
        answer = self.client.request(GetPrices(correlation_id=self.client.new_correlation_id()))
        assert isinstance(answer, PricesState)
        return answer

    def admin(self, path: str, body: dict[str, object]) -> dict:
        response = requests.post(f"{self.server.url}{path}", json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
            if self.listener is not None:
                self.listener.close()
            if self.host is not None:
                self.host.stop()
        finally:
            self.context.destroy(linger=0)
            if self.server is not None:
                self.server.stop()


@pytest.fixture
def rig(tmp_path, monkeypatch) -> Iterator[PricesRig]:
    monkeypatch.delenv(EXCHANGE_URL_VARIABLE, raising=False)
    running = PricesRig(tmp_path)
    try:
        yield running
    finally:
        running.close()
    assert not [t for t in threading.enumerate() if t.name.endswith("-ticker-feed")]


def latest(quotes: list[PriceQuote], pair: str) -> PriceQuote | None:
    mine = [q for q in quotes if q.pair == pair]
    return max(mine, key=lambda q: q.received_ns) if mine else None


PAIRS = {"XBT/USD", "ETH/USD", "ETH/XBT"}


def test_quotes_for_every_configured_pair_are_published_and_served(rig):
    rig.listener.wait(lambda: {q.pair for q in rig.listener.quotes()} >= PAIRS)
    for q in rig.listener.quotes():
        assert q.bid is not None and q.ask is not None and q.bid <= q.ask
        assert q.exchange_ns is None and q.received_ns > 0
    state = rig.state()
    assert [q.pair for q in state.quotes] == sorted(PAIRS)  # normalized, sorted by pair
    assert state.polls_ok >= 1 and state.polls_failed == 0
    assert state.consecutive_failures == 0 and state.last_error == ""
    assert state.last_success_ns == max(q.received_ns for q in state.quotes)
    xbt = next(q for q in state.quotes if q.pair == "XBT/USD")
    assert xbt.bid < D(60000) < xbt.ask  # the paper exchange starts XBT/USD at 60000


def test_a_price_move_shows_in_the_next_published_quote(rig):
    rig.listener.wait(lambda: latest(rig.listener.quotes(), "XBT/USD"))
    rig.admin("/admin/price", {"pair": "XBT/USD", "price": "65000"})
    moved = rig.listener.wait(
        lambda: next(
            (q for q in rig.listener.quotes() if q.pair == "XBT/USD" and q.bid > D(60000)),
            None,
        )
    )
    assert moved.bid < D(65000) < moved.ask
    state_xbt = wait_for(
        lambda: next(q for q in rig.state().quotes if q.pair == "XBT/USD" and q.bid > D(60000))
    )
    assert state_xbt.bid < D(65000) < state_xbt.ask


def test_unchanged_prices_are_republished_with_their_confirmation_time(rig):
    first = rig.listener.wait(lambda: latest(rig.listener.quotes(), "ETH/USD"))
    # Nothing moves on the exchange: the quote comes again, confirmed at a later read.
    again = rig.listener.wait(
        lambda: next(
            (
                q
                for q in rig.listener.quotes()
                if q.pair == "ETH/USD" and q.received_ns > first.received_ns
            ),
            None,
        ),
        timeout=5,
    )
    assert (again.bid, again.ask, again.last) == (first.bid, first.ask, first.last)


def test_a_feed_outage_grows_failures_and_ages_then_heals_by_itself(rig):
    rig.listener.wait(lambda: {q.pair for q in rig.listener.quotes()} >= PAIRS)
    rig.admin("/admin/fault", {"kind": "unavailable", "rate": 1, "seconds": 60})
    wait_for(lambda: rig.state().consecutive_failures >= 2)
    during = rig.state()
    confirmed_until = during.last_success_ns
    assert confirmed_until is not None
    assert "EService:Unavailable" in during.last_error
    assert during.polls_failed >= 2
    seen_before = len(rig.listener.received)
    # Long enough for reads to keep failing and for a republish of the held quotes.
    rig.listener.wait(
        lambda: rig.state().consecutive_failures >= 4 and len(rig.listener.received) > seen_before,
        timeout=10,
    )
    rig.listener.drain()
    later = rig.listener.received[seen_before:]
    assert later, "the held quotes are republished during the outage"
    assert all(q.received_ns <= confirmed_until for u in later for q in u.quotes)
    assert all(q.received_ns <= confirmed_until for q in rig.state().quotes)

    rig.admin("/admin/fault/clear", {})
    healed = rig.listener.wait(
        lambda: next(
            (q for q in rig.listener.quotes() if q.received_ns > confirmed_until),
            None,
        ),
        timeout=10,
    )
    assert healed.bid <= healed.ask
    state = wait_for(lambda: (s := rig.state()).consecutive_failures == 0 and s)
    assert state.last_success_ns > confirmed_until


def test_quotes_cannot_be_injected_through_the_query_endpoint(rig):
    forged = prices_updated(
        quote(pair="XBT/USD", bid="1", ask="2", received_ns=time.time_ns() + 10**18)
    )
    with pytest.raises(RemoteError) as refused:
        rig.client.request(forged)
    assert refused.value.reply.code is ErrorCode.REFUSED
    assert all(q.bid != D(1) for q in rig.state().quotes)


# ---------------------------------------------------------------------------- replay


@pytest.fixture
def replay_rig(tmp_path, monkeypatch) -> Iterator[PricesRig]:
    monkeypatch.delenv(EXCHANGE_URL_VARIABLE, raising=False)
    running = PricesRig(
        tmp_path, with_exchange=False, actor_class="actors.prices:ReplayPricesActor"
    )
    try:
        yield running
    finally:
        running.close()


def test_a_replay_actor_reads_no_feed_and_takes_told_quotes_latest_wins(replay_rig):
    ref = replay_rig.host.refs["prices"]
    marks = [
        PriceMark(pair="XBT/USD", bid=D("100"), ask=D("101"), ts_event=2_000),
        PriceMark(pair="XBT/USD", bid=D("90"), ask=D("91"), ts_event=1_000),  # older
        PriceMark(pair="ETH/USD", bid=D("10"), ask=D("11"), ts_event=1_500),
    ]
    for mark in marks:
        ref.tell(prices_updated(quote_from_price_mark(mark)))
    state = wait_for(lambda: len((s := replay_rig.state()).quotes) == 2 and s)
    assert [(q.pair, q.bid, q.received_ns) for q in state.quotes] == [
        ("ETH/USD", D(10), 1_500),
        ("XBT/USD", D(100), 2_000),
    ]
    assert state.polls_ok == 0 and state.polls_failed == 0 and state.last_success_ns is None
    replay_rig.listener.wait(
        lambda: {"XBT/USD", "ETH/USD"} <= {q.pair for q in replay_rig.listener.quotes()}
    )
    assert all(q.bid != D(90) for q in replay_rig.listener.quotes())


def test_a_bad_told_quote_is_refused_and_the_others_still_taken(replay_rig):
    ref = replay_rig.host.refs["prices"]
    bad = quote(pair="XBT/USD", bid=-1, ask=1, received_ns=5)
    ref.tell(prices_updated(bad, quote(pair="ETH/USD", bid="10", ask="11", received_ns=5)))
    state = wait_for(lambda: (s := replay_rig.state()).quotes and s)
    assert [q.pair for q in state.quotes] == ["ETH/USD"]
    assert ref.is_alive()


def test_no_pairs_with_a_feed_fails_the_start_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(EXCHANGE_URL_VARIABLE, raising=False)
    with pytest.raises(HostStartError, match=r"prices\.pairs"):
        PricesRig(tmp_path, with_exchange=False, prices={"pairs": []})
