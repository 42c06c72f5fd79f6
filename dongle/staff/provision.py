"""Provisioning one dongle: a resumable state machine over the dongle and the gateway.

Steps (docs/staff-guide.md, "How provisioning resumes"):

    inspect        dongle info + the gateway's registry entry decide where to start
    check_genuine  ATTEST(fresh nonce), chain checked against the manufacturer CAs: before any change
    wipe           only when an earlier run stopped between WRITE_CERT and LOCK
    generate_key   a fresh payment key on the dongle (key_rev + 1)
    attest         gateway nonce -> ATTEST(nonce) with the new key, checked locally
    register       the gateway checks the attestation again, records the key PENDING, issues the certificate
    write_cert     the device certificate onto the dongle
    set_pin        the household's PIN and a fresh PUK, encrypted in this process; the PUK is first
                   handed to ``keep_puk`` (batch: the result file, fsynced) so it is on disk
                   before any dongle can hold it
    lock           ends provisioning on the dongle
    activate       SIGN_SESSION over the gateway's challenge (only a locked dongle signs): ACTIVE

Only the last step makes the dongle usable, and only a locked dongle can take it, so a dongle is
never active at the gateway while unusable, nor usable while not active. Whatever stopped a run,
rerunning starts from what the dongle and the gateway say, never from local memory.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from dongle.client import DaemonClient
from dongle.errors import DaemonError
from dongle.model import DeviceInfo
from dongle.pin_client import set_initial_pin
from dongle.staff.attestation import Genuine, attestation_from_results, verify_attestation
from dongle.staff.codes import new_puk
from dongle.staff.daemon import as_staff_error
from dongle.staff.errors import (
    AlreadyProvisioned,
    ConfigError,
    DongleProblem,
    GatewayProblem,
    GatewayRefused,
    Interrupted,
    StaffError,
)
from dongle.staff.gateway import DongleRecord, StaffGateway
from dongle.staff.log import log
from protocol.errors import MalformedCertificate, ProtocolError
from protocol.pin import DongleKey
from protocol.pki import Attestation, parse_certificate
from protocol.signing import public_key_bytes

FAIL_AFTER_ENV = "TVPAY_STAFF_FAIL_AFTER"
LOCKED_STATES = ("locked", "pin_blocked")


class Step(enum.StrEnum):
    INSPECT = "inspect"
    CHECK_GENUINE = "check_genuine"
    WIPE = "wipe"
    GENERATE_KEY = "generate_key"
    ATTEST = "attest"
    REGISTER = "register"
    WRITE_CERT = "write_cert"
    SET_PIN = "set_pin"
    LOCK = "lock"
    ACTIVATE = "activate"


STEPS: tuple[Step, ...] = tuple(Step)

# serial, step, what happened: "start", "done" or "skipped"
Observer = Callable[[str, Step, str], None]
# serial, key_rev, PUK: stores the PUK durably; it returns before the PUK goes to the dongle,
# and raises (a StaffError) when it cannot, so the dongle is never set with a PUK not kept.
PukKeeper = Callable[[str, int, str], None]


def fail_after_from_env(env: Mapping[str, str] | None = None) -> Step | None:
    """The test hook: TVPAY_STAFF_FAIL_AFTER=<step> stops a run as if Ctrl-C'd after that step."""
    value = (os.environ if env is None else env).get(FAIL_AFTER_ENV, "").strip()
    if not value:
        return None
    try:
        return Step(value)
    except ValueError:
        names = ", ".join(STEPS)
        raise ConfigError(f"{FAIL_AFTER_ENV}={value!r} is not a step; use one of {names}") from None


ROLES = ("home", "shop")


@dataclass(frozen=True, slots=True)
class Order:
    """What to provision: a household number, its PIN, which dongle (None: the only one) and
    its role: ``home`` pays one household's bills, ``shop`` sells from a shop's float."""

    account: str
    pin: str
    serial: str | None = None
    role: str = "home"


@dataclass(frozen=True, slots=True)
class Outcome:
    serial: str
    account: str
    key_rev: int
    puk: str | None  # None when an earlier, interrupted run set it (and printed it)
    resumed: bool  # finished what an earlier run started (activation only)
    restarted: bool  # wiped what an earlier run left half-done
    manufacturer: str
    role: str = "home"


class ProvisionFailed(StaffError):
    """A run stopped at ``step``; ``puk`` is set when the dongle may be locked with it (LOCK
    was sent: its answer may be what got lost)."""

    def __init__(self, cause: StaffError, serial: str | None, step: Step, puk: str | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.serial = serial
        self.step = step
        self.puk = puk
        self.exit_code = cause.exit_code  # type: ignore[misc]
        self.kind = cause.kind  # type: ignore[misc]


class _Plan(enum.Enum):
    FRESH = "fresh"  # factory or key_generated: generate a (new) key
    RESTART = "restart"  # certified, maybe with a PIN: wipe, then as FRESH
    ACTIVATE = "activate"  # locked and pending at the gateway: only activation is left


def mask_account(account: str) -> str:
    """Household numbers are kept out of logs except their last 4 digits."""
    return "*" * max(len(account) - 4, 0) + account[-4:]


class Provisioning:
    """One run of the state machine for one dongle, through one daemon connection.

    The caller's ``client`` must be used by this run only: the lease it takes belongs to the
    connection (batch mode gives each dongle its own client and gateway session).
    """

    def __init__(
        self,
        client: DaemonClient,
        gateway: StaffGateway,
        cas: list[x509.Certificate],
        order: Order,
        *,
        observe: Observer | None = None,
        keep_puk: PukKeeper | None = None,
        fail_after: Step | None = None,
        lease_wait: float = 0.0,
    ) -> None:
        self._client = client
        self._gateway = gateway
        self._cas = cas
        self._order = order
        self._observe = observe or (lambda serial, step, what: None)
        self._keep_puk = keep_puk or (lambda serial, key_rev, puk: None)
        self._fail_after = fail_after
        self._lease_wait = lease_wait
        self._serial: str | None = order.serial
        self._step = Step.INSPECT
        self._locked_puk: str | None = None

    def run(self) -> Outcome:
        """Provision, or raise ProvisionFailed (or Interrupted inside it) saying where it stopped."""
        try:
            return self._run()
        except KeyboardInterrupt:
            cause: StaffError = Interrupted(
                f"interrupted at step {self._step}: rerun the same command to resume "
                "or restart cleanly"
            )
        except StaffError as exc:
            cause = exc
        except (DaemonError, ProtocolError, OSError) as exc:
            cause = as_staff_error(exc)
        log(
            "provision.failed",
            "error",
            serial=self._serial,
            step=self._step,
            kind=cause.kind,
            reason=str(cause),
        )
        raise ProvisionFailed(cause, self._serial, self._step, self._locked_puk) from cause

    def _run(self) -> Outcome:
        order = self._order
        self._check_household()
        info = self._client.info(order.serial)
        self._serial = serial = info.serial
        with self._client.acquire(serial, wait=self._lease_wait):
            started = self._begin(Step.INSPECT)
            info = self._client.info(serial)
            plan = self._plan(info, self._gateway.dongle(serial))
            self._done(
                Step.INSPECT, started, state=info.state, key_rev=info.key_rev, plan=plan.value
            )

            started = self._begin(Step.CHECK_GENUINE)
            genuine = self._attest(os.urandom(32))
            self._done(Step.CHECK_GENUINE, started, manufacturer=genuine.manufacturer)

            if plan is _Plan.ACTIVATE:
                for step in STEPS[2:-1]:
                    self._skip(step)
                key_rev, puk = info.key_rev, None
            else:
                key_rev, puk = self._make_key_and_lock(plan)
            self._activate(key_rev)
        return Outcome(
            serial=serial,
            account=order.account,
            key_rev=key_rev,
            puk=puk,
            resumed=plan is _Plan.ACTIVATE,
            restarted=plan is _Plan.RESTART,
            manufacturer=genuine.manufacturer,
            role=order.role,
        )

    def _check_household(self) -> None:
        account = self._order.account
        try:
            self._gateway.household(account)
        except GatewayRefused as exc:
            if exc.status != 404:
                raise
            raise GatewayRefused(
                f"household {account} is not known at the gateway: check the 户号 on the "
                "household's contract, or have the household registered first",
                exc.code,
                exc.status,
            ) from None

    def _plan(self, info: DeviceInfo, record: DongleRecord | None) -> _Plan:
        serial, account = info.serial, self._order.account
        locked = info.state in LOCKED_STATES
        if record is not None and record.status == "active":
            if locked and record.key_rev == info.key_rev:
                raise AlreadyProvisioned(
                    f"dongle {serial} is already provisioned and active for household "
                    f"{mask_account(record.household_no)}: nothing was changed; to reuse it, "
                    "revoke it ('tvpay-dongle revoke') and reset it first"
                )
            raise AlreadyProvisioned(
                f"the gateway lists dongle {serial} as active, but the dongle no longer holds "
                "that key: revoke it first ('tvpay-dongle revoke --serial "
                f"{serial} --reason reset'), then provision again"
            )
        if locked:
            if (
                record is not None
                and record.status == "pending"
                and record.key_rev == info.key_rev
                and record.household_no == account
            ):
                return _Plan.ACTIVATE
            raise DongleProblem(
                f"dongle {serial} is locked but not waiting for activation for household "
                f"{mask_account(account)}: nothing was changed; reset it with "
                f"'tvpay-dongle reset --serial {serial}' and provision again"
            )
        if info.state == "certified" or info.pin_set:
            return _Plan.RESTART
        if info.state in ("factory", "key_generated"):
            return _Plan.FRESH
        raise DongleProblem(
            f"dongle {serial} is in an unexpected state '{info.state}': run "
            f"'tvpay-dongle info --serial {serial}' and reset it if needed"
        )

    def _make_key_and_lock(self, plan: _Plan) -> tuple[int, str]:
        serial, client = self._serial, self._client
        if plan is _Plan.RESTART:
            started = self._begin(Step.WIPE)
            client.wipe(serial)
            self._done(Step.WIPE, started, reason="an earlier run stopped before LOCK")
        else:
            self._skip(Step.WIPE)

        started = self._begin(Step.GENERATE_KEY)
        generated = client.generate_key(serial)
        public_key, key_rev = generated.get("public_key"), generated.get("key_rev")
        if not isinstance(public_key, bytes) or not isinstance(key_rev, int):
            raise DongleProblem(f"dongle {serial} answered GENERATE_KEY without a key: reset it")
        self._done(Step.GENERATE_KEY, started, key_rev=key_rev)

        started = self._begin(Step.ATTEST)
        attestation = self._attestation(self._gateway.attestation_nonce())
        verify_attestation(attestation, self._cas)
        if attestation.public_key != public_key or attestation.key_rev != key_rev:
            raise DongleProblem(
                f"dongle {serial} changed its key during provisioning: "
                "is another tool using it? Rerun when it is free"
            )
        self._done(Step.ATTEST, started, key_rev=key_rev)

        started = self._begin(Step.REGISTER)
        registration = self._gateway.register(self._order.account, attestation, self._order.role)
        certificate = registration.certificate
        if _certified_key(certificate) != public_key:
            raise GatewayProblem(
                "the gateway issued a certificate for another key: nothing was written to "
                "the dongle; rerun, and report it if it happens again"
            )
        self._done(Step.REGISTER, started, key_rev=key_rev, status=registration.status)

        started = self._begin(Step.WRITE_CERT)
        client.write_cert(certificate, serial)
        self._done(Step.WRITE_CERT, started)

        started = self._begin(Step.SET_PIN)
        puk = new_puk()
        self._keep_puk(serial, key_rev, puk)
        # The key agreement must be signed by the key GENERATE_KEY returned and the gateway certified.
        set_initial_pin(client, self._order.pin, puk, DongleKey(serial, key_rev, public_key))
        self._done(Step.SET_PIN, started)

        started = self._begin(Step.LOCK)
        # Set before LOCK is sent: the dongle may lock and its answer still be lost, and from
        # then on a rerun only activates, so this PUK is the household's.
        self._locked_puk = puk
        client.lock(serial)
        self._done(Step.LOCK, started)
        return key_rev, puk

    def _activate(self, key_rev: int) -> None:
        serial = self._serial
        assert serial is not None
        started = self._begin(Step.ACTIVATE)
        challenge = self._gateway.activation_challenge(serial)
        signed = self._client.sign_session(
            challenge.gateway_id, challenge.challenge, challenge.timestamp, serial
        )
        record = self._gateway.activate(serial, signed.key_rev, challenge, signed.signature)
        if record.status != "active":
            raise GatewayProblem(
                f"the gateway left dongle {serial} '{record.status}' after activation: "
                "rerun, and report it if it happens again"
            )
        self._done(Step.ACTIVATE, started, key_rev=key_rev)

    def _attestation(self, nonce: bytes) -> Attestation:
        assert self._serial is not None
        results = self._client.attest(nonce, self._serial)
        return attestation_from_results(self._serial, nonce, results)

    def _attest(self, nonce: bytes) -> Genuine:
        return verify_attestation(self._attestation(nonce), self._cas)

    def _begin(self, step: Step) -> float:
        assert self._serial is not None
        self._step = step
        self._observe(self._serial, step, "start")
        return time.monotonic()

    def _done(self, step: Step, started: float, **fields: object) -> None:
        assert self._serial is not None
        ms = round((time.monotonic() - started) * 1000)
        log(
            "provision.step",
            serial=self._serial,
            account=mask_account(self._order.account),
            step=step,
            result="ok",
            ms=ms,
            **fields,
        )
        self._observe(self._serial, step, "done")
        if step is self._fail_after:
            raise KeyboardInterrupt  # the test hook: as if Ctrl-C came right after this step

    def _skip(self, step: Step) -> None:
        assert self._serial is not None
        self._observe(self._serial, step, "skipped")


def _certified_key(der: bytes) -> bytes:
    """The payment key a device certificate from the gateway certifies: it is checked like any
    certificate from outside before anything is written to the dongle."""
    try:
        cert = parse_certificate(der)
    except MalformedCertificate as exc:
        raise GatewayProblem(
            f"the gateway issued a device certificate that {exc.reason}: nothing was written "
            "to the dongle; rerun, and report it if it happens again"
        ) from None
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)  # parse_certificate accepts only P-256
    return public_key_bytes(key)
