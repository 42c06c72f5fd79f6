"""A damaged, missing or unwritable payment journal, met by the real app at start.

Each case signs real payments with the real dongle while the network is cut (so they stay
signed and unconfirmed in the journal), damages the journal file on disk, then starts the app
as a process through tvpay-tv's own start-up (tests/tvapp/boot_probe.py) against the real
gateway and daemon, and checks: the screen the household sees, in its language; the damaged
file kept; the signed payments that survived resent and paid exactly once at the gateway; the
ones that did not survive never sent; one log line; no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.dongles import TEST_PIN
from tests.tvapp.netcut import NetworkCut
from tests.tvapp.test_startup import tv_env
from tests.tvapp.world import JOURNAL_ACCOUNT_NO, World
from tvapp.config import TvConfig
from tvapp.i18n import translations
from tvapp.journal import Journal, JournalEntry
from tvapp.journal_startup import marker_path
from tvapp.services.container import JOURNAL_FILE, Services
from tvapp.services.payments import PaymentPending
from tvapp.services.records import Bill
from tvapp.ui.confirmation import confirmation_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Started:
    screen: dict
    stderr: str
    state: Path


def _services(world: World, url: str, state: Path) -> Services:
    config = TvConfig(gateway_url=url, daemon_socket=str(world.daemon_socket), state_dir=str(state))
    return Services.build(config)


@pytest.fixture(scope="module")
def tv_bills(
    world: World, network: NetworkCut, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Bill]]:
    services = _services(world, network.url, tmp_path_factory.mktemp("bind"))
    account = services.session.call(
        lambda gw: gw.bind_account("tv", JOURNAL_ACCOUNT_NO, holder_name=world.household["name"])
    )
    bills = services.session.call(lambda gw: gw.bills(account.account_id))
    services.close()
    yield [b for b in bills if b.status == "unpaid"]


def _sign_unconfirmed(
    world: World, network: NetworkCut, state: Path, bills: list[Bill]
) -> list[JournalEntry]:
    """Sign a payment of each bill with the dongle while the network is down: each stays in
    the journal at ``state`` as a signed, unconfirmed authorization."""
    services = _services(world, network.url, state)
    try:
        for bill in bills:
            prepared = services.payments.prepare(bill)
            text = confirmation_for(bill, translations("en").gettext).text
            network.cut()
            try:
                with pytest.raises(PaymentPending):
                    services.payments.pay(prepared, TEST_PIN, text, lambda _step: None)
            finally:
                network.restore()
        return services.journal.unconfirmed()
    finally:
        services.close()


def _start(world: World, state: Path, language: str, wrap: list[str] | None = None) -> Started:
    """Start the app on ``state`` as its own process; what it showed once settled."""
    probe = [sys.executable, "-m", "tests.tvapp.boot_probe", "--no-evdev"]
    probe += ["--state-dir", str(state), "--gateway-url", world.gateway_url]
    probe += ["--daemon-socket", str(world.daemon_socket), "--language", language]
    done = subprocess.run(
        [*(wrap or []), *probe],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=tv_env(state.parent),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return Started(json.loads(done.stdout.strip().splitlines()[-1]), done.stderr, state)


def _gateway_status(world: World, payment_ids: list[str]) -> dict[str, list[str]]:
    """Each payment's status as the gateway records it (one entry per record found)."""
    services = _services(world, world.gateway_url, Path(world.daemon_socket).parent / "gw-view")
    try:
        records = services.session.call(lambda gw: gw.payments(100))
    finally:
        services.close()
    return {pid: [r.status for r in records if r.payment_id == pid] for pid in payment_ids}


def _counter(world: World) -> int:
    from dongle.client import DaemonClient

    client = DaemonClient(str(world.daemon_socket), client_name="tvapp-tests")
    try:
        return client.info().counter
    finally:
        client.close()


def _kept(state: Path) -> Path:
    kept = sorted(state.glob(f"{JOURNAL_FILE}.damaged-*"))
    assert len(kept) == 1 and not kept[0].name.endswith(("-wal", "-shm")), kept
    return kept[0]


def _one_log_line(started: Started, event: str) -> None:
    lines = [line for line in started.stderr.splitlines() if f"event={event}" in line]
    assert len(lines) == 1, started.stderr[-3000:]


def _reopened(state: Path) -> Journal:
    return Journal(state / JOURNAL_FILE)


def _assert_paid_once(world: World, state: Path, resent: list[JournalEntry]) -> None:
    ids = [e.payment_id for e in resent]
    assert _gateway_status(world, ids) == {pid: ["succeeded"] for pid in ids}
    journal = _reopened(state)
    try:
        assert {e.payment_id: e.state for e in journal.entries() if e.payment_id in ids} == {
            pid: "succeeded" for pid in ids
        }
    finally:
        journal.close()


def _assert_never_sent(world: World, lost: list[JournalEntry]) -> None:
    statuses = _gateway_status(world, [e.payment_id for e in lost])
    assert all("succeeded" not in s for s in statuses.values()), statuses


def test_a_journal_cut_to_zero_bytes_is_reported_not_taken_for_a_first_start(
    world: World, network: NetworkCut, tv_bills: list[Bill], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    lost = _sign_unconfirmed(world, network, state, tv_bills[0:1])
    (state / JOURNAL_FILE).write_bytes(b"")
    started = _start(world, state, "en")
    assert started.screen["screen"] == "journal" and started.screen["state"] == "damaged_empty"
    texts = started.screen["texts"]
    assert "Payment records were damaged" in texts
    assert (
        "This box's payment records were damaged and nothing in them could be recovered. "
        "Call telecom support if a bill shows unpaid." in texts
    )
    kept = _kept(state)
    assert f"For staff: the damaged records are kept as {kept.name}." in texts
    # The dongle signed what the new journal has no record of: staff are told how many.
    unknown = _counter(world)
    assert (
        f"For staff: the payment dongle has signed {unknown} payment(s) this box has no record "
        "of. Check this box's payments with the gateway." in texts
    )
    assert kept.read_bytes() == b""
    _one_log_line(started, "journal_damaged")
    assert "event=journal_unknown_signatures" in started.stderr
    _assert_never_sent(world, lost)


def test_a_journal_truncated_mid_record_keeps_the_payments_before_the_cut(
    world: World, network: NetworkCut, tv_bills: list[Bill], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first, second = _sign_unconfirmed(world, network, state, tv_bills[1:3])
    data = (state / JOURNAL_FILE).read_bytes()
    # SQLite fills a page from its end: the first payment's row lies after the second's.
    at = data.find(first.local_id.encode())
    assert 0 < data.find(second.local_id.encode()) < at < 2 * 4096
    damaged = data[: at + 40]
    (state / JOURNAL_FILE).write_bytes(damaged)
    started = _start(world, state, "zh_CN")
    assert started.screen["screen"] == "journal" and started.screen["state"] == "damaged"
    texts = started.screen["texts"]
    assert "缴费记录已损坏" in texts
    assert (
        "这台机顶盒的缴费记录已损坏。已签名的缴费已保留，将自动发送。"
        "如有账单显示未缴，请致电电信客服。" in texts
    )
    assert _kept(state).read_bytes() == damaged
    _one_log_line(started, "journal_damaged")
    _assert_paid_once(world, state, [second])
    _assert_never_sent(world, [first])


def test_a_journal_with_a_garbage_header_is_salvaged_and_resent(
    world: World, network: NetworkCut, tv_bills: list[Bill], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    signed = _sign_unconfirmed(world, network, state, tv_bills[3:4])
    data = (state / JOURNAL_FILE).read_bytes()
    damaged = b"\xa5" * 100 + data[100:]
    (state / JOURNAL_FILE).write_bytes(damaged)
    started = _start(world, state, "zh_TW")
    assert started.screen["screen"] == "journal" and started.screen["state"] == "damaged"
    texts = started.screen["texts"]
    assert "繳費記錄已損壞" in texts
    assert (
        "這台機上盒的繳費記錄已損壞。已簽名的繳費已保留，將自動傳送。"
        "如有帳單顯示未繳，請致電電信客服。" in texts
    )
    kept = _kept(state)
    assert f"工作人員：損壞的記錄已保存為 {kept.name}。" in texts
    assert kept.read_bytes() == damaged
    _one_log_line(started, "journal_damaged")
    _assert_paid_once(world, state, signed)


def test_a_bit_flipped_record_is_not_resent_and_the_intact_one_is(
    world: World, network: NetworkCut, tv_bills: list[Bill], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    flipped, intact = _sign_unconfirmed(world, network, state, tv_bills[4:6])
    data = bytearray((state / JOURNAL_FILE).read_bytes())
    # One bit of the stored signature: SQLite's own checks cannot see it, the row checksum can.
    at = data.find(flipped.authorization["signature"].encode()) + 10
    data[at] ^= 0x04
    (state / JOURNAL_FILE).write_bytes(bytes(data))
    started = _start(world, state, "en")
    assert started.screen["state"] == "damaged"
    assert (
        "This box's payment records were damaged. Payments already signed have been kept and "
        "will be sent. Call telecom support if a bill shows unpaid." in started.screen["texts"]
    )
    assert _kept(state).read_bytes() == bytes(data)
    _one_log_line(started, "journal_damaged")
    assert "rejected=1" in started.stderr
    _assert_paid_once(world, state, [intact])
    _assert_never_sent(world, [flipped])


def test_an_unwritable_journal_pauses_paying_but_still_sends_signed_payments(
    world: World, network: NetworkCut, tv_bills: list[Bill], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    signed = _sign_unconfirmed(world, network, state, tv_bills[6:7])
    journal = state / JOURNAL_FILE
    before = journal.read_bytes()
    # A read-only bind mount over the journal, in a mount namespace of the app's own: not even
    # root can write it or rename it away (file modes would not stop root).
    mount = (
        f'mount --bind "{journal}" "{journal}" && mount -o remount,bind,ro "{journal}" && exec "$@"'
    )
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"]
    started = _start(world, state, "en", wrap)
    assert started.screen["screen"] == "journal" and started.screen["state"] == "unwritable"
    texts = started.screen["texts"]
    assert "Paying is paused on this box" in texts
    assert (
        "This box cannot save payment records, so paying is paused. You can still see your "
        "bills, and payments already signed will be sent. Call telecom support." in texts
    )
    assert journal.read_bytes() == before  # kept where it is, untouched
    assert not list(state.glob(f"{JOURNAL_FILE}.damaged-*"))
    _one_log_line(started, "journal_damaged")
    assert "paying=paused" in started.stderr
    ids = [e.payment_id for e in signed]
    assert _gateway_status(world, ids) == {pid: ["succeeded"] for pid in ids}


def test_a_directory_in_place_of_the_journal_is_moved_aside_and_paying_resumes(
    world: World, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    (state / JOURNAL_FILE).mkdir(parents=True)
    (state / JOURNAL_FILE / "left-here").write_text("staff notes")
    started = _start(world, state, "en")
    assert started.screen["state"] == "damaged_empty"
    kept = _kept(state)
    assert (kept / "left-here").read_text() == "staff notes"
    _one_log_line(started, "journal_damaged")
    journal = _reopened(state)  # a fresh, sound journal: payments can be journaled again
    try:
        assert journal.durable and journal.entries() == []
    finally:
        journal.close()


def test_a_journal_gone_from_a_box_that_had_one_is_reported_missing(
    world: World, network: NetworkCut, tv_bills: list[Bill], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    lost = _sign_unconfirmed(world, network, state, tv_bills[7:8])
    (state / JOURNAL_FILE).unlink()
    started = _start(world, state, "en")
    assert started.screen["screen"] == "journal" and started.screen["state"] == "missing"
    texts = started.screen["texts"]
    assert "Payment records are missing" in texts
    assert (
        "This box's payment records are missing. Payments signed before may not have been "
        "sent. Call telecom support if a bill shows unpaid." in texts
    )
    assert any(t.startswith("For staff: the payment dongle has signed ") for t in texts)
    _one_log_line(started, "journal_missing")
    _assert_never_sent(world, lost)


def test_a_first_start_without_a_journal_is_a_clean_start(world: World, tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = _start(world, state, "en")
    assert started.screen["screen"] == "home"
    assert "event=journal_damaged" not in started.stderr
    assert "event=journal_missing" not in started.stderr
    assert (state / JOURNAL_FILE).is_file() and not list(state.glob("*.damaged-*"))
    # The marker that lets a later start tell a journal gone missing from a first start.
    assert marker_path(state / JOURNAL_FILE).is_file()
