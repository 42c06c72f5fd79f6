"""``tvpay-tv``: the TV app on the set-top box (or on a PC, with the emulator)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

from protocol import logfmt
from tvapp.config import (
    ConfigError,
    StateDirError,
    TvConfig,
    add_arguments,
    ensure_state_dir,
    load_config,
    overrides_from_args,
)
from tvapp.fonts import FontNotFound

if TYPE_CHECKING:  # imported for real only after Kivy is configured
    from tvapp.services.container import Services

log = logging.getLogger("tvapp")

# Exit statuses (docs/tvapp.md, Settings). All start-up failures happen before Kivy opens a window.
EXIT_FAILED = 1  # the CJK font is missing
# A damaged payment journal does not stop the app: it is replaced at start and the household
# is told on screen (tvapp/journal_startup.py).
EXIT_CONFIG = 2  # a setting is malformed (as argparse reports a bad flag)
EXIT_CANTCREAT = 73  # sysexits EX_CANTCREAT: the state directory cannot be created or written


def _saved_language(state_dir: str) -> str | None:
    try:
        with open(os.path.join(state_dir, "preferences.json"), encoding="utf-8") as fh:
            value = json.load(fh).get("language")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def start_up(argv: list[str] | None = None) -> tuple[TvConfig, Services] | int:
    """Everything before the window opens: settings, Kivy, fonts, services and the payment
    journal's start-up check; the exit status instead when the app cannot start."""
    parser = argparse.ArgumentParser(prog="tvpay-tv", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logfmt.configure()
    try:
        config = load_config(args.config, os.environ, overrides_from_args(args))
        ensure_state_dir(config.state_path)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except StateDirError as exc:
        return _fail(str(exc), EXIT_CANTCREAT)
    language = config.language
    if args.language is None:  # a flag wins; otherwise the user's last choice on this box
        saved = _saved_language(str(config.state_path))
        language = saved if saved in ("zh_CN", "zh_TW", "en") else language
    # Kivy's own log mode swaps sys.stderr for a stream that logs, and our stderr handler then
    # logs into itself until the recursion limit: let Kivy log through Python logging instead.
    os.environ["KIVY_LOG_MODE"] = "PYTHON"
    try:
        from tvapp.ui.boot import prepare_kivy

        prepare_kivy(
            *config.window_size,
            fullscreen=config.fullscreen,
            font_cache=config.state_path / "fonts",
        )
        from tvapp.services.container import Services
        from tvapp.ui.translate import tr

        tr.switch(language)
        services = Services.build(config)
    except FontNotFound as exc:
        return _fail(str(exc), EXIT_FAILED)
    log.info("event=starting gateway=%s language=%s", config.gateway_url, language)
    return config, services


def main(argv: list[str] | None = None) -> int:
    started = start_up(argv)
    if isinstance(started, int):
        return started
    config, services = started
    from tvapp.ui.app import TvPayApp

    app = TvPayApp(config, services)
    readers = []
    if config.evdev:
        from tvapp.input.evdev_remote import start_remote_readers

        readers = start_remote_readers(app.press)
    try:
        app.run()
    finally:
        for reader in readers:
            reader.stop()
        services.close()
    return 0


def _fail(message: str, code: int) -> int:
    print(f"tvpay-tv: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
