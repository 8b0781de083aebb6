"""Kraken API credentials: where they come from, and how they stay out of every log line.

Keys come from the environment (``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``) or from a key
file in krakenex's format (first line the key, second line the base64 secret), never from
config.yaml. ``Credentials`` masks both values in ``repr`` and ``str``; errors name the
variable or the file that was wrong, never the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

__all__ = [
    "KEY_VARIABLE",
    "SECRET_VARIABLE",
    "Credentials",
    "CredentialsError",
    "load_credentials",
]

KEY_VARIABLE = "KRAKEN_API_KEY"
SECRET_VARIABLE = "KRAKEN_API_SECRET"


class CredentialsError(ValueError):
    """Credentials that are missing or malformed. ``source`` names the environment variable
    or the file (and line) at fault; the message never contains the value."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source


def _check_secret(secret: str, source: str) -> None:
    try:
        decoded = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise CredentialsError(source, "the API secret is not valid base64") from None
    if not decoded:
        raise CredentialsError(source, "the API secret decodes to nothing")


@dataclass(frozen=True, repr=False)
class Credentials:
    """An API key and its base64 secret. ``repr``/``str`` show neither, only ``fingerprint``
    (a short hash of the key) so two keys can be told apart in logs.

    Raises CredentialsError when the key is empty or the secret is not base64.
    """

    key: str
    secret: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.strip():
            raise CredentialsError("key", "the API key is empty")
        if not isinstance(self.secret, str) or not self.secret.strip():
            raise CredentialsError("secret", "the API secret is empty")
        _check_secret(self.secret, "secret")

    @property
    def fingerprint(self) -> str:
        """The first 12 hex digits of SHA-256 of the key: safe to log, stable per key."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Credentials(key=<masked {self.fingerprint}>, secret=<masked>)"

    __str__ = __repr__


def load_credentials(
    environ: Mapping[str, str] = os.environ, key_file: Path | None = None
) -> Credentials | None:
    """Credentials from ``key_file`` when one is given, else from ``KRAKEN_API_KEY`` and
    ``KRAKEN_API_SECRET`` in ``environ``; None when neither source holds any.

    An explicitly named key file wins over the environment because the caller chose it.
    Raises CredentialsError naming the variable or file when one half is missing, the file
    is unreadable or the secret is not base64. Warns when the key file is readable by
    other users.
    """
    if key_file is not None:
        return _from_key_file(Path(key_file))
    key = environ.get(KEY_VARIABLE, "").strip()
    secret = environ.get(SECRET_VARIABLE, "").strip()
    if not key and not secret:
        return None
    if not key:
        raise CredentialsError(KEY_VARIABLE, f"missing or empty while {SECRET_VARIABLE} is set")
    if not secret:
        raise CredentialsError(SECRET_VARIABLE, f"missing or empty while {KEY_VARIABLE} is set")
    _check_secret(secret, SECRET_VARIABLE)
    return Credentials(key, secret)


def require_credentials(
    environ: Mapping[str, str] = os.environ, key_file: Path | None = None
) -> Credentials:
    """`load_credentials`, but none found is an error too (CredentialsError saying where
    the service looks)."""
    credentials = load_credentials(environ, key_file)
    if credentials is None:
        raise CredentialsError(
            f"{KEY_VARIABLE} / {SECRET_VARIABLE}",
            "none found; set them or exchange.key_file",
        )
    return credentials


def _from_key_file(path: Path) -> Credentials:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(str(path), "key file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsError(str(path), f"key file unreadable ({type(error).__name__})") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("Kraken key file {} is readable by other users; chmod 600 it", path)
    lines = text.splitlines()
    key = lines[0].strip() if lines else ""
    secret = lines[1].strip() if len(lines) > 1 else ""
    if not key:
        raise CredentialsError(f"{path} line 1", "the API key is missing")
    if not secret:
        raise CredentialsError(f"{path} line 2", "the API secret is missing")
    _check_secret(secret, f"{path} line 2")
    return Credentials(key, secret)
