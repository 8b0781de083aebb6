"""Each settings section checks its own values where it is defined; the loader names the key.

Built directly, a section refuses a bad value naming the setting within it (`interval_seconds`);
loaded from config.yaml, the same check names the whole dotted key (`prices.interval_seconds`).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from actors.core.drawdown import DrawdownError
from actors.runtime.settings import SupervisorSettings
from messages.errors import ConfigError, ServiceFieldError
from service.config import (
    DEFAULT_CONFIG_PATH,
    AccountingSettings,
    DrawdownSettingsConfig,
    ExecutionSettings,
    MetricsSettings,
    PricesSettings,
    ProcessSettings,
    ReconciliationSettings,
    RiskSettings,
    ServiceSettings,
    ViewSettings,
    build_config,
)

# (section class, its key in config.yaml, the setting, a bad value as YAML gives it)
BAD_VALUES = [
    (ServiceSettings, "service", "decimal_precision", 10),
    (SupervisorSettings, "supervisor", "ready_timeout_seconds", 0),
    (SupervisorSettings, "supervisor", "restart_window_seconds", -1),
    (AccountingSettings, "accounting", "cash_currencies", ["EUR"]),
    (RiskSettings, "risk", "max_daily_drawdown_pct", 0),
    (RiskSettings, "risk", "max_total_drawdown_pct", "-5"),
    (RiskSettings, "risk", "max_report_backlog_ms", 0),
    (PricesSettings, "prices", "interval_seconds", 0),
    (PricesSettings, "prices", "max_age_seconds", -1),
    (PricesSettings, "prices", "retry_max_seconds", 0),
    (ExecutionSettings, "execution", "poll_interval_seconds", 0),
    (ExecutionSettings, "execution", "order_interval_seconds", -2),
    (DrawdownSettingsConfig, "drawdown", "daily_reset_hour", 24),
    (DrawdownSettingsConfig, "drawdown", "weekly_reset_weekday", 7),
    (DrawdownSettingsConfig, "drawdown", "timezone", "Mars/Olympus_Mons"),
    (ReconciliationSettings, "reconciliation", "interval_seconds", 0),
    (ReconciliationSettings, "reconciliation", "confirm_runs", 0),
    (ReconciliationSettings, "reconciliation", "retry_max_seconds", 0),
    (ReconciliationSettings, "reconciliation", "default_threshold", "-1"),
    (ReconciliationSettings, "reconciliation", "value_threshold", "-0.5"),
    (ViewSettings, "view", "refresh_seconds", 0),
    (MetricsSettings, "metrics", "port", 70000),
    (MetricsSettings, "metrics", "host", "0.0.0.0"),
]


def _typed(cls: type, name: str, value: object) -> object:
    """The value as the loader hands it to the dataclass (Decimal, float, tuple)."""
    default = getattr(cls(), name)
    if isinstance(default, Decimal) or name.endswith("_pct"):
        return Decimal(str(value))
    if isinstance(default, float):
        return float(value)  # type: ignore[arg-type]
    if isinstance(default, tuple):
        return tuple(value)  # type: ignore[arg-type]
    return value


@pytest.mark.parametrize(("cls", "section", "name", "value"), BAD_VALUES)
def test_a_section_refuses_its_bad_value_naming_the_setting(cls, section, name, value):
    with pytest.raises(ServiceFieldError) as error:
        cls(**{name: _typed(cls, name, value)})
    assert error.value.field == name, str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(("cls", "section", "name", "value"), BAD_VALUES)
def test_the_loader_names_the_dotted_key_of_a_section_check(cls, section, name, value):
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw[section][name] = value
    with pytest.raises(ConfigError) as error:
        build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)
    assert error.value.key == f"{section}.{name}", str(error.value)
    assert str(error.value).startswith(f"{section}.{name}: ")


def test_the_drawdown_windows_are_checked_once_by_the_drawdown_logic():
    with pytest.raises(DrawdownError) as error:
        DrawdownSettingsConfig(daily_reset_hour=-1)
    assert error.value.field == "daily_reset_hour"


def test_a_threshold_names_its_asset():
    with pytest.raises(ConfigError) as error:
        ReconciliationSettings(thresholds={"XBT": Decimal("-1")})
    assert error.value.key == "thresholds.XBT"
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["reconciliation"]["thresholds"]["XBT"] = "-1"
    with pytest.raises(ConfigError) as error:
        build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)
    assert error.value.key == "reconciliation.thresholds.XBT"


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"actors": ()}, "actors"),
        ({"actors": ("journal",), "cpus": ()}, "cpus"),
        ({"actors": ("journal",), "cpus": (-1,)}, "cpus"),
        ({"actors": ("journal",), "cpus": (0, 0)}, "cpus"),
    ],
)
def test_a_process_refuses_its_bad_placement(values, name):
    with pytest.raises(ConfigError) as error:
        ProcessSettings(**values)
    assert error.value.key == name


def test_good_values_pass_every_section():
    for cls in {entry[0] for entry in BAD_VALUES}:
        assert cls() == cls()
    assert ProcessSettings(actors=("journal",), cpus=(0, 1)).cpus == (0, 1)
