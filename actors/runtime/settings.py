"""The settings the actor runtime takes from its caller, and what it reads of the config.

The runtime knows nothing of the service: the service's config (service/config.py) loads
these two sections from config.yaml and is passed in whole; the runtime reads of it only
what `ActorConfig` and `HostConfig` name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from messages.errors import require_positive


@dataclass(frozen=True, kw_only=True)
class TransportSettings:
    """ZeroMQ settings shared by every socket of the group."""

    max_frame_bytes: int = 1_048_576
    request_timeout_ms: int = 1000
    request_retries: int = 3
    reliable_resend_ms: int = 1000
    reliable_max_in_flight: int = 10_000
    high_water_mark: int = 100_000
    curve_secret_key_file: Path | None = None
    curve_public_keys_dir: Path | None = None


@dataclass(frozen=True, kw_only=True)
class SupervisorSettings:
    """How runner.py starts, watches and stops the process group."""

    ready_timeout_seconds: float = 30.0
    stop_timeout_seconds: float = 10.0
    restart_backoff_initial_seconds: float = 0.5
    restart_backoff_max_seconds: float = 10.0
    restart_backoff_reset_seconds: float = 60.0
    max_restarts: int = 5
    restart_window_seconds: float = 60.0

    def __post_init__(self) -> None:
        for key in (
            "ready_timeout_seconds",
            "stop_timeout_seconds",
            "restart_backoff_initial_seconds",
            "restart_backoff_max_seconds",
            "restart_backoff_reset_seconds",
            "restart_window_seconds",
        ):
            require_positive(key, getattr(self, key))


class ActorConfig(Protocol):
    """What an actor's sockets read of the config: the addresses and the transport."""

    @property
    def endpoints(self) -> Mapping[str, str]: ...

    @property
    def transport(self) -> TransportSettings: ...


class HostConfig(ActorConfig, Protocol):
    """What a process host reads of the config (on top of the actors' part)."""

    @property
    def processes(self) -> Mapping[str, Any]: ...  # .actors, .cpus per process

    @property
    def actor_classes(self) -> Mapping[str, str]: ...

    @property
    def service(self) -> Any: ...  # .log_level, .log_rotation_bytes, .log_retention_files

    @property
    def supervisor(self) -> SupervisorSettings: ...

    @property
    def run_dir(self) -> Path: ...

    def control_endpoint(self, process: str) -> str: ...
