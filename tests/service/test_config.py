"""config.yaml and its loader: every setting present and commented, bad ones named."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from kraken.paper.settings import is_loopback_host
from service.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    ServiceConfig,
    build_config,
    load_config,
)

FREE_FORM_SECTIONS = {"processes", "endpoints", "actor_classes", "pairs", "starting_balances"}


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def _schema_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for field in dataclasses.fields(cls):
        if field.name == "source":
            continue
        path = f"{prefix}{field.name}"
        keys.append(path)
        default = field.default_factory() if callable(field.default_factory) else field.default
        if dataclasses.is_dataclass(default) and field.name not in FREE_FORM_SECTIONS:
            keys.extend(_schema_keys(type(default), path + "."))
    return keys


def test_the_shipped_config_loads():
    config = load_config()
    assert config.exchange.mode == "paper"
    assert config.run_dir.is_absolute()
    assert "{run_dir}" not in "".join(config.endpoints.values())


def test_the_shipped_config_lists_every_setting():
    raw = _raw()
    for key in _schema_keys(ServiceConfig):
        node = raw
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"config.yaml lacks {key}"
            node = node[part]


def test_every_setting_line_of_the_shipped_config_has_a_comment():
    text = DEFAULT_CONFIG_PATH.read_text().splitlines()
    uncommented = []
    for number, line in enumerate(text, 1):
        match = re.match(r"^(\s*)([A-Za-z_./]+):\s*(\S.*)?$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        value = (match.group(3) or "").strip()
        if value == "" or value.startswith("#"):
            continue  # a section header
        if "#" not in value:
            uncommented.append(f"{number}: {line.strip()}")
    assert not uncommented, "settings without a comment:\n" + "\n".join(uncommented)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["service"].update(log_levle="INFO"), "service.log_levle"),
        (lambda c: c["supervisor"].update(max_restarts="five"), "supervisor.max_restarts"),
        (lambda c: c["transport"].update(max_frame_bytes=True), "transport.max_frame_bytes"),
        (lambda c: c["exchange"].update(mode="demo"), "exchange.mode"),
        (lambda c: c["exchange"]["paper"].update(port=70000), "exchange.paper"),
        (lambda c: c["exchange"]["paper"].update(max_connections=0), "exchange.paper"),
        (lambda c: c["exchange"]["paper"].update(idle_timeout_seconds=0), "exchange.paper"),
        (
            lambda c: c["exchange"]["paper"]["pairs"].update({"SOL/USD": "cheap"}),
            "exchange.paper.pairs.SOL/USD",
        ),
        (lambda c: c.pop("processes"), "processes"),
        (lambda c: c["processes"]["books"].update(cpus=[]), "processes.books.cpus"),
        (lambda c: c["processes"]["books"].update(cpus=[-1]), "processes.books.cpus"),
        (lambda c: c["processes"]["books"].update(cpus=[0, 0]), "processes.books.cpus"),
        (lambda c: c["processes"]["books"].update(cpus=["all"]), "processes.books.cpus"),
        (lambda c: c["processes"]["books"].update(cpu=[0]), "processes.books.cpu"),
        (lambda c: c.update(extra_section={}), "extra_section"),
        (
            lambda c: c["endpoints"].update({"portfolio.query": "http://x"}),
            "endpoints.portfolio.query",
        ),
        (lambda c: c["accounting"].update(cash_currencies=["EUR"]), "accounting.cash_currencies"),
        (lambda c: c["metrics"].update(host="::"), "metrics.host"),
        (lambda c: c["metrics"].update(host=""), "metrics.host"),
        (lambda c: c["metrics"].update(host="0.0.0.0"), "metrics.host"),
        (lambda c: c["metrics"].update(host="example.com"), "metrics.host"),
        (lambda c: c["metrics"].update(host="::", enabled=False), "metrics.host"),
        (lambda c: c["exchange"]["paper"].update(host="::"), "exchange.paper"),
        (lambda c: c["exchange"]["paper"].update(host=""), "exchange.paper"),
        (
            lambda c: c["endpoints"].update({"portfolio.query": "tcp://:7001"}),
            "endpoints.portfolio.query",
        ),
        (
            lambda c: c["supervisor"].update(restart_backoff_reset_seconds=0),
            "supervisor.restart_backoff_reset_seconds",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_its_key(change, named):
    raw = _raw()
    change(raw)
    with pytest.raises(ConfigError) as error:
        build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)
    assert error.value.key == named, str(error.value)
    assert named in str(error.value)


def test_a_tcp_endpoint_beyond_loopback_needs_curve_keys():
    raw = _raw()
    raw["endpoints"]["portfolio.query"] = "tcp://0.0.0.0:7001"
    with pytest.raises(ConfigError, match="curve"):
        build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)
    raw["endpoints"]["portfolio.query"] = "tcp://127.0.0.1:7001"
    assert build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_a_loopback_metrics_host_is_accepted(host):
    raw = _raw()
    raw["metrics"]["host"] = host
    assert build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent).metrics.host == host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.3", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("", False),
        ("::", False),
        ("0.0.0.0", False),
        ("[::1]", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("*", False),
    ],
)
def test_the_one_loopback_check(host, loopback):
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize("host", ["[::]", "0.0.0.0", "10.1.2.3"])
def test_a_tcp_endpoint_on_every_interface_needs_curve_keys(host):
    raw = _raw()
    raw["endpoints"]["portfolio.query"] = f"tcp://{host}:7001"
    with pytest.raises(ConfigError, match="curve") as error:
        build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)
    assert error.value.key == "endpoints.portfolio.query"
    raw["endpoints"]["portfolio.query"] = "tcp://[::1]:7001"
    assert build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)


def test_an_actor_placed_twice_is_refused():
    raw = _raw()
    raw["processes"]["other"] = {"actors": ["portfolio"]}
    with pytest.raises(ConfigError, match="already placed"):
        build_config(raw, base_dir=DEFAULT_CONFIG_PATH.parent)


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path):
    raw = _raw()
    config = build_config(raw, base_dir=tmp_path)
    assert config.run_dir == (tmp_path / "run").resolve()
    assert config.exchange.paper.state_file == config.run_dir / "paper-exchange.sqlite"
    assert config.endpoints["portfolio.query"] == f"ipc://{config.run_dir}/portfolio-query.sock"


def test_a_missing_or_garbage_file_is_one_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("service: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(garbage)
