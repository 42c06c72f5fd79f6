"""Real virtual dongles (emulator firmware through pyusb, tests.fixtures.dongles) provisioned
against a gateway under test, with the same surface as ``helpers.TestDongle`` where the gateway
helpers need it: ``dongle_id``, ``key_rev``, ``attest``, ``sign_session`` and ``sign_payment``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dongle.usblink import DongleLink
from emulator.firmware.factory import load_or_create_ca
from protocol.display import display_hash
from protocol.messages import Command
from tests.fixtures.dongles import in_process_bus, open_link, pin_token, provision, sign_payment
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, b64, shown_text, unb64


@contextmanager
def factory(directory: Path, count: int) -> Iterator[tuple[Manufacturer, list[DongleLink]]]:
    """``count`` factory-fresh dongles on an in-process bus, and their manufacturer CA (for the
    gateway's configuration); the links are closed on exit."""
    ca = load_or_create_ca(directory)
    bus, backend = in_process_bus(directory, count)
    links = [open_link(backend, dongle.serial) for dongle in bus.dongles()]
    try:
        yield Manufacturer(ca.authority, ca.cert_path), links
    finally:
        for link in links:
            link.close()


@dataclass
class FirmwareDongle:
    link: DongleLink
    key_rev: int = 0

    __test__ = False  # not a pytest class

    @property
    def dongle_id(self) -> str:
        return self.link.serial

    def attest(self, nonce: bytes) -> dict[str, Any]:
        answer = self.link.call(Command.ATTEST, {"nonce": nonce})
        return {
            "dongle_id": self.dongle_id,
            "key_rev": answer["key_rev"],
            "public_key": b64(answer["public_key"]),
            "nonce": b64(nonce),
            "signature": b64(answer["signature"]),
            "certificates": [b64(cert) for cert in answer["certificates"]],
        }

    def sign_session(self, challenge: dict[str, Any]) -> dict[str, Any]:
        params = {
            "gateway_id": challenge["gateway_id"],
            "challenge": unb64(challenge["challenge"]),
            "timestamp": challenge["timestamp"],
        }
        answer = self.link.call(Command.SIGN_SESSION, params)
        return {
            "key_rev": answer["key_rev"],
            "challenge": challenge["challenge"],
            "timestamp": challenge["timestamp"],
            "signature": b64(answer["signature"]),
        }

    def sign_payment(self, fields: dict[str, Any]) -> dict[str, Any]:
        """SIGN_PAYMENT after the PIN: the authorize body for the gateway's ``sign_fields``."""
        text = shown_text(fields)
        request = {
            **fields,
            "challenge": unb64(fields["challenge"]),
            "display_hash": display_hash(text),
        }
        answer = sign_payment(self.link, pin_token(self.link), request)
        return {
            "dongle_id": answer["dongle_id"],
            "key_rev": answer["key_rev"],
            "counter": answer["counter"],
            "signature": b64(answer["signature"]),
            "display_text": text,
        }


@dataclass(frozen=True)
class _GatewayCertificates:
    """Stands in for the operator CA in ``tests.fixtures.dongles.provision``: the device
    certificate comes from registering the freshly generated key with the gateway."""

    gw: GatewayUnderTest
    dongle: FirmwareDongle
    household_no: str

    def issue(self, public_key: bytes, serial: str) -> bytes:
        registered = self.gw.register(self.dongle, self.household_no)
        assert registered.status_code == 201, registered.text
        assert registered.json()["public_key"] == b64(public_key)
        return unb64(registered.json()["certificate"])


def provision_for(gw: GatewayUnderTest, link: DongleLink, household_no: str) -> FirmwareDongle:
    """GENERATE_KEY, register with the gateway, WRITE_CERT, PIN, LOCK, then activate."""
    dongle = FirmwareDongle(link)
    done = provision(link, ca=_GatewayCertificates(gw, dongle, household_no))  # type: ignore[arg-type]
    dongle.key_rev = done.key_rev
    activated = gw.activate(dongle)  # type: ignore[arg-type]
    assert activated.status_code == 200, activated.text
    return dongle
