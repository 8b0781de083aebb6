"""The service's configuration: every setting of config.yaml, typed, with its default.

`load_config(path)` reads the YAML file, refuses unknown keys and wrong types (naming the
dotted key) and resolves `{run_dir}` in endpoint addresses and relative paths against the
config file's folder. Each section checks its own values where it is defined (its
`__post_init__`, raising `ConfigError` with the setting's name; the loader prefixes the
section's key), and `ServiceConfig` checks what spans sections: every actor placed once,
every endpoint a valid address, a non-loopback TCP endpoint only with CURVE keys.
"""

from __future__ import annotations

import decimal
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml

from actors.core.drawdown import DrawdownSettings
from actors.runtime.settings import SupervisorSettings, TransportSettings
from actors.runtime.settings_loader import load_settings
from kraken.paper.settings import PaperSettings, is_loopback_host
from messages.errors import ConfigError, require, require_positive

__all__ = ["ConfigError", "ServiceConfig", "load_config"]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Process-wide settings: where runtime files go, logging, decimal precision."""

    run_dir: Path = Path("run")
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR"] = "INFO"
    log_rotation_bytes: int = 10_000_000
    log_retention_files: int = 5
    decimal_precision: int = 34

    def __post_init__(self) -> None:
        require(self.decimal_precision >= 18, "decimal_precision", "must be at least 18 digits")


@dataclass(frozen=True, kw_only=True)
class ProcessSettings:
    """One process of the group and the actors it hosts, started in this order.

    `cpus`, when given, are the only CPUs the process (every thread of it, ZeroMQ's I/O
    thread included) runs on (Linux); None leaves it to the scheduler.
    """

    actors: tuple[str, ...]
    cpus: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        require(bool(self.actors), "actors", "a process needs at least one actor")
        cpus = self.cpus
        if cpus is None:
            return
        require(bool(cpus), "cpus", "name at least one CPU, or leave the setting out")
        require(all(cpu >= 0 for cpu in cpus), "cpus", f"CPU numbers start at 0, got {min(cpus)}")
        require(len(set(cpus)) == len(cpus), "cpus", f"a CPU is named twice: {list(cpus)}")


@dataclass(frozen=True, kw_only=True)
class ExchangeSettings:
    """Which exchange the service talks to, and how."""

    mode: Literal["paper", "live"] = "paper"
    url: str = "https://api.kraken.com"
    timeout_seconds: float = 10.0
    key_file: Path | None = None
    paper: PaperSettings = field(default_factory=PaperSettings)


@dataclass(frozen=True, kw_only=True)
class AccountingSettings:
    """Valuation currency and which currencies are cash (every other asset is a position)."""

    valuation_currency: str = "USD"
    cash_currencies: tuple[str, ...] = ("USD",)

    def __post_init__(self) -> None:
        require(
            self.valuation_currency in self.cash_currencies,
            "cash_currencies",
            f"must include the valuation currency {self.valuation_currency!r}",
        )


@dataclass(frozen=True, kw_only=True)
class JournalSettings:
    """The event log: where it is stored and how it commits."""

    database: Path = Path("{run_dir}/journal.sqlite")
    synchronous: Literal["NORMAL", "FULL"] = "FULL"
    max_batch: int = 512
    replay_max_events: int = 1000


@dataclass(frozen=True, kw_only=True)
class ExecutionSettings:
    """The execution actor: how it follows the exchange and what it may place."""

    poll_interval_seconds: float = 0.5
    state_file: Path = Path("{run_dir}/state/execution.json")
    demo_orders: bool = True
    allow_live_orders: bool = False
    order_interval_seconds: float = 2.0
    order_pairs: tuple[str, ...] = ("XBT/USD", "ETH/USD", "SOL/USD")
    order_value: Decimal = Decimal("500")
    seed: int = 11

    def __post_init__(self) -> None:
        for key in ("poll_interval_seconds", "order_interval_seconds"):
            require_positive(key, getattr(self, key))


@dataclass(frozen=True, kw_only=True)
class RiskSettings:
    """The risk actor: how it follows the portfolio and the limits it enforces."""

    poll_interval_ms: int = 200
    max_state_age_ms: int = 2000
    max_position_exposure: Decimal = Decimal("50000")
    max_total_exposure: Decimal = Decimal("150000")
    max_total_drawdown_pct: Decimal | None = Decimal("20")
    max_daily_drawdown_pct: Decimal | None = Decimal("5")
    max_weekly_drawdown_pct: Decimal | None = Decimal("10")
    deny_on_stale_prices: bool = True
    max_reconciliation_age_seconds: float | None = 180.0
    deny_on_discrepancy: bool = True
    max_report_backlog_ms: int = 2000

    def __post_init__(self) -> None:
        for key in ("max_total_drawdown_pct", "max_daily_drawdown_pct", "max_weekly_drawdown_pct"):
            limit = getattr(self, key)
            require(
                limit is None or (limit.is_finite() and limit > 0),
                key,
                f"must be a percentage > 0 or null, got {limit}",
            )
        require_positive("max_report_backlog_ms", self.max_report_backlog_ms)


@dataclass(frozen=True, kw_only=True)
class PricesSettings:
    """The prices actor: which pairs it reads, how often, and how prices value holdings."""

    interval_seconds: float = 1.0
    pairs: tuple[str, ...] = ("XBT/USD", "ETH/USD", "SOL/USD", "USDT/USD", "XDG/USD", "ETH/XBT")
    max_age_seconds: float = 10.0
    bridges: tuple[str, ...] = ("USD", "XBT", "USDT")
    mode: Literal["bid_ask", "mid", "last"] = "bid_ask"
    retry_max_seconds: float = 30.0

    def __post_init__(self) -> None:
        for key in ("interval_seconds", "max_age_seconds", "retry_max_seconds"):
            require_positive(key, getattr(self, key))


@dataclass(frozen=True, kw_only=True)
class DrawdownSettingsConfig:
    """The drawdown actor: window resets, how often it marks equity, where it keeps state."""

    daily_reset_hour: int = 0
    timezone: str = "UTC"
    weekly_reset_weekday: int = 0
    mark_interval_seconds: float = 1.0
    database: Path = Path("{run_dir}/state/drawdown.sqlite")

    def __post_init__(self) -> None:
        # The window settings are checked where the drawdown logic defines them: a
        # DrawdownError names the setting (`daily_reset_hour`).
        DrawdownSettings(
            daily_reset_hour=self.daily_reset_hour,
            timezone=self.timezone,
            weekly_reset_weekday=self.weekly_reset_weekday,
        )


@dataclass(frozen=True, kw_only=True)
class ReconciliationSettings:
    """The reconciliation actor: how often it compares, how far apart is too far, and
    whether it corrects the books."""

    interval_seconds: float = 30.0
    auto_update: bool = False
    default_threshold: Decimal = Decimal("0.00000001")
    thresholds: Mapping[str, Decimal] = field(default_factory=lambda: {"USD": Decimal("0.01")})
    value_threshold: Decimal = Decimal("1")
    confirm_runs: int = 2
    fill_grace_seconds: float = 60.0
    retry_max_seconds: float = 300.0
    state_file: Path = Path("{run_dir}/state/reconciliation.json")

    def __post_init__(self) -> None:
        for key in ("interval_seconds", "retry_max_seconds"):
            require_positive(key, getattr(self, key))
        require(self.confirm_runs >= 1, "confirm_runs", "must be at least 1")
        for key in ("default_threshold", "value_threshold"):
            value = getattr(self, key)
            require(value.is_finite() and value >= 0, key, "must be a decimal >= 0")
        for asset, threshold in self.thresholds.items():
            require(
                threshold.is_finite() and threshold >= 0,
                f"thresholds.{asset}",
                "must be a decimal >= 0",
            )


@dataclass(frozen=True, kw_only=True)
class ViewSettings:
    """The runner's live terminal view."""

    enabled: bool = True
    refresh_seconds: float = 0.5

    def __post_init__(self) -> None:
        require_positive("refresh_seconds", self.refresh_seconds)


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    """The Prometheus endpoint the runner serves."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464

    def __post_init__(self) -> None:
        require(0 <= self.port <= 65535, "port", "must be 0..65535")
        require(
            is_loopback_host(self.host),
            "host",
            f"{self.host!r} is not a loopback address (127.0.0.0/8, ::1, localhost); "
            "the metrics page has no authentication",
        )


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """The whole of config.yaml."""

    service: ServiceSettings = field(default_factory=ServiceSettings)
    transport: TransportSettings = field(default_factory=TransportSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    processes: Mapping[str, ProcessSettings]
    endpoints: Mapping[str, str]
    actor_classes: Mapping[str, str] = field(default_factory=dict)
    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    accounting: AccountingSettings = field(default_factory=AccountingSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    prices: PricesSettings = field(default_factory=PricesSettings)
    drawdown: DrawdownSettingsConfig = field(default_factory=DrawdownSettingsConfig)
    reconciliation: ReconciliationSettings = field(default_factory=ReconciliationSettings)
    view: ViewSettings = field(default_factory=ViewSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    source: Path | None = None

    def __post_init__(self) -> None:
        # What spans sections: the placement of the actors, the endpoints and their transport.
        require(bool(self.processes), "processes", "at least one process is needed")
        seen: dict[str, str] = {}
        for process, settings in self.processes.items():
            for actor in settings.actors:
                require(
                    actor not in seen,
                    f"processes.{process}.actors",
                    f"actor {actor!r} is already placed in process {seen.get(actor)!r}",
                )
                seen[actor] = process
        for name, address in self.endpoints.items():
            _check_endpoint(name, address, self.transport)

    @property
    def run_dir(self) -> Path:
        """The absolute run directory (logs, sockets, state)."""
        return self.service.run_dir

    def process_of(self, actor: str) -> str:
        """The process that hosts `actor`."""
        for name, process in self.processes.items():
            if actor in process.actors:
                return name
        raise KeyError(actor)

    def control_endpoint(self, process: str) -> str:
        """The ipc endpoint on which a process answers health and stop requests."""
        return f"ipc://{self.run_dir / 'control' / (process + '.sock')}"


def _check_endpoint(name: str, address: str, transport: TransportSettings) -> None:
    scheme = address.split("://", 1)[0] if "://" in address else ""
    if scheme not in ("ipc", "tcp", "inproc"):
        raise ConfigError(
            f"endpoints.{name}",
            f"expected an ipc://, tcp:// or inproc:// address, got {address!r}",
        )
    if scheme == "tcp":
        parts = urlsplit(address)
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None or not parts.hostname:
            raise ConfigError(f"endpoints.{name}", f"tcp address needs host:port, got {address!r}")
        if not is_loopback_host(parts.hostname) and transport.curve_secret_key_file is None:
            raise ConfigError(
                f"endpoints.{name}",
                f"{address} is not loopback: set transport.curve_secret_key_file and "
                "transport.curve_public_keys_dir (CURVE) to expose it",
            )


def build_config(raw: Mapping, *, base_dir: Path, source: Path | None = None) -> ServiceConfig:
    """Validate a parsed config mapping and resolve its paths against `base_dir`."""
    if not isinstance(raw, Mapping):
        raise ConfigError("", "the config file must be a mapping of sections")
    config = load_settings(ServiceConfig, {k: v for k, v in raw.items() if k != "source"})
    if "source" in raw:
        raise ConfigError("source", "unknown setting")
    run_dir = config.service.run_dir
    if not run_dir.is_absolute():
        run_dir = (base_dir / run_dir).resolve()
    service = replace(config.service, run_dir=run_dir)

    def resolve(path: Path | None) -> Path | None:
        if path is None:
            return None
        text = str(path).replace("{run_dir}", str(run_dir))
        resolved = Path(text)
        return resolved if resolved.is_absolute() else (base_dir / resolved).resolve()

    transport = replace(
        config.transport,
        curve_secret_key_file=resolve(config.transport.curve_secret_key_file),
        curve_public_keys_dir=resolve(config.transport.curve_public_keys_dir),
    )
    paper = replace(config.exchange.paper, state_file=resolve(config.exchange.paper.state_file))
    exchange = replace(config.exchange, key_file=resolve(config.exchange.key_file), paper=paper)
    journal = replace(config.journal, database=resolve(config.journal.database))
    execution = replace(config.execution, state_file=resolve(config.execution.state_file))
    drawdown = replace(config.drawdown, database=resolve(config.drawdown.database))
    reconciliation = replace(
        config.reconciliation, state_file=resolve(config.reconciliation.state_file)
    )
    endpoints = {
        name: address.replace("{run_dir}", str(run_dir))
        for name, address in config.endpoints.items()
    }
    return replace(
        config,
        service=service,
        transport=transport,
        exchange=exchange,
        journal=journal,
        execution=execution,
        drawdown=drawdown,
        reconciliation=reconciliation,
        endpoints=endpoints,
        source=source,
    )


def load_config(path: Path | str | None = None) -> ServiceConfig:
    """Read and validate config.yaml (or `path`); raise ConfigError naming the bad key."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {config_path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{config_path} is not valid YAML: {exc}") from None
    return build_config(raw or {}, base_dir=config_path.resolve().parent, source=config_path)


EXCHANGE_URL_VARIABLE = "PORTFOLIO_EXCHANGE_URL"
"""Set by runner.py for its children: the exchange every actor talks to (the paper exchange's
URL on paper, `exchange.url` live)."""


def exchange_url(config: ServiceConfig) -> str:
    """The exchange's URL: the one runner.py handed down, else `exchange.url`."""
    return os.environ.get(EXCHANGE_URL_VARIABLE) or config.exchange.url


def decimal_context(config: ServiceConfig) -> decimal.Context:
    """The local decimal context every money computation of the service uses."""
    return decimal.Context(prec=config.service.decimal_precision, rounding=decimal.ROUND_HALF_EVEN)
