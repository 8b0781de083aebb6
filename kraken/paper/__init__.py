"""A Kraken-compatible paper exchange: the same REST wire as Kraken, simulated markets.

``PaperExchangeServer`` serves ``/0/public/*`` and ``/0/private/*`` on loopback for krakenex,
with real signatures and nonces, simulated prices, order matching with partial fills and
fees, admin switches for faults and external events, and optional SQLite persistence.
"""

from kraken.paper.engine import ExchangeError, PaperExchange
from kraken.paper.server import PaperExchangeServer
from kraken.paper.settings import PaperSettings

__all__ = ["ExchangeError", "PaperExchange", "PaperExchangeServer", "PaperSettings"]
