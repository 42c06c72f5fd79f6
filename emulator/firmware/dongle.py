"""The dongle's command processor: lifecycle, keys, PIN/PUK, counter and idempotent signing.

``Firmware.handle`` takes one decoded request and returns its response (docs/protocol.md §4-§6).
Volatile state (key-agreement key, PIN token) lives here and dies with the object, as RAM does at
power-off; everything else is in a ``DongleState`` that is committed to the store before the
response is built, so a signature never leaves before its counter is persisted.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from emulator.firmware.factory import private_scalar
from emulator.firmware.state import SIGN_CACHE_SIZE, DongleState, SignedPayment
from emulator.firmware.store import DongleStore
from protocol import MESSAGE_VERSIONS, pki
from protocol.errors import MalformedCertificate, PayloadError, PinPolicyError, PinProtocolError
from protocol.frame import MAX_PAYLOAD
from protocol.messages import Command, Lifecycle, Request, Response, Status
from protocol.pin import (
    AAD_NEW_PIN,
    AAD_PIN_HASH,
    AAD_PIN_TOKEN,
    AAD_PUK,
    PIN_RETRIES,
    PIN_TOKEN_SIZE,
    PUK_RETRIES,
    check_pin,
    check_puk,
    decrypt,
    derive_key,
    encrypt,
    pin_hash,
    sign_request_message,
    verify_pin_auth,
)
from protocol.signing import (
    PAYMENT_REQUEST_FIELDS,
    Algorithm,
    KeyAgreementBinding,
    PaymentAuthorization,
    ProvisioningAttestation,
    SessionChallenge,
    public_key_bytes,
    sign,
)

Clock = Callable[[], float]
FIRMWARE_VERSION = "1.0.0"
PIN_TOKEN_LIFETIME = 120.0  # seconds, docs/protocol.md §6.3
MAX_PING = 8000
MAX_CERT = 4096
CAPABILITIES = ["pin2", "idempotent-sign", "keepalive", "cancel", "attest"]
COUNTER_MAX = 0xFFFFFFFF


class Refusal(Exception):
    """A command is answered with a non-OK status; ``extra`` goes into the error body."""

    def __init__(self, status: Status, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


@functools.lru_cache(maxsize=256)
def _private_key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


def blob_param(params: dict[str, Any], name: str, lo: int, hi: int) -> bytes:
    value = params.get(name)
    if not isinstance(value, bytes) or not lo <= len(value) <= hi:
        raise Refusal(Status.INVALID_PARAMETER, f"'{name}' must be a byte string of {lo}..{hi}")
    return value


def uint_param(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Refusal(Status.INVALID_PARAMETER, f"'{name}' must be an unsigned integer")
    return value


def _digest(secret: str) -> bytes:
    # A secure element compares against a stored hash too; the store is encrypted besides.
    return hashlib.sha256(b"TVPAY/SECRET\x00" + secret.encode("ascii")).digest()


class Firmware:
    """One powered-up dongle. Create a new instance to model a power cycle."""

    def __init__(self, store: DongleStore, clock: Clock, state: DongleState | None = None) -> None:
        self._store = store
        self._clock = clock
        self._state = state if state is not None else store.load()
        self._agreement = ec.generate_private_key(ec.SECP256R1())
        self._token: bytes | None = None
        self._token_at = 0.0
        self._handlers: dict[Command, Callable[[dict[str, Any]], dict[str, Any]]] = {
            Command.PING: self._ping,
            Command.GET_INFO: self._get_info,
            Command.GET_KEY_AGREEMENT: self._get_key_agreement,
            Command.ATTEST: self._attest,
            Command.GENERATE_KEY: self._generate_key,
            Command.READ_CERT: self._read_cert,
            Command.WRITE_CERT: self._write_cert,
            Command.SET_PIN: self._set_pin,
            Command.CHANGE_PIN: self._change_pin,
            Command.GET_PIN_TOKEN: self._get_pin_token,
            Command.UNBLOCK_PIN: self._unblock_pin,
            Command.SIGN_PAYMENT: self._sign_payment,
            Command.SIGN_SESSION: self._sign_session,
            Command.LOCK: self._lock,
            Command.WIPE: self._wipe,
        }

    @property
    def serial(self) -> str:
        return self._state.serial

    @property
    def state(self) -> DongleState:
        return self._state

    def handle(self, request: Request) -> Response:
        try:
            self._finish_wipe()
            body = self._handlers[request.command](request.params)
        except Refusal as refusal:
            return Response(
                refusal.status, request.request_id, {"message": str(refusal), **refusal.extra}
            )
        return Response(Status.OK, request.request_id, body)

    # -- helpers ---------------------------------------------------------------------------

    def _commit(self, state: DongleState) -> None:
        try:
            self._store.save(state)
        except OSError as exc:
            raise Refusal(
                Status.STORE_FAILURE,
                f"the dongle could not save its state ({exc.strerror}); nothing changed",
            ) from None
        self._state = state

    def _require(self, *allowed: Lifecycle) -> DongleState:
        state = self._state
        if state.lifecycle not in allowed:
            raise Refusal(
                Status.WRONG_STATE,
                f"not allowed while the dongle is {state.lifecycle}",
                state=str(state.lifecycle),
            )
        return state

    def _payment_key(self) -> ec.EllipticCurvePrivateKey:
        assert self._state.payment_key is not None  # guarded by the lifecycle checks
        return _private_key(self._state.payment_key)

    def _shared_key(self, params: dict[str, Any]) -> bytes:
        peer = blob_param(params, "key_agreement", 65, 65)
        try:
            return derive_key(self._agreement, peer)
        except PinProtocolError:
            raise Refusal(
                Status.INVALID_PARAMETER, "'key_agreement' is not a P-256 point"
            ) from None

    def _open(self, key: bytes, params: dict[str, Any], name: str, aad: bytes) -> bytes:
        blob = blob_param(params, name, 28, 256)
        try:
            return decrypt(key, blob, aad)
        except PinProtocolError:
            raise Refusal(
                Status.PIN_AUTH_INVALID,
                f"'{name}' did not decrypt; fetch the key agreement key again",
            ) from None

    def _open_secret(self, key: bytes, params: dict[str, Any], name: str, aad: bytes) -> str:
        raw = self._open(key, params, name, aad)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise Refusal(Status.PIN_POLICY, "PINs and PUKs are ASCII digits") from None

    def _check_policy(self, pin: str, puk: str | None = None) -> None:
        try:
            check_pin(pin)
            if puk is not None:
                check_puk(puk)
        except PinPolicyError as exc:
            raise Refusal(Status.PIN_POLICY, str(exc)) from None

    def _verify_pin(self, key: bytes, params: dict[str, Any], **changes: Any) -> None:
        """Check ``pin_hash_enc`` as a smart card does (docs/protocol.md §6.4).

        The try is spent durably BEFORE the comparison: a power cut during that write leaves the
        old count but no comparison made, after it the try is gone whatever the PIN was, so
        cutting the power can never buy a free guess. A right PIN then commits the full count
        back together with ``changes`` (one write); a wrong one needs no further write, as
        the spent count (0 = blocked) is already stored."""
        state = self._state
        if state.pin_hash is None:
            raise Refusal(Status.PIN_NOT_SET, "no PIN is set; set one with SET_PIN")
        if state.pin_retries == 0:
            raise Refusal(Status.PIN_BLOCKED, "the PIN is blocked; unblock it with the PUK")
        offered = self._open(key, params, "pin_hash_enc", AAD_PIN_HASH)
        spent = dataclasses.replace(state, pin_retries=state.pin_retries - 1)
        self._commit(spent)
        if hmac.compare_digest(offered, state.pin_hash):
            self._commit(dataclasses.replace(spent, pin_retries=PIN_RETRIES, **changes))
            return
        self._agreement = ec.generate_private_key(ec.SECP256R1())
        if spent.pin_retries == 0:
            self._token = None
            raise Refusal(Status.PIN_BLOCKED, "wrong PIN; the PIN is now blocked", retries=0)
        raise Refusal(Status.PIN_INVALID, "wrong PIN", retries=spent.pin_retries)

    def _finish_wipe(self) -> None:
        """Complete a wipe that a power cut interrupted.

        Spending the last PUK try is committed before the PUK is compared, and a stored state
        with a PUK and no PUK tries left is a wipe in progress: nothing else runs on it. A power
        cut between spending the try and wiping (or restoring, for the right PUK) therefore
        leaves a dongle that wipes itself at its next command instead of one more guess."""
        state = self._state
        if state.puk_hash is not None and state.puk_retries == 0:
            self._commit(self._cleared(state))

    def _cleared(self, state: DongleState) -> DongleState:
        """State after a wipe: keeps the factory identity, key_rev and the counter."""
        self._token = None
        return DongleState(
            serial=state.serial,
            attestation_key=state.attestation_key,
            attestation_cert=state.attestation_cert,
            key_rev=state.key_rev,
            counter=state.counter,
        )

    # -- commands --------------------------------------------------------------------------

    def _ping(self, params: dict[str, Any]) -> dict[str, Any]:
        data = params.get("data", b"")
        if not isinstance(data, bytes) or len(data) > MAX_PING:
            raise Refusal(Status.INVALID_PARAMETER, f"'data' must be at most {MAX_PING} bytes")
        return {"data": data}

    def _get_info(self, params: dict[str, Any]) -> dict[str, Any]:
        if "version" in params:
            version = uint_param(params, "version")
            if version not in MESSAGE_VERSIONS:
                raise Refusal(
                    Status.UNSUPPORTED_VERSION,
                    f"message version {version} is not spoken; use one of {list(MESSAGE_VERSIONS)}",
                )
        state = self._state
        return {
            "serial": state.serial,
            "firmware": FIRMWARE_VERSION,
            "versions": list(MESSAGE_VERSIONS),
            "max_payload": MAX_PAYLOAD,
            "capabilities": CAPABILITIES,
            "algorithms": [int(Algorithm.ES256)],
            "state": str(state.lifecycle),
            "key_rev": state.key_rev,
            "counter": state.counter,
            "pin_set": state.pin_hash is not None,
            "pin_retries": state.pin_retries,
            "puk_retries": state.puk_retries,
            "certificate": state.certificate is not None,
        }

    def _get_key_agreement(self, params: dict[str, Any]) -> dict[str, Any]:
        """The key-agreement key, signed with the payment key over the host's nonce (§6.1)."""
        key = public_key_bytes(self._agreement.public_key())
        if "nonce" not in params:
            return {"key": key}  # unbound: for link tooling only, a host must refuse it
        nonce = blob_param(params, "nonce", 16, 64)
        state = self._state
        if state.payment_key is None:
            return {"key": key}  # nothing signs yet, and no PIN command runs before a payment key
        binding = KeyAgreementBinding(Algorithm.ES256, state.serial, state.key_rev, key, nonce)
        return {
            "key": key,
            "key_rev": state.key_rev,
            "signature": sign(self._payment_key(), binding.signed_bytes()),
        }

    def _attest(self, params: dict[str, Any]) -> dict[str, Any]:
        nonce = blob_param(params, "nonce", 16, 64)
        state = self._state
        public = public_key_bytes(self._payment_key().public_key()) if state.payment_key else b""
        payload = ProvisioningAttestation(
            Algorithm.ES256, state.serial, state.key_rev, public, nonce
        )
        return {
            "certificates": [state.attestation_cert],
            "public_key": public,
            "key_rev": state.key_rev,
            "signature": sign(_private_key(state.attestation_key), payload.signed_bytes()),
        }

    def _generate_key(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.FACTORY, Lifecycle.KEY_GENERATED)
        if state.key_rev >= COUNTER_MAX:
            raise Refusal(Status.OTHER, "the key revision counter is exhausted")
        key = ec.generate_private_key(ec.SECP256R1())
        self._commit(
            dataclasses.replace(
                state, payment_key=private_scalar(key), key_rev=state.key_rev + 1, certificate=None
            )
        )
        return {"public_key": public_key_bytes(key.public_key()), "key_rev": self._state.key_rev}

    def _read_cert(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"certificate": self._state.certificate}

    def _write_cert(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.KEY_GENERATED, Lifecycle.CERTIFIED)
        der = blob_param(params, "certificate", 1, MAX_CERT)
        try:
            cert = pki.parse_certificate(der)  # untrusted bytes: every fault becomes a refusal
        except MalformedCertificate as exc:
            raise Refusal(Status.INVALID_PARAMETER, f"'certificate' {exc.reason}") from None
        if pki.is_ca(cert):
            raise Refusal(
                Status.INVALID_PARAMETER, "'certificate' is a CA certificate, not a device's"
            )
        cert_key = cert.public_key()
        own = self._payment_key().public_key()
        if not isinstance(cert_key, ec.EllipticCurvePublicKey) or public_key_bytes(
            cert_key
        ) != public_key_bytes(own):
            raise Refusal(
                Status.KEY_MISMATCH,
                "the certificate does not certify this dongle's payment key; "
                "issue it for the key GENERATE_KEY returned",
            )
        self._commit(dataclasses.replace(state, certificate=der))
        return {}

    def _set_pin(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.CERTIFIED)
        if state.pin_hash is not None:
            raise Refusal(
                Status.WRONG_STATE,
                "a PIN is already set; use CHANGE_PIN",
                state=str(state.lifecycle),
            )
        key = self._shared_key(params)
        pin = self._open_secret(key, params, "new_pin_enc", AAD_NEW_PIN)
        puk = self._open_secret(key, params, "puk_enc", AAD_PUK)
        self._check_policy(pin, puk)
        self._commit(
            dataclasses.replace(
                state,
                pin_hash=pin_hash(pin),
                puk_hash=_digest(puk),
                pin_retries=PIN_RETRIES,
                puk_retries=PUK_RETRIES,
            )
        )
        return {}

    def _change_pin(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.CERTIFIED, Lifecycle.LOCKED, Lifecycle.PIN_BLOCKED)
        if state.pin_hash is None:
            raise Refusal(Status.PIN_NOT_SET, "no PIN is set; set one with SET_PIN")
        key = self._shared_key(params)
        new_pin = self._open_secret(key, params, "new_pin_enc", AAD_NEW_PIN)
        self._check_policy(new_pin)
        self._verify_pin(key, params, pin_hash=pin_hash(new_pin))
        self._token = None
        return {}

    def _get_pin_token(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(Lifecycle.LOCKED, Lifecycle.PIN_BLOCKED)
        key = self._shared_key(params)
        self._verify_pin(key, params)
        self._token = os.urandom(PIN_TOKEN_SIZE)
        self._token_at = self._clock()
        return {"pin_token_enc": encrypt(key, self._token, AAD_PIN_TOKEN)}

    def _unblock_pin(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.LOCKED, Lifecycle.PIN_BLOCKED)
        key = self._shared_key(params)
        puk = self._open_secret(key, params, "puk_enc", AAD_PUK)
        new_pin = self._open_secret(key, params, "new_pin_enc", AAD_NEW_PIN)
        self._check_policy(new_pin)
        assert state.puk_hash is not None  # a locked dongle always has a PUK
        # Spent before comparing, as for the PIN; spending the last try starts the wipe.
        spent = dataclasses.replace(state, puk_retries=state.puk_retries - 1)
        self._commit(spent)
        if hmac.compare_digest(_digest(puk), state.puk_hash):
            self._commit(
                dataclasses.replace(
                    spent,
                    pin_hash=pin_hash(new_pin),
                    pin_retries=PIN_RETRIES,
                    puk_retries=PUK_RETRIES,
                )
            )
            return {}
        self._agreement = ec.generate_private_key(ec.SECP256R1())
        if spent.puk_retries == 0:
            self._finish_wipe()
            raise Refusal(Status.WIPED, "wrong PUK for the last time: the dongle wiped itself")
        raise Refusal(Status.PUK_INVALID, "wrong PUK", retries=spent.puk_retries)

    def _check_token(self, params: dict[str, Any], message: bytes) -> None:
        tag = blob_param(params, "pin_auth", 16, 16)
        if self._token is None:
            raise Refusal(Status.PIN_AUTH_INVALID, "no PIN token was issued; ask for the PIN")
        if self._clock() - self._token_at > PIN_TOKEN_LIFETIME:
            self._token = None
            raise Refusal(Status.PIN_TOKEN_EXPIRED, "the PIN token expired; ask for the PIN again")
        if not verify_pin_auth(self._token, message, tag):
            raise Refusal(Status.PIN_AUTH_INVALID, "'pin_auth' does not match the fields")

    def _sign_payment(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._state
        if state.lifecycle is Lifecycle.PIN_BLOCKED:
            raise Refusal(Status.PIN_BLOCKED, "the PIN is blocked; unblock it with the PUK")
        state = self._require(Lifecycle.LOCKED)
        fields = params.get("fields")
        if not isinstance(fields, dict) or set(fields) != set(PAYMENT_REQUEST_FIELDS):
            raise Refusal(
                Status.INVALID_PARAMETER,
                f"'fields' must be a map of exactly: {', '.join(PAYMENT_REQUEST_FIELDS)}",
            )
        message = sign_request_message(fields)
        self._check_token(params, message)
        digest = hashlib.sha256(message).digest()
        for entry in state.signed:
            if entry.payment_id == fields["payment_id"]:
                if entry.fields_digest != digest:
                    raise Refusal(
                        Status.CONFLICT, "this payment id was already signed with other fields"
                    )
                return self._signature_body(entry.counter, entry.signature, replayed=True)
        if state.counter >= COUNTER_MAX:
            raise Refusal(Status.OTHER, "the signature counter is exhausted; replace the dongle")
        counter = state.counter + 1
        try:
            payload = PaymentAuthorization(
                alg=Algorithm.ES256,
                dongle_id=state.serial,
                key_rev=state.key_rev,
                counter=counter,
                **fields,
            )
        except (PayloadError, TypeError) as exc:
            raise Refusal(Status.INVALID_PARAMETER, str(exc)) from None
        signature = sign(self._payment_key(), payload.signed_bytes())
        entry = SignedPayment(fields["payment_id"], digest, counter, signature)
        cache = (*state.signed, entry)[-SIGN_CACHE_SIZE:]
        self._commit(dataclasses.replace(state, counter=counter, signed=cache))
        return self._signature_body(counter, signature, replayed=False)

    def _signature_body(self, counter: int, signature: bytes, *, replayed: bool) -> dict[str, Any]:
        return {
            "dongle_id": self._state.serial,
            "key_rev": self._state.key_rev,
            "counter": counter,
            "signature": signature,
            "replayed": replayed,
        }

    def _sign_session(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.LOCKED, Lifecycle.PIN_BLOCKED)
        try:
            payload = SessionChallenge(
                alg=Algorithm.ES256,
                gateway_id=params.get("gateway_id"),  # type: ignore[arg-type]
                dongle_id=state.serial,
                key_rev=state.key_rev,
                challenge=params.get("challenge"),  # type: ignore[arg-type]
                timestamp=params.get("timestamp"),  # type: ignore[arg-type]
            )
        except PayloadError as exc:
            raise Refusal(Status.INVALID_PARAMETER, str(exc)) from None
        return {
            "dongle_id": state.serial,
            "key_rev": state.key_rev,
            "signature": sign(self._payment_key(), payload.signed_bytes()),
        }

    def _lock(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._require(Lifecycle.CERTIFIED)
        if state.pin_hash is None:
            raise Refusal(Status.PIN_NOT_SET, "set the PIN and PUK before locking the dongle")
        self._commit(dataclasses.replace(state, locked=True))
        return {}

    def _wipe(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("confirm") != "WIPE":
            raise Refusal(Status.INVALID_PARAMETER, "send confirm='WIPE' to wipe the dongle")
        self._commit(self._cleared(self._state))
        self._agreement = ec.generate_private_key(ec.SECP256R1())
        return {}
