"""Settings: TOML, then TVPAY_* environment, then command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvapp.config import ConfigError, load_config


def test_defaults_work_without_a_file(tmp_path: Path) -> None:
    config = load_config(None, {}, {})
    assert config.language == "zh_CN" and config.window_size == (1280, 720)


def test_environment_overrides_the_file_and_flags_override_both(tmp_path: Path) -> None:
    file = tmp_path / "tvapp.toml"
    file.write_text('[tvapp]\nlanguage = "en"\nwindow = "1920x1080"\nfullscreen = true\n')
    config = load_config(file, {"TVPAY_LANGUAGE": "zh_TW"}, {"window": "1280x720"})
    assert (config.language, config.window, config.fullscreen) == ("zh_TW", "1280x720", True)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tvapp]\nlanguage = "fr"\n', "unknown language"),
        ('[tvapp]\nwindow = "big"\n', "1920x1080"),
        ('[tvapp]\ncolour = "red"\n', "unknown settings"),
        ('[tvapp]\nfullscreen = "maybe"\n', "true or false"),
        ("[tvapp\n", "not valid TOML"),
        ('[tvapp]\nca_file = "/nonexistent.pem"\n', "does not exist"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    tmp_path: Path, toml: str, message: str
) -> None:
    file = tmp_path / "tvapp.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_config(file, {}, {})
