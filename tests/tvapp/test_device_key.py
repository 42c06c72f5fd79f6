"""The app trusts a key agreement only when the payment key the gateway registered for the dongle
signed it (docs/protocol.md §6.1): real gateway, real daemon, real virtual dongle; the daemon's
part is played by a wrapper around the real client that substitutes its own key."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dongle.client import DaemonClient, KeyAgreementOffer, Priority
from protocol.signing import public_key_bytes
from tests.fixtures.dongle_keys import attested_key
from tests.tvapp.world import World
from tvapp.i18n import translations
from tvapp.services.dongle import DeviceUnverified, DongleService
from tvapp.services.gateway import Gateway
from tvapp.services.session import DeviceSession
from tvapp.ui.labels import STATES

SIGN_FIELDS = {"challenge": base64.b64encode(bytes(32)).decode()}


class SubstitutingDaemon(DaemonClient):
    """The payer's connection to the real daemon, answering key_agreement as a compromised daemon
    would (its own key, the dongle's signature kept or dropped), and recording every PIN value."""

    def __init__(self, socket_path: str, *, keep_signature: bool) -> None:
        super().__init__(socket_path, client_name="tvapp-pay", priority=Priority.HIGH)
        self.keep_signature = keep_signature
        self.own = ec.generate_private_key(ec.SECP256R1())
        self.relayed: list[dict[str, Any]] = []

    def key_agreement(self, nonce: bytes, serial: str | None = None) -> KeyAgreementOffer:
        real = super().key_agreement(nonce, serial)
        signature = real.signature if self.keep_signature else None
        return KeyAgreementOffer(public_key_bytes(self.own.public_key()), signature)

    def pin_token(self, *args: Any, **kwargs: Any) -> bytes:
        self.relayed.append({"args": args, "kwargs": kwargs})
        return super().pin_token(*args, **kwargs)


@pytest.fixture
def session(world: World) -> Any:
    dongle = DongleService(str(world.daemon_socket))
    session = DeviceSession(Gateway(world.gateway_url), dongle)
    yield session
    dongle.close()


def test_the_session_keeps_the_key_the_gateway_registered(world: World, session: Any) -> None:
    session.open()
    with DaemonClient(str(world.daemon_socket), client_name="tvapp-tests") as client:
        assert session.dongle_key == attested_key(client, world.serial)


@pytest.mark.parametrize("keep_signature", [True, False], ids=["swapped-key", "unsigned"])
def test_a_substituted_key_agreement_gets_no_pin(
    world: World, session: Any, caplog: pytest.LogCaptureFixture, keep_signature: bool
) -> None:
    session.open()
    evil = SubstitutingDaemon(str(world.daemon_socket), keep_signature=keep_signature)
    session.dongle.payer.close()
    session.dongle.payer = evil
    with caplog.at_level(logging.WARNING, "tvapp.dongle"), pytest.raises(DeviceUnverified):
        session.dongle.sign_payment(SIGN_FIELDS, world.pin)
    assert evil.relayed == []
    assert f"event=key_agreement_unverified dongle={world.serial}" in caplog.text
    assert world.pin not in caplog.text


def test_without_a_session_nothing_is_trusted(world: World, session: Any) -> None:
    session.open()
    session.forget()
    with pytest.raises(DeviceUnverified):
        session.dongle.sign_payment(SIGN_FIELDS, world.pin)


@pytest.mark.parametrize(
    ("language", "title"),
    [
        ("en", "This payment device could not be verified"),
        ("zh_CN", "无法验证此支付设备"),
        ("zh_TW", "無法驗證此支付裝置"),
    ],
)
def test_the_household_reads_why_in_its_language(language: str, title: str) -> None:
    assert translations(language).gettext(STATES["unverified"].title) == title
