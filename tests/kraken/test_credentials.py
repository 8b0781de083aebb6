"""Credentials: loading from the environment or a key file, masking, clear errors."""

from __future__ import annotations

import base64
import os

import pytest

from kraken.credentials import Credentials, CredentialsError, load_credentials

KEY = "K" * 20 + "visible-key-text"
SECRET = base64.b64encode(b"very secret bytes 0123456789").decode()


def test_repr_and_str_mask_key_and_secret():
    credentials = Credentials(KEY, SECRET)
    for text in (repr(credentials), str(credentials), f"{credentials}", f"{[credentials]}"):
        assert KEY not in text and "visible-key-text" not in text
        assert SECRET not in text
        assert credentials.fingerprint in text


def test_fingerprint_tells_keys_apart():
    assert Credentials(KEY, SECRET).fingerprint != Credentials(KEY + "x", SECRET).fingerprint


def test_from_environment():
    loaded = load_credentials({"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": SECRET})
    assert loaded == Credentials(KEY, SECRET)


def test_nothing_configured_is_none():
    assert load_credentials({}) is None
    assert load_credentials({"KRAKEN_API_KEY": "", "KRAKEN_API_SECRET": " "}) is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KRAKEN_API_KEY": KEY}, "KRAKEN_API_SECRET"),
        ({"KRAKEN_API_SECRET": SECRET}, "KRAKEN_API_KEY"),
        ({"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": "not*base64!"}, "KRAKEN_API_SECRET"),
    ],
)
def test_bad_environment_names_the_variable_not_the_value(environ, named):
    with pytest.raises(CredentialsError) as raised:
        load_credentials(environ)
    assert raised.value.source == named
    assert str(raised.value).startswith(named)
    for value in environ.values():
        assert value not in str(raised.value)
    assert raised.value.__cause__ is None


def test_from_key_file(tmp_path):
    path = tmp_path / "kraken.key"
    path.write_text(f"{KEY}\n{SECRET}\n")
    path.chmod(0o600)
    assert load_credentials({}, key_file=path) == Credentials(KEY, SECRET)


def test_explicit_key_file_wins_over_environment(tmp_path):
    path = tmp_path / "kraken.key"
    path.write_text(f"{KEY}\n{SECRET}\n")
    path.chmod(0o600)
    other = base64.b64encode(b"other").decode()
    loaded = load_credentials({"KRAKEN_API_KEY": "env", "KRAKEN_API_SECRET": other}, path)
    assert loaded is not None and loaded.key == KEY


def test_key_file_problems_name_the_file_and_line(tmp_path):
    missing = tmp_path / "absent.key"
    with pytest.raises(CredentialsError, match=r"absent\.key: key file not found"):
        load_credentials({}, key_file=missing)
    one_line = tmp_path / "one.key"
    one_line.write_text(f"{KEY}\n")
    with pytest.raises(CredentialsError, match=r"one\.key line 2"):
        load_credentials({}, key_file=one_line)
    malformed = tmp_path / "bad.key"
    malformed.write_text(f"{KEY}\nsecret-not-base64!!\n")
    with pytest.raises(CredentialsError) as raised:
        load_credentials({}, key_file=malformed)
    assert "bad.key line 2" in str(raised.value)
    assert "secret-not-base64" not in str(raised.value)


def test_world_readable_key_file_is_warned_about(tmp_path, captured_logs):
    path = tmp_path / "open.key"
    path.write_text(f"{KEY}\n{SECRET}\n")
    os.chmod(path, 0o644)
    load_credentials({}, key_file=path)
    warnings = [line for line in captured_logs if "readable by other users" in line]
    assert warnings
    assert all(SECRET not in line and KEY not in line for line in captured_logs)


def test_direct_construction_validates():
    with pytest.raises(CredentialsError, match="key"):
        Credentials("", SECRET)
    with pytest.raises(CredentialsError) as raised:
        Credentials(KEY, "%%%")
    assert "%%%" not in str(raised.value)
