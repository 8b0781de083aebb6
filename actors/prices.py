"""The prices actor: the latest bid / ask / last per pair, read from Kraken's public Ticker.

`TickerFeed` is a plain thread that does all of the exchange I/O: every
`prices.interval_seconds` it reads one Ticker for every configured pair and hands the actor a
`TickersRead` (the quotes) or a `TickerFailed` (why not), with `tell`. A failing read is
retried after a doubling pause (from the interval up to `prices.retry_max_seconds`); the
first success returns it to the normal interval, so an outage of the feed heals by itself.

The actor keeps the latest quote per pair (`LatestQuotes`: latest wins, an older quote is
ignored) and publishes `PricesUpdated` on `prices.events` with the quotes whose prices
changed. A read that confirms unchanged prices refreshes the held quote's `received_ns`
without publishing; every `prices.max_age_seconds / 2` the actor republishes every quote it
holds, so a subscriber that joined late or lost a message catches up, and the ages it
computes stay honest (a quote's `received_ns` is when its price was last confirmed, and a
feed outage makes it grow). `GetPrices` on `prices.query` answers every quote and the feed's
health.

In replay there is no feed (`feed_enabled` False, see `ReplayPricesActor`): quotes are told
to the actor as `PricesUpdated` (from the file's `PriceMark`s, in event time) and go through
the same latest-wins and publish path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from loguru import logger

from actors.runtime.actor import Inbound, Publish, Serve, ServiceActor, SocketSpec, handles
from kraken.client import KrakenClient, RetryPolicy
from kraken.errors import KrakenError
from kraken.models import Ticker
from kraken.names import UnknownPairName
from messages import GetPrices, PriceMark, PriceQuote, PricesState, PricesUpdated
from messages.codec import CodecError, encode
from messages.errors import SetupError
from service.config import exchange_url

__all__ = [
    "LatestQuotes",
    "PricesActor",
    "ReplayPricesActor",
    "TickerFailed",
    "TickerFeed",
    "TickerSource",
    "TickersRead",
    "quote_from_price_mark",
    "quote_from_ticker",
    "retry_delay_seconds",
]

#: The longest wait for the feed thread to end when the actor stops.
_FEED_JOIN_MAX_SECONDS = 10.0


# ---------------------------------------------------------------------------- feed → actor


@dataclass(frozen=True, kw_only=True)
class TickersRead:
    """One successful Ticker read: a quote per pair, all stamped with the read time."""

    quotes: tuple[PriceQuote, ...]


@dataclass(frozen=True, kw_only=True)
class TickerFailed:
    """One failed Ticker read: the error's text and its class name (`kind`)."""

    error: str
    kind: str


class _RepublishDue:
    """Timer: send every held quote again."""


# ---------------------------------------------------------------------------- pure parts


def _positive_or_none(value: Decimal) -> Decimal | None:
    """A price the wire accepts (finite, > 0), else None: Kraken shows 0 for "no trade yet"."""
    return value if value.is_finite() and value > 0 else None


def quote_from_ticker(ticker: Ticker) -> PriceQuote:
    """The quote of one Ticker entry: its normalized symbol, bid / ask / last, read time.

    Kraken's REST ticker carries no exchange time, so `exchange_ns` is None and
    `received_ns` is when the answer arrived. A non-positive price becomes None.
    """
    return PriceQuote(
        pair=ticker.symbol,
        bid=_positive_or_none(ticker.bid),
        ask=_positive_or_none(ticker.ask),
        last=_positive_or_none(ticker.last),
        exchange_ns=None,
        received_ns=ticker.received_ns,
    )


def quote_from_price_mark(mark: PriceMark) -> PriceQuote:
    """The quote of a replayed `PriceMark`, in event time (`received_ns` = `ts_event`)."""
    return PriceQuote(
        pair=mark.pair,
        bid=mark.bid,
        ask=mark.ask,
        last=None,
        exchange_ns=mark.ts_event,
        received_ns=mark.ts_event,
    )


def retry_delay_seconds(interval_seconds: float, cap_seconds: float, failures: int) -> float:
    """The pause before the next read after `failures` failed reads in a row.

    `interval × 2^failures`, at most `max(cap, interval)`: the normal interval after a
    success (`failures` 0), doubling from it while reads fail.
    """
    if failures <= 0:
        return interval_seconds
    ceiling = max(cap_seconds, interval_seconds)
    # The exponent is bounded so a long outage cannot overflow the float.
    return min(ceiling, interval_seconds * 2 ** min(failures, 32))


def _same_prices(a: PriceQuote, b: PriceQuote) -> bool:
    return a.bid == b.bid and a.ask == b.ask and a.last == b.last


class LatestQuotes:
    """The latest quote per pair: latest wins, with change detection.

    A quote older (smaller `received_ns`) than the one held for its pair is ignored. A quote
    at least as new replaces it; it counts as changed when its bid, ask or last differ from
    the held one, or when the pair was not held yet. A newer quote with the same prices is a
    confirmation: it is kept (its age restarts) but is not a change.
    """

    def __init__(self) -> None:
        self._quotes: dict[str, PriceQuote] = {}

    def apply(self, quotes: Iterable[PriceQuote]) -> tuple[PriceQuote, ...]:
        """Take `quotes` in order; return the changed ones (the latest per pair, by pair)."""
        changed: dict[str, PriceQuote] = {}
        for quote in quotes:
            held = self._quotes.get(quote.pair)
            if held is not None and quote.received_ns < held.received_ns:
                continue
            self._quotes[quote.pair] = quote
            if held is None or not _same_prices(held, quote) or quote.pair in changed:
                changed[quote.pair] = quote
        return tuple(changed[pair] for pair in sorted(changed))

    def all(self) -> tuple[PriceQuote, ...]:
        """Every held quote, sorted by pair."""
        return tuple(self._quotes[pair] for pair in sorted(self._quotes))

    def get(self, pair: str) -> PriceQuote | None:
        """The held quote of `pair` (normalized symbol), if any."""
        return self._quotes.get(pair)

    def __len__(self) -> int:
        return len(self._quotes)


# ---------------------------------------------------------------------------- the thread


class TickerSource(Protocol):
    """What the feed reads from: `KrakenClient` (or a stand-in in tests)."""

    def ticker(self, pairs: Sequence[str]) -> Mapping[str, Ticker]:
        """The ticker of each pair, keyed by normalized symbol."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class _ReceiverGone(Exception):
    """The actor no longer takes messages: the feed ends."""


class TickerFeed:
    """Reads the Ticker of `pairs` from `source` in a thread of its own; see the module doc.

    `deliver` (the actor's `tell`) receives a `TickersRead` or a `TickerFailed` per read; if
    it raises (the actor is gone) the thread ends. An exchange error, a timeout or an unknown
    pair never ends the thread: it is logged and counted, and the next read waits longer. A
    pair name the exchange does not know is left out of later reads, so one bad name does
    not blind the feed to the others.
    """

    def __init__(
        self,
        source: TickerSource,
        pairs: Sequence[str],
        deliver: Callable[[object], None],
        *,
        interval_seconds: float,
        retry_max_seconds: float,
        name: str = "prices",
    ) -> None:
        self.pairs: list[str] = list(pairs)
        self.interval_seconds = interval_seconds
        self.retry_max_seconds = retry_max_seconds
        self.name = name
        self.reads_ok = 0
        self.reads_failed = 0
        self.consecutive_failures = 0
        self.next_delay_seconds = interval_seconds
        self._source = source
        self._deliver = deliver
        self._log = logger.bind(actor=name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control (any thread) --------------------------------------------------------------
    def start(self) -> None:
        """Start the thread; it reads at once."""
        if self._thread is not None:
            raise RuntimeError("the ticker feed is already started")
        self._thread = threading.Thread(
            target=self._run, name=f"{self.name}-ticker-feed", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_seconds: float) -> bool:
        """Stop the thread: wake it, wait at most `timeout_seconds`, close the source.

        True when the thread ended in time (a read still in flight ends with its HTTP
        timeout; the thread is a daemon and the source is then left to it). Idempotent.
        """
        self._stop.set()
        stopped = True
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            stopped = not self._thread.is_alive()
        if stopped:
            self._source.close()
        else:
            self._log.warning(
                "ticker feed thread still busy after {:.1f} s; leaving it (daemon)",
                timeout_seconds,
            )
        return stopped

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                pause = self.read_once()
                if self._stop.wait(pause):
                    break
        except _ReceiverGone:
            self._log.info("ticker feed: the actor is gone; stopping")
        finally:
            self._log.debug("ticker feed thread ended")

    def read_once(self) -> float:
        """One read, handed to the actor; returns the pause before the next read.

        Called by the thread (tests call it directly). Any failure is reported and counted;
        an unexpected one (a bug, an answer no parser foresaw) is logged with its traceback.
        """
        try:
            tickers = self._source.ticker(list(self.pairs))
            quotes = tuple(quote_from_ticker(tickers[pair]) for pair in sorted(tickers))
        except Exception as error:
            self._failed(error)
        else:
            if self.consecutive_failures:
                self._log.info("ticker read succeeded after {} failures", self.consecutive_failures)
            self.reads_ok += 1
            self.consecutive_failures = 0
            self._hand_over(TickersRead(quotes=quotes))
        self.next_delay_seconds = retry_delay_seconds(
            self.interval_seconds, self.retry_max_seconds, self.consecutive_failures
        )
        return self.next_delay_seconds

    def _failed(self, error: Exception) -> None:
        self.reads_failed += 1
        self.consecutive_failures += 1
        expected = isinstance(error, KrakenError | UnknownPairName)
        if isinstance(error, UnknownPairName) and error.name in self.pairs:
            self.pairs.remove(error.name)
            self._log.error("{}; left out of further ticker reads", error)
        delay = retry_delay_seconds(
            self.interval_seconds, self.retry_max_seconds, self.consecutive_failures
        )
        self._log.opt(exception=None if expected else error).warning(
            "ticker read failed ({} in a row): {}: {}; next try in {:.2f} s",
            self.consecutive_failures,
            type(error).__name__,
            error,
            delay,
        )
        self._hand_over(TickerFailed(error=str(error), kind=type(error).__name__))

    def _hand_over(self, result: object) -> None:
        try:
            self._deliver(result)
        except Exception as exc:
            raise _ReceiverGone from exc


# ---------------------------------------------------------------------------- the actor


class PricesActor(ServiceActor):
    """Latest quotes per pair: fed by `TickerFeed`, published on `prices.events`, served on
    `prices.query`. See the module docstring.

    `clock` (integer nanoseconds) stamps reads and health; it is the Kraken client's clock
    too, so a quote's `received_ns` comes from it. `feed_enabled` False starts no feed
    (replay: quotes are told to the actor as `PricesUpdated`).
    """

    feed_enabled: ClassVar[bool] = True

    def __init__(self, *, clock: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock: Callable[[], int] = clock or time.time_ns
        self.republish_seconds = self.config.prices.max_age_seconds / 2
        self.quotes = LatestQuotes()
        self.feed: TickerFeed | None = None
        self.polls_ok = 0
        self.polls_failed = 0
        self.consecutive_failures = 0
        self.last_success_ns: int | None = None
        self.last_error = ""
        self.quotes_refused = 0

    def sockets(self) -> Iterable[SocketSpec]:
        return (Publish("prices.events"), Serve("prices.query"))

    def started(self) -> None:
        # PricesSettings checks its own values; the pairs are needed only when there is a
        # feed (a replay has none), so they are checked here, in the actor's thread, and the
        # host reports an empty list as this actor's failure to start.
        settings = self.config.prices
        if self.feed_enabled and not settings.pairs:
            raise SetupError("prices.pairs", "at least one pair is needed")
        self.schedule(self.republish_seconds, _RepublishDue())
        if not self.feed_enabled:
            self.log.info("no ticker feed: quotes come as PricesUpdated (replay)")
            return
        exchange = self.config.exchange
        url = exchange_url(self.config)
        try:
            # Public Ticker: no key. One attempt per read: the feed's own backoff retries,
            # and every failure shows in the health counters.
            client = KrakenClient(
                url,
                None,
                timeout_seconds=exchange.timeout_seconds,
                retry=RetryPolicy(max_attempts=1),
                clock_ns=self.clock,
            )
            self.feed = TickerFeed(
                client,
                settings.pairs,
                self.actor_ref.tell,
                interval_seconds=settings.interval_seconds,
                retry_max_seconds=settings.retry_max_seconds,
                name=self.name,
            )
        except ValueError as exc:
            raise SetupError("exchange", str(exc)) from None
        self.log.info(
            "reading the {} exchange's Ticker at {} every {} s for {}",
            exchange.mode,
            url,
            settings.interval_seconds,
            ", ".join(settings.pairs),
        )
        self.feed.start()

    def stopping(self) -> None:
        feed = self.feed
        if feed is not None:
            feed.stop(min(self.config.exchange.timeout_seconds + 1.0, _FEED_JOIN_MAX_SECONDS))

    # -- what the feed read ----------------------------------------------------------------
    @handles(TickersRead)
    def on_tickers_read(self, read: TickersRead, inbound: Inbound | None) -> None:
        """A successful read: health back to good, the changed quotes published."""
        self.polls_ok += 1
        self.consecutive_failures = 0
        self.last_success_ns = max(
            (quote.received_ns for quote in read.quotes), default=self.clock()
        )
        self._take(read.quotes)

    @handles(TickerFailed)
    def on_ticker_failed(self, failure: TickerFailed, inbound: Inbound | None) -> None:
        """A failed read: counted; the held quotes keep their times, so their ages grow."""
        self.polls_failed += 1
        self.consecutive_failures += 1
        self.last_error = f"{failure.kind}: {failure.error}"

    @handles(PricesUpdated)
    def on_prices_injected(self, update: PricesUpdated, inbound: Inbound | None) -> None:
        """Quotes told by the replay (internal only: never taken from a socket)."""
        self._take(update.quotes)

    def _take(self, quotes: Iterable[PriceQuote]) -> None:
        valid = [quote for quote in quotes if self._acceptable(quote)]
        changed = self.quotes.apply(valid)
        if changed:
            self.publish("prices.events", PricesUpdated(quotes=changed))

    def _acceptable(self, quote: PriceQuote) -> bool:
        """A quote the wire accepts (the codec checks every field); else refused and counted,
        so one bad quote never stops the others from being published."""
        try:
            encode(quote)
        except CodecError as exc:
            self.quotes_refused += 1
            self.log.warning("refused a quote for {!r}: {}", getattr(quote, "pair", "?"), exc)
            return False
        return True

    @handles(_RepublishDue)
    def on_republish_due(self, due: _RepublishDue, inbound: Inbound | None) -> None:
        """Every held quote again, for late joiners and lost messages."""
        self.schedule(self.republish_seconds, _RepublishDue())
        if len(self.quotes):
            self.publish("prices.events", PricesUpdated(quotes=self.quotes.all()))

    # -- queries ---------------------------------------------------------------------------
    @handles(GetPrices, on="prices.query")
    def on_get_prices(self, request: GetPrices, inbound: Inbound | None) -> PricesState:
        """Every latest quote (by pair) and the feed's health."""
        return PricesState(
            correlation_id=request.correlation_id,
            quotes=self.quotes.all(),
            polls_ok=self.polls_ok,
            polls_failed=self.polls_failed,
            consecutive_failures=self.consecutive_failures,
            last_success_ns=self.last_success_ns,
            last_error=self.last_error,
        )


class ReplayPricesActor(PricesActor):
    """The prices actor of a replay: no feed; quotes arrive as told `PricesUpdated`."""

    feed_enabled: ClassVar[bool] = False
