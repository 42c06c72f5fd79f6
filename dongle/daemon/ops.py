"""The operations of the daemon API (docs/daemon-api.md §3): argument checks and what each does.

Dongle operations are a table: each names its protocol command, its arguments and their types,
whether it needs the staff group and whether it may run while another client holds the lease.
The dongle checks values itself; the daemon checks shapes so that a malformed request is a
``bad_request`` from the daemon, not an odd answer from the dongle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dongle.daemon.leases import Claimant
from dongle.daemon.log import log
from dongle.errors import AccessDenied, BadRequest, DongleRemoved, UnsupportedVersion
from dongle.model import Priority
from dongle.wire import API_VERSION, API_VERSIONS
from protocol.messages import Command, KeepaliveStatus

if TYPE_CHECKING:
    from dongle.daemon.server import Connection

MAX_CLIENT_NAME = 64
_SHOWN = 64  # characters of a client's text quoted back in an error message


def shown(text: str) -> str:
    """``text`` quoted for an error message, cut short: an echo must never make the answer
    larger than the request that provoked it."""
    return repr(text[:_SHOWN]) + ("..." if len(text) > _SHOWN else "")


@dataclass(frozen=True, slots=True)
class DongleOp:
    command: Command
    args: tuple[tuple[str, type], ...] = ()
    staff: bool = False
    shared: bool = False  # harmless while another client holds the lease (PING, GET_INFO)
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters the daemon adds itself


_KA = ("key_agreement", bytes)
DONGLE_OPS: dict[str, DongleOp] = {
    "ping": DongleOp(Command.PING, (("data", bytes),), shared=True),
    "key_agreement": DongleOp(Command.GET_KEY_AGREEMENT, (("nonce", bytes),)),
    "pin_token": DongleOp(Command.GET_PIN_TOKEN, (_KA, ("pin_hash_enc", bytes))),
    "sign_payment": DongleOp(Command.SIGN_PAYMENT, (("fields", dict), ("pin_auth", bytes))),
    "sign_session": DongleOp(
        Command.SIGN_SESSION, (("gateway_id", str), ("challenge", bytes), ("timestamp", int))
    ),
    "card_status": DongleOp(Command.CARD_STATUS, shared=True),
    "card_transmit": DongleOp(Command.CARD_TRANSMIT, (("apdu", bytes), ("slot_events", int))),
    "change_pin": DongleOp(
        Command.CHANGE_PIN, (_KA, ("pin_hash_enc", bytes), ("new_pin_enc", bytes))
    ),
    "attest": DongleOp(Command.ATTEST, (("nonce", bytes),), staff=True),
    "generate_key": DongleOp(Command.GENERATE_KEY, staff=True),
    "read_cert": DongleOp(Command.READ_CERT, staff=True),
    "write_cert": DongleOp(Command.WRITE_CERT, (("certificate", bytes),), staff=True),
    "set_pin": DongleOp(
        Command.SET_PIN, (_KA, ("new_pin_enc", bytes), ("puk_enc", bytes)), staff=True
    ),
    "unblock_pin": DongleOp(
        Command.UNBLOCK_PIN, (_KA, ("puk_enc", bytes), ("new_pin_enc", bytes)), staff=True
    ),
    "lock": DongleOp(Command.LOCK, staff=True),
    "wipe": DongleOp(Command.WIPE, staff=True, fixed={"confirm": "WIPE"}),
}


def check_args(args: Any, spec: tuple[tuple[str, type], ...]) -> dict[str, Any]:
    """The request's ``args`` map, exactly the names of ``spec`` with the right types."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadRequest("'args' must be a map")
    names = {name for name, _ in spec}
    extra = sorted(set(args) - names)
    if extra:
        raise BadRequest(f"unknown arguments: {shown(', '.join(extra))}")
    for name, kind in spec:
        value = args.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadRequest(f"argument '{name}' must be of type {kind.__name__}")
    return dict(args)


def _serial(request: dict[str, Any]) -> str | None:
    serial = request.get("serial")
    if serial is not None and (not isinstance(serial, str) or not 0 < len(serial) <= 64):
        raise BadRequest("'serial' must be a dongle serial number (text) or absent")
    return serial


def claimant(conn: Connection) -> Claimant:
    return Claimant(conn, conn.client, conn.peer.pid, conn.peer.uid, conn.priority)


def run_dongle_op(conn: Connection, name: str, request: dict[str, Any]) -> dict[str, Any]:
    op = DONGLE_OPS[name]
    if op.staff and not conn.staff:
        raise AccessDenied(
            f"'{name}' is a provisioning operation: run it as a member of a staff group"
        )
    params = {**check_args(request.get("args"), op.args), **op.fixed}
    daemon = conn.daemon
    serial = daemon.devices.resolve(_serial(request))

    def progress(status: KeepaliveStatus) -> None:
        # A client gone meanwhile is the hang-up watcher's business, not the link's.
        conn.send({"v": API_VERSION, "id": request["id"], "progress": status.name.lower()})

    outcome = "completed"
    try:
        with conn.guarded():
            if op.shared:
                return daemon.devices.call(serial, op.command, params, cancel=conn.cancel)
            with daemon.leases.call(serial, claimant(conn)):
                return daemon.devices.call(
                    serial, op.command, params, cancel=conn.cancel, on_keepalive=progress
                )
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        if conn.cancel.is_set():
            # The client hung up while the dongle worked: the link sent CANCEL. The dongle
            # answers CANCELLED, or its result if it had already committed (then nobody reads it).
            log("command_abandoned", conn=conn.number, op=name, serial=serial, outcome=outcome)


def _device_entry(conn: Connection, serial: str, info: dict[str, Any]) -> dict[str, Any]:
    leases = conn.daemon.leases
    holder = leases.holder(serial)
    return {
        **info,
        "held_by": holder.to_wire() if holder else None,
        "waiting": leases.waiting(serial),
    }


def op_hello(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    args = request.get("args") or {}
    if not isinstance(args, dict):
        raise BadRequest("'args' must be a map")
    client = args.get("client", conn.client)
    if (
        not isinstance(client, str)
        or not 0 < len(client) <= MAX_CLIENT_NAME
        or not client.isprintable()
    ):
        raise BadRequest(f"'client' must be a printable name of 1..{MAX_CLIENT_NAME} characters")
    try:
        priority = Priority(args.get("priority", conn.priority.value))
    except ValueError:
        raise BadRequest("'priority' must be 'normal' or 'high'") from None
    versions = args.get("versions", [API_VERSION])
    if not isinstance(versions, list) or not any(
        type(version) is int and version in API_VERSIONS for version in versions
    ):
        raise UnsupportedVersion(
            f"this daemon speaks API versions {list(API_VERSIONS)}: update the client"
        )
    conn.client = client
    conn.priority = priority
    return {
        "api": API_VERSION,
        "versions": list(API_VERSIONS),
        "uid": conn.peer.uid,
        "staff": conn.staff,
    }


def op_devices(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    devices = conn.daemon.devices
    entries = []
    for serial in devices.serials():
        try:
            entries.append(_device_entry(conn, serial, devices.cached_info(serial)))
        except DongleRemoved:  # unplugged since serials() was read
            continue
    return {"devices": entries}


def op_info(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    serial = conn.daemon.devices.resolve(_serial(request))
    with conn.guarded():
        conn.daemon.devices.call(serial, Command.GET_INFO, {"version": 1}, cancel=conn.cancel)
    return _device_entry(conn, serial, conn.daemon.devices.cached_info(serial))


def op_subscribe(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    conn.daemon.events.add(conn)  # before the snapshot, so no change falls in between
    return op_devices(conn, request)


def op_unsubscribe(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    conn.daemon.events.discard(conn)
    return {}


def op_acquire(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    args = request.get("args") or {"wait_ms": 0}
    wait_ms = check_args(args, (("wait_ms", int),))["wait_ms"]
    limit = conn.daemon.config.acquire_wait_max
    if wait_ms < 0 or wait_ms > limit * 1000:
        raise BadRequest(f"'wait_ms' must be 0..{int(limit * 1000)}")
    serial = conn.daemon.devices.resolve(_serial(request))
    with conn.guarded():
        holder = conn.daemon.leases.acquire(serial, claimant(conn), wait_ms / 1000, conn.cancel)
    return {"serial": serial, "holder": holder.to_wire()}


def op_release(conn: Connection, request: dict[str, Any]) -> dict[str, Any]:
    serial = _serial(request)
    if serial is None:
        raise BadRequest("'serial' is required: name the dongle whose lease to release")
    return {"released": conn.daemon.leases.release(serial, conn)}


Handler = Callable[["Connection", dict[str, Any]], dict[str, Any]]
DAEMON_OPS: dict[str, Handler] = {
    "hello": op_hello,
    "devices": op_devices,
    "info": op_info,
    "subscribe": op_subscribe,
    "unsubscribe": op_unsubscribe,
    "acquire": op_acquire,
    "release": op_release,
}
