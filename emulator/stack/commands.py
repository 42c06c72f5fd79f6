"""`tvpay-emulator up`: the whole box on this PC — gateway, dongles, daemon, TV app, automation API.

Order: children first (gateway, cable, daemon, demo provisioning, fault proxy), then the
automation API on a background thread, then the TV app on the main thread until Ctrl-C/SIGTERM
(or the window closes); then everything stops in reverse order.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType
from typing import IO, Any

from emulator.automation.api import create_app
from emulator.automation.server import AutomationServer, AutomationServerError
from emulator.stack.config import (
    StackConfig,
    StackConfigError,
    add_arguments,
    load_stack_config,
    overrides_from_args,
)
from emulator.stack.record import RecordError
from emulator.stack.supervisor import Stack, StackError
from emulator.stack.tv import KivyTv, TvSettings, has_display, run_tv

UNTRUSTED_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class _Stopping(Exception):
    """Raised by the signal handler while the stack is still starting."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run the whole box: bank, gateway, dongles, daemon, TV app, automation API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=run_up)


def summary(stack: Stack, headless: bool) -> str:
    where = stack.where()
    demo = where["demo"]
    kept = "kept" if where["state_kept"] else "removed at exit; --state-dir DIR keeps it"
    lines = [
        f"automation API listening on {where['automation_url']}",
        "",
        "TVPay emulator is up.",
        f"  web remote         {where['web_remote_url']}   <- open this to use the TV",
        f"  TV app             {'headless (see the web remote)' if headless else 'window on this display'}",
        f"  demo household     {demo['household_no']} {demo['name']}   PIN {demo['pin']}",
        f"  demo dongle        {demo['dongle_serial']} (plugged in)",
        f"  demo bank card     {demo['card_masked']} (yellow on the confirm screen pays with it)",
        f"  factory dongles    {', '.join(where['factory_dongles']) or 'none'} (unplugged: plug them with the API)",
        f"  gateway            {where['gateway']['url']} (TV reaches it through {where['tv_gateway_url']})",
        f"  gateway database   {where['gateway']['database']}",
        f"  bank simulator     {where['bank']['url']}",
        f"  utility simulator  {where['utility']['url']}",
        f"  virtual cable      {where['cable']['address']}",
        f"  dongle daemon      {where['daemon']['socket']}",
        f"  TLS CA             {where['tls_ca']}",
        f"  staff token        {where['staff_token_file']}",
        f"  state dir          {where['state_dir']} ({kept})",
        f"  logs               {where['logs']}",
        f"  seed               {where['seed']} (repeat this run with --seed {where['seed']})",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines) + "\n"


def run_up(args: argparse.Namespace, *, out: IO[str] = sys.stdout) -> int:
    try:
        config: StackConfig = load_stack_config(args.config, os.environ, overrides_from_args(args))
    except StackConfigError as exc:
        print(f"tvpay-emulator up: {exc}", file=sys.stderr)
        return 2
    headless = config.headless or not has_display()
    # requests lets these variables override a session's own CA file: every part of the stack
    # must trust the emulator's CA only, in this process (the TV app) and in the children.
    for name in UNTRUSTED_ENV:
        os.environ.pop(name, None)
    app_holder: list[Any] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if app_holder:
            from kivy.clock import Clock

            Clock.schedule_once(lambda _dt: app_holder[0].stop(), 0)
        else:
            raise _Stopping(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        stack = Stack(config)
    except RecordError as exc:
        print(f"tvpay-emulator up: {exc}", file=sys.stderr)
        return 1
    server: AutomationServer | None = None
    try:
        stack.start()
        server = AutomationServer(
            create_app(stack), host=config.automation_host, port=config.automation_port
        )
        stack.automation_url = server.start()
        out.write(summary(stack, headless))
        out.flush()
        demo = stack.record.demo
        assert demo is not None and stack.tls is not None
        settings = TvSettings(
            gateway_url=stack.tv_gateway_url,
            ca_file=stack.tls.ca_cert,
            daemon_socket=stack.layout.daemon_socket,
            state_dir=stack.layout.tv,
            kivy_home=stack.layout.kivy_home,
            language=config.language,
            holder_name=demo.name,
            headless=headless,
        )

        def on_started(tv: KivyTv) -> None:
            stack.attach_tv(tv)
            app_holder.append(tv.app)

        run_tv(settings, on_started)
        return 0
    except (StackError, AutomationServerError) as exc:
        print(f"tvpay-emulator up: {exc}", file=sys.stderr)
        return 1
    except _Stopping:
        return 0
    finally:
        if server is not None:
            server.stop()
        stack.stop()
        print("tvpay-emulator: stopped", file=sys.stderr)
