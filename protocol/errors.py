"""Typed errors of the protocol layer: framing, message decoding and dongle status codes."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by the protocol package."""


class FrameError(ProtocolError):
    """A frame on the link was rejected; the decoder has already resynchronised."""


class FrameHeaderError(FrameError):
    """The frame header failed its check value: bytes were lost or corrupted on the link."""


class FrameVersionError(FrameError):
    """The frame uses a link version this side does not speak."""


class FrameLengthError(FrameError):
    """The frame announces a payload longer than the maximum frame size."""


class FrameTypeError(FrameError):
    """The frame type byte is not one of the defined frame types."""


class FrameCrcError(FrameError):
    """The frame's CRC-32 does not match its bytes: the frame was corrupted on the link."""


class MessageError(ProtocolError):
    """A frame arrived intact but its message payload is malformed."""


class PayloadError(ProtocolError):
    """Fields for a signed payload are missing, of the wrong type or out of range."""


class PinProtocolError(ProtocolError):
    """A PIN protocol value could not be decrypted or verified (wrong key or tampered bytes)."""


class PinPolicyError(PinProtocolError):
    """A PIN or PUK does not meet the policy (6-digit PIN, 8-digit PUK, not trivially guessable)."""


class DongleError(ProtocolError):
    """The dongle answered a request with a non-OK status.

    ``status`` is the protocol status code; ``body`` the error map the dongle sent.
    """

    advice = "see docs/protocol.md §4.2"

    def __init__(self, status: int, message: str = "", body: dict | None = None) -> None:
        self.status = status
        self.body = body or {}
        text = message or self.body.get("message") or type(self).__name__
        super().__init__(f"{text} ({self.advice})" if self.advice else text)


class DongleWrongState(DongleError):
    advice = "the dongle is not in a lifecycle state that allows this; check 'tvpay-dongle info'"


class DonglePinInvalid(DongleError):
    advice = "wrong PIN; try again"

    @property
    def retries(self) -> int:
        value = self.body.get("retries", 0)
        return value if isinstance(value, int) else 0


class DonglePinBlocked(DongleError):
    advice = "PIN blocked after too many wrong tries; telecom staff can unblock it with the PUK"


class DonglePinAuthInvalid(DongleError):
    advice = "the PIN authorization did not verify; ask for the PIN again"


class DonglePinTokenExpired(DongleError):
    advice = "the PIN was typed too long ago; ask for it again"


class DonglePinPolicy(DongleError):
    advice = "choose a 6-digit PIN (8-digit PUK) that is not a repeated digit or a run"


class DonglePukInvalid(DonglePinInvalid):
    advice = "wrong PUK; check the PUK letter for this dongle"


class DongleWiped(DongleError):
    advice = "too many wrong PUKs: the dongle wiped itself and must be provisioned again"


class DongleConflict(DongleError):
    advice = "this payment id was already signed with different fields; create a new payment"


class DongleCancelled(DongleError):
    advice = ""


class DongleBusy(DongleError):
    advice = "the dongle is still working on another request; retry shortly"


_BY_STATUS: dict[int, type[DongleError]] = {
    0x06: DongleBusy,
    0x07: DongleWrongState,
    0x10: DonglePinInvalid,
    0x11: DonglePinBlocked,
    0x12: DonglePinAuthInvalid,
    0x13: DongleWrongState,
    0x14: DonglePinPolicy,
    0x15: DonglePinTokenExpired,
    0x16: DonglePukInvalid,
    0x17: DongleWiped,
    0x21: DongleConflict,
    0x2D: DongleCancelled,
}


def dongle_error(status: int, body: dict | None = None) -> DongleError:
    """The typed exception for a non-OK status the dongle answered."""
    return _BY_STATUS.get(status, DongleError)(status, body=body)


class CertificateError(ProtocolError):
    """Bytes that should hold a certificate or a private key do not; the message is a clause
    ("holds no PEM certificate") for the caller to put after the file's name."""


class MalformedCertificate(CertificateError):
    """A certificate that cannot be read, or breaks the profile every TVPay certificate follows
    (P-256 key, ECDSA-SHA256 signature, basicConstraints and keyUsage that agree, no critical
    extension we do not understand, notBefore <= notAfter).

    ``code`` names the fault for machines (``duplicate_extension``, ``key_unsupported``, ...);
    ``reason`` is a clause about the certificate ("has the extension 2.5.29.19 twice") for
    callers that name the certificate themselves.
    """

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"holds a certificate that {reason}")


class AttestationError(ProtocolError):
    """A dongle's factory attestation did not verify: the dongle is not proven genuine.

    ``reason`` is the clause that says what failed, for callers that phrase their own sentence;
    ``code`` names the failed check for machines (a MalformedCertificate code, or one of
    ``chain_length``, ``chain_loop``, ``chain_broken``, ``leaf_is_ca``, ``issuer_not_ca``,
    ``not_yet_valid``, ``expired``, ``untrusted_manufacturer``, ``serial_mismatch``,
    ``attestation_malformed``, ``signature_invalid``, ``no_trusted_ca``).
    """

    def __init__(self, dongle_id: str, reason: str, message: str = "", *, code: str) -> None:
        self.dongle_id = dongle_id
        self.reason = reason
        self.code = code
        super().__init__(
            message
            or f"dongle {dongle_id} failed the genuineness check: {reason}; set it aside and "
            "report it"
        )


class UntrustedManufacturer(AttestationError):
    """The attestation chain is sound but ends at a CA that is not among the trusted ones."""

    def __init__(self, dongle_id: str, issuer: str) -> None:
        super().__init__(
            dongle_id,
            f"the chain does not lead to a trusted manufacturer CA (it ends at '{issuer}')",
            f"dongle {dongle_id} was not made by a trusted manufacturer: its attestation chain "
            f"ends at a CA named '{issuer}' whose key is not that of any trusted manufacturer "
            "CA; set the dongle aside and report it, or check which manufacturer CAs are "
            "configured",
            code="untrusted_manufacturer",
        )
