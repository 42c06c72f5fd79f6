"""Settings: files, then environment, then flags; the staff token never from a plain flag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dongle.staff.config import load_config
from dongle.staff.errors import ConfigError, UsageError


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "staff.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config_file = _toml(
        tmp_path,
        '[gateway]\nurl = "https://file:1"\ntimeout = 3\n[daemon]\nsocket = "/file.sock"\n'
        '[attestation]\nmanufacturer_ca = ["/a.pem", "/b.pem"]\n[provision]\njobs = 4\n',
    )
    env = {"TVPAY_GATEWAY_URL": "https://env:2", "TVPAY_DONGLED_SOCKET": "/env.sock"}
    config = load_config(config_file, env=env, flags={"socket_path": "/flag.sock"})
    assert config.gateway_url == "https://env:2"
    assert config.socket_path == "/flag.sock"
    assert config.gateway_timeout == 3.0
    assert config.manufacturer_cas == ("/a.pem", "/b.pem")
    assert config.jobs == 4


def test_manufacturer_cas_from_environment_are_path_separated() -> None:
    env = {"TVPAY_MANUFACTURER_CA": os.pathsep.join(["/x.pem", "/y.pem"])}
    assert load_config(None, env=env).manufacturer_cas == ("/x.pem", "/y.pem")


def test_unknown_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    config_file = _toml(tmp_path, '[gateway]\ntoken = "tvps_secret"\n')
    with pytest.raises(ConfigError, match=r"unknown setting \[gateway\] token"):
        load_config(config_file, env={})


def test_malformed_toml_is_a_usage_error(tmp_path: Path) -> None:
    config_file = _toml(tmp_path, "[gateway\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(config_file, env={})


def test_token_comes_from_the_environment_first(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tvps_from_file\n")
    token_file.chmod(0o600)
    config = load_config(
        None, env={"TVPAY_STAFF_TOKEN": "tvps_from_env"}, flags={"token_file": str(token_file)}
    )
    assert config.staff_token() == "tvps_from_env"


def test_token_file_is_read_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tvps_from_file\n")
    token_file.chmod(0o600)
    assert load_config(None, env={}, flags={"token_file": str(token_file)}).staff_token() == (
        "tvps_from_file"
    )


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tvps_x\n")
    token_file.chmod(0o644)
    config = load_config(None, env={}, flags={"token_file": str(token_file)})
    with pytest.raises(ConfigError, match="chmod 600"):
        config.staff_token()


def test_missing_token_says_where_to_put_it() -> None:
    with pytest.raises(ConfigError, match="TVPAY_STAFF_TOKEN"):
        load_config(None, env={}).staff_token()


def test_account_format_is_checked() -> None:
    config = load_config(None, env={})
    assert config.check_account(" 3300123456 ") == "3300123456"
    with pytest.raises(ConfigError, match="not a household number"):
        config.check_account("33-00")
