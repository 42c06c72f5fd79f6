"""The stack: starts bank, gateway, virtual dongles, daemon, fault proxy; drives them on request.

``Stack`` implements the service half of ``emulator.automation.box.Box`` (dongles, network,
restarts, where); the TV half is attached with ``attach_tv`` once the app is running. All
operations are safe to call from several threads (one lock per service).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Protocol

from emulator.automation.box import (
    InvalidFault,
    ServiceFailed,
    TvNotAnswering,
    UnknownDongle,
)
from emulator.stack import demo_card, money, prepaid, services, setup
from emulator.stack.config import StackConfig
from emulator.stack.layout import Layout
from emulator.stack.process import ManagedProcess, ProcessError, Spawner
from emulator.stack.proxy import FaultProxy, NetworkCondition, NetworkMode
from emulator.stack.record import RecordError, StackRecord, load_record
from emulator.stack.tls import TlsError, TlsMaterial, ensure_tls
from emulator.stack.tools import ToolError
from emulator.usb.cable import CableControl, CableError

log = logging.getLogger(__name__)
DEMO_ALIAS = "demo"
# How long a restarting gateway may take to answer the requests it already has; see
# emulator.stack.proxy ("draining") for why its idle connections are closed for it.
GATEWAY_DRAIN_GRACE = 1.0


class StackError(Exception):
    """The stack could not start; the message says which part and where its log is."""


class TvScreen(Protocol):
    def press(self, keys: Sequence[str]) -> None: ...

    def screen(self) -> dict[str, Any]: ...

    def screenshot(self, image_format: str) -> bytes: ...


class Stack:
    def __init__(self, config: StackConfig, *, echo: IO[str] | None = sys.stderr) -> None:
        self.config = config
        self._temporary = not config.state_dir
        root = Path(config.state_dir or tempfile.mkdtemp(prefix="tvpay-emulator-"))
        self.layout = Layout(root.resolve())
        self.layout.make()
        self._echo = echo
        self._spawner = Spawner()
        self._gateway: ManagedProcess | None = None
        self._cable: ManagedProcess | None = None
        self._daemon: ManagedProcess | None = None
        self._bank: ManagedProcess | None = None
        self._utility: ManagedProcess | None = None
        self._dispatcher: ManagedProcess | None = None
        self._proxy: FaultProxy | None = None
        self._control: CableControl | None = None
        self._tv: TvScreen | None = None
        self._meters: prepaid.HouseholdMeters | None = None
        self._gateway_lock = threading.Lock()
        self._daemon_lock = threading.Lock()
        self._cable_lock = threading.Lock()
        self.tls: TlsMaterial | None = None
        self.gateway_url = ""
        self.cable_address = ""
        self.bank_url = ""
        self.utility_url = ""
        self.automation_url = ""
        record = load_record(self.layout.root)
        seed = (
            config.seed
            if config.seed is not None
            else (record.seed if record is not None else secrets.randbelow(10**6))
        )
        self.record = record if record is not None and record.seed == seed else StackRecord(seed)

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Set up what is missing, then start everything but the TV app, in dependency order."""
        try:
            self._start()
        except (
            ProcessError,
            setup.SetupError,
            ToolError,
            TlsError,
            RecordError,
            CableError,
        ) as exc:
            self.stop()
            raise StackError(str(exc)) from exc

    def _start(self) -> None:
        layout = self.layout
        self.tls = ensure_tls(layout.tls)
        if not self.record.manufacturer_ca:
            self.record = setup.remember(
                layout,
                setup.make_factory_dongles(layout, self.record, 1 + self.config.factory_dongles),
            )
        if not self.record.gateway_ready:
            self.record = setup.remember(
                layout, setup.init_gateway(layout, self.record, self.config.households)
            )
        self._start_bank()
        self._start_gateway(port=0)
        self._start_money()
        self._cable = self._process(
            services.cable_spec(layout, self.record.seed, self.config.timing)
        )
        match = self._cable.start(layout.root)
        assert match is not None
        self.cable_address = f"{match['host']}:{match['port']}"
        self._control = CableControl(self.cable_address)
        services.write_daemon_config(layout, self.cable_address)
        self._daemon = self._process(services.daemon_spec(layout))
        self._daemon.start(layout.root)
        self._place_dongles()
        assert self.record.demo is not None
        self._meters = prepaid.start_meters(
            layout,
            household_no=self.record.demo.household_no,
            cable_address=self.cable_address,
            dongle_serial=self.record.demo.dongle_serial,
            utility_url=self.utility_url,
        )
        host, port = self._gateway_address()
        self._proxy = FaultProxy((host, port)).start()

    def _place_dongles(self) -> None:
        """Only the demo dongle stays plugged; factory-fresh ones wait on the shelf.

        The TV app uses "the only dongle"; a staff demo plugs a factory one through the API.
        """
        assert self._control is not None
        serials = sorted(d["serial"] for d in self._control.list())
        demo = self.record.demo
        assert demo is not None
        if not self.record.demo_provisioned:
            chosen = demo.dongle_serial or serials[0]
            for serial in serials:
                if serial != chosen:
                    self._control.unplug(serial)
            self.record = setup.remember(
                self.layout,
                setup.provision_demo_dongle(
                    self.layout, self._tls(), self.gateway_url, self.record, chosen
                ),
            )
        else:
            for serial in serials:
                if serial != demo.dongle_serial:
                    self._control.unplug(serial)
        assert self.record.demo is not None
        self.record = setup.remember(
            self.layout,
            replace(
                self.record,
                factory_serials=tuple(s for s in serials if s != self.record.demo.dongle_serial),
            ),
        )

    def stop(self) -> None:
        """Stop everything in reverse order; remove a temporary state directory."""
        if self._proxy is not None:
            self._proxy.close()
        if self._control is not None:
            self._control.close()
        if self._meters is not None:
            self._meters.close()
        for process in (
            self._daemon,
            self._cable,
            self._dispatcher,
            self._utility,
            self._gateway,
            self._bank,
        ):
            if process is not None:
                process.stop()
        self._spawner.close()
        if self._temporary:
            shutil.rmtree(self.layout.root, ignore_errors=True)

    def _process(self, spec: services.ProcessSpec) -> ManagedProcess:
        return ManagedProcess(spec, self._spawner, self.layout.logs, echo=self._echo)

    def _tls(self) -> TlsMaterial:
        assert self.tls is not None
        return self.tls

    # -- the gateway --------------------------------------------------------------------------

    def _start_gateway(self, port: int) -> None:
        self._gateway = self._process(
            services.gateway_spec(self.layout, self._tls(), port, self.bank_url)
        )
        match = self._gateway.start(self.layout.root)
        assert match is not None
        self.gateway_url = match["url"].replace("http://", "https://", 1)

    def _start_bank(self) -> None:
        """The bank simulator, before the gateway and the dispatcher that debit it; the demo
        household's card and mandate the first time."""
        self._bank = self._process(money.bank_spec(self.layout))
        match = self._bank.start(self.layout.root)
        assert match is not None
        self.bank_url = match["url"]
        if not self.record.demo_card_bound:
            self.record = setup.remember(
                self.layout, demo_card.add_demo_card(self.layout, self.bank_url, self.record)
            )

    def _start_money(self) -> None:
        """The utility simulator, every biller pointed at it, and a dispatcher."""
        self._utility = self._process(
            money.utility_spec(self.layout, self._tls(), self.gateway_url)
        )
        match = self._utility.start(self.layout.root)
        assert match is not None
        self.utility_url = match["url"]
        money.connect_billers(self.layout, self.utility_url)
        self._dispatcher = self._process(money.dispatcher_spec(self.layout, self.bank_url))
        self._dispatcher.start(self.layout.root)

    def _gateway_address(self) -> tuple[str, int]:
        host, port = self.gateway_url.split("://", 1)[1].rsplit(":", 1)
        return host, int(port)

    def restart_gateway(self) -> dict[str, Any]:
        """Stop the gateway (SIGTERM) and start it again on the same port if it is still free."""
        with self._gateway_lock:
            assert self._gateway is not None and self._proxy is not None
            old = self._gateway_address()
            began = time.monotonic()
            with self._proxy.draining(old, grace=GATEWAY_DRAIN_GRACE):
                status = self._gateway.stop()
            stopped = time.monotonic()
            port = old[1]
            try:
                self._start_gateway(port)
            except ProcessError:
                log.warning("event=gateway_port_taken port=%d", port)
                try:
                    self._start_gateway(0)
                except ProcessError as exc:
                    raise ServiceFailed(str(exc)) from exc
            self._proxy.set_upstream(self._gateway_address())
            log.info(
                "event=gateway_restarted status=%s stop_s=%.2f start_s=%.2f",
                status,
                stopped - began,
                time.monotonic() - stopped,
            )
            return {"gateway": self._service_info(self._gateway, url=self.gateway_url)}

    # -- the daemon --------------------------------------------------------------------------

    def kill_daemon(self) -> dict[str, Any]:
        """SIGKILL the daemon, as a crash would."""
        with self._daemon_lock:
            assert self._daemon is not None
            self._daemon.kill()
            return {
                "daemon": self._service_info(self._daemon, socket=str(self.layout.daemon_socket))
            }

    def start_daemon(self) -> dict[str, Any]:
        with self._daemon_lock:
            assert self._daemon is not None
            if not self._daemon.running():
                try:
                    self._daemon.start(self.layout.root)
                except ProcessError as exc:
                    raise ServiceFailed(str(exc)) from exc
            return {
                "daemon": self._service_info(self._daemon, socket=str(self.layout.daemon_socket))
            }

    # -- dongles on the cable -----------------------------------------------------------------

    def _serial(self, serial: str) -> str:
        demo = self.record.demo
        if serial == DEMO_ALIAS and demo is not None:
            return demo.dongle_serial
        return serial

    def _cable_call(self, serial: str, op: str, **params: Any) -> None:
        assert self._control is not None
        real = self._serial(serial)
        with self._cable_lock:
            known = {d["serial"] for d in self._control.list()}
            if real not in known:
                raise UnknownDongle(
                    f"no dongle {serial!r} on the cable; known: {', '.join(sorted(known))}"
                    f" (or {DEMO_ALIAS!r})"
                )
            try:
                getattr(self._control, op)(real, **params)
            except CableError as exc:
                raise InvalidFault(str(exc)) from exc

    def dongles(self) -> list[dict[str, Any]]:
        assert self._control is not None
        with self._cable_lock:
            listed = self._control.list()
        demo = self.record.demo.dongle_serial if self.record.demo else ""
        return [{**d, "demo": d["serial"] == demo} for d in listed]

    def plug(self, serial: str) -> None:
        self._cable_call(serial, "plug")

    def unplug(self, serial: str) -> None:
        self._cable_call(serial, "unplug")

    def fault(self, serial: str, kind: str, params: Mapping[str, Any]) -> None:
        self._cable_call(serial, "fault", kind=kind, **params)

    def clear_faults(self, serial: str) -> None:
        self._cable_call(serial, "clear_faults")

    # -- the household's prepaid meters (emulator.stack.prepaid) --------------------------------

    def meters(self) -> dict[str, Any]:
        return prepaid.require(self._meters).snapshot()

    def move_card(self, to: str) -> dict[str, Any]:
        return prepaid.require(self._meters).move_card(to)

    def enter_token(self, digits: str) -> dict[str, Any]:
        return prepaid.require(self._meters).enter_token(digits)

    # -- the network between TV and gateway ---------------------------------------------------

    def network(self) -> dict[str, Any]:
        assert self._proxy is not None
        condition = self._proxy.condition
        return {"mode": str(condition.mode), "delay_ms": condition.delay_ms}

    def set_network(self, mode: str, delay_ms: int) -> dict[str, Any]:
        assert self._proxy is not None
        try:
            condition = NetworkCondition(NetworkMode(mode), delay_ms)
        except ValueError as exc:
            raise InvalidFault(str(exc)) from exc
        self._proxy.set_condition(condition)
        return self.network()

    @property
    def tv_gateway_url(self) -> str:
        """The gateway as the TV app sees it: through the fault proxy."""
        assert self._proxy is not None
        host, port = self._proxy.address
        return f"https://{host}:{port}"

    # -- the TV --------------------------------------------------------------------------------

    def attach_tv(self, tv: TvScreen) -> None:
        self._tv = tv

    def _screen(self) -> TvScreen:
        if self._tv is None:
            raise TvNotAnswering("the TV app is still starting; try again in a moment")
        return self._tv

    def press(self, keys: Sequence[str]) -> None:
        self._screen().press(keys)

    def screen(self) -> dict[str, Any]:
        return self._screen().screen()

    def screenshot(self, image_format: str) -> bytes:
        return self._screen().screenshot(image_format)

    # -- where everything runs ----------------------------------------------------------------

    @staticmethod
    def _service_info(process: ManagedProcess | None, **extra: Any) -> dict[str, Any]:
        if process is None:
            return {"running": False, **extra}
        return {
            "running": process.running(),
            "pid": process.pid,
            "log": str(process.log_path),
            **extra,
        }

    def where(self) -> dict[str, Any]:
        demo = self.record.demo
        return {
            "state_dir": str(self.layout.root),
            "state_kept": not self._temporary,
            "seed": self.record.seed,
            "automation_url": self.automation_url,
            "web_remote_url": self.automation_url + "/" if self.automation_url else "",
            "gateway": self._service_info(
                self._gateway, url=self.gateway_url, database=str(self.layout.gateway_db)
            ),
            "tv_gateway_url": self.tv_gateway_url if self._proxy else "",
            "network": self.network() if self._proxy else {},
            "cable": self._service_info(self._cable, address=self.cable_address),
            "daemon": self._service_info(self._daemon, socket=str(self.layout.daemon_socket)),
            "bank": self._service_info(self._bank, url=self.bank_url),
            "utility": self._service_info(self._utility, url=self.utility_url),
            "dispatcher": self._service_info(self._dispatcher),
            "tls_ca": str(self._tls().ca_cert) if self.tls else "",
            "manufacturer_ca": self.record.manufacturer_ca,
            "staff_token_file": str(self.layout.staff_token),
            "demo": {
                "household_no": demo.household_no if demo else "",
                "name": demo.name if demo else "",
                "pin": demo.pin if demo else "",
                "puk": demo.puk if demo else "",
                "dongle_serial": demo.dongle_serial if demo else "",
                "bank_token": demo_card.demo_bank_token(demo.household_no) if demo else "",
                "card_masked": demo_card.DEMO_CARD_MASKED if demo else "",
            },
            "households": list(self.record.households),
            "factory_dongles": list(self.record.factory_serials),
            "logs": str(self.layout.logs),
        }
