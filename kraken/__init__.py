"""The Kraken boundary: the client (``KrakenClient``), its typed errors and results, nonces,
credentials, name normalization (``kraken.names``) and the paper exchange (``kraken.paper``).
"""

from kraken.client import DEFAULT_RETRY, KrakenClient, RetryPolicy
from kraken.credentials import Credentials, CredentialsError, load_credentials
from kraken.nonce import NonceSource

__all__ = [
    "DEFAULT_RETRY",
    "Credentials",
    "CredentialsError",
    "KrakenClient",
    "NonceSource",
    "RetryPolicy",
    "load_credentials",
]
