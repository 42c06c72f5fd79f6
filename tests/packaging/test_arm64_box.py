"""tvpay-box for arm64, installed with apt into an arm64 Debian 12 root and run there under
qemu (binfmt_misc), as on a set-top box: its commands, its one-line failures, its daemon
against the emulator's virtual dongle and its TV app against the emulator's gateway, paying
one bill with the PIN through the automation API; then an upgrade that keeps the journal.

Slow (make test-slow): the root is built once and cached (tests/packaging/foreign_root.py);
emulation makes every program several times slower, so only correctness is checked here.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from emulator.automation.client import AutomationClient
from tests.e2e.flows import confirm_and_wait_receipt, start_payment, type_pin
from tests.e2e.stack import Ledger, RunningStack, start_stack, unpaid_account, wait_until
from tests.packaging import foreign_root
from tests.packaging.conftest import ROOT, built_deb, host_architecture
from tests.packaging.test_installed_box import wait_ready

# The first run builds the cached root (mmdebstrap, about 20 minutes on a busy machine) in the
# first test's set-up; the end-to-end payment takes several minutes under emulation.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

ARCH = "arm64"
DEBS = "/tmp/debs"
HARNESS = "/opt/tvpay-test"  # the emulator package and the automation harness, in the root
JOURNAL = "/var/lib/tvpay/tvapp/journal.sqlite3"
EMULATED_START = 600.0  # seconds: Python, Kivy and Mesa start an order of magnitude slower
EMULATED_WAIT = 300.0  # the automation API's longest wait for a screen
SCREENSHOT = ROOT / "test-output" / "arm64-box-receipt.png"
MESSAGE_VECTORS = ROOT / "tests/vectors/messages.json"
# (target, unit) from each unit's WantedBy: how systemd sees the units enabled at first boot.
ENABLED_UNITS = (
    ("sockets.target", "tvpay-dongled.socket"),
    ("multi-user.target", "tvpay-dongled.service"),
    ("graphical.target", "tvpay-tv.service"),
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Host directory seen at the same path inside the root: the stack's sockets and files."""
    return tmp_path_factory.mktemp("arm64-shared")


@pytest.fixture(scope="module")
def site() -> Path:
    """The automation API's libraries for arm64, for the harness inside the root."""
    reason = foreign_root.emulation_unavailable(ARCH)
    if reason:
        pytest.skip(f"{ARCH} emulation unavailable: {reason}")
    return foreign_root.automation_site(ARCH)


@pytest.fixture(scope="module")
def box(package_dir: Path, shared: Path, site: Path) -> Iterator[foreign_root.ForeignBox]:
    tarball = foreign_root.root_tarball(ARCH)
    with foreign_root.unpacked(tarball, binds=[shared, site]) as box:
        debs = box.path(DEBS)
        debs.mkdir()
        for arch in (ARCH, host_architecture()):
            shutil.copy(built_deb(package_dir, "tvpay-box", arch), debs)
        harness = box.path(HARNESS)
        shutil.copytree(ROOT / "emulator", harness / "emulator", ignore=_no_bytecode)
        for helper in ("installed_tv_automation.py", "decoder_outcomes.py"):
            shutil.copy(Path(__file__).with_name(helper), harness)
        shutil.copy(MESSAGE_VECTORS, harness)
        yield box


def _no_bytecode(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


def test_apt_refuses_the_package_of_another_architecture(
    box: foreign_root.ForeignBox,
) -> None:
    host = host_architecture()
    other = f"{DEBS}/{next(box.path(DEBS).glob(f'*_{host}.deb')).name}"
    # apt names the package's architecture in what it cannot install; dpkg says it outright.
    by_apt = box.run(["apt-get", "install", "-y", other])
    assert by_apt.returncode != 0
    assert f"tvpay-box:{host} : Depends: python3:{host}" in by_apt.stdout, by_apt.stdout
    by_dpkg = box.run(["dpkg", "-i", other])
    assert by_dpkg.returncode != 0
    assert f"package architecture ({host}) does not match system ({ARCH})" in by_dpkg.stderr
    assert box.run(["dpkg-query", "-W", f"tvpay-box:{host}"]).returncode != 0


@pytest.fixture(scope="module")
def installed(box: foreign_root.ForeignBox) -> subprocess.CompletedProcess[str]:
    """apt's installation of the arm64 package into the root, then what the first boot's
    systemd-tmpfiles-setup.service does (test_apt_installs_… checks both)."""
    deb = next(box.path(DEBS).glob(f"*_{ARCH}.deb"))
    result = box.run(["apt-get", "install", "-y", f"{DEBS}/{deb.name}"])
    if result.returncode == 0:
        box.run(["systemd-tmpfiles", "--create", "tvpay-box.conf"])
    return result


def test_apt_installs_the_package_as_on_a_box(
    box: foreign_root.ForeignBox, installed: subprocess.CompletedProcess[str]
) -> None:
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for user in ("tvpay-dongled", "tvpay-tv"):
        assert box.run(["getent", "passwd", user]).returncode == 0, user
    for target, unit in ENABLED_UNITS:
        link = box.path(f"/etc/systemd/system/{target}.wants/{unit}")
        assert link.is_symlink(), f"{unit} is not enabled: {link} is missing"
    owner = box.run(["stat", "-c", "%U %a", str(Path(JOURNAL).parent)]).stdout.strip()
    assert owner == "tvpay-tv 700"


@pytest.mark.usefixtures("installed")
def test_installed_commands_answer_help(box: foreign_root.ForeignBox) -> None:
    for command in ("tvpay-dongled", "tvpay-tv", "tvpay-dongle"):
        result = box.run([f"/usr/bin/{command}", "--help"])
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


@pytest.mark.usefixtures("installed")
def test_bad_setting_and_missing_module_fail_with_one_line(
    box: foreign_root.ForeignBox, shared: Path
) -> None:
    config = shared / "bad-dongled.toml"
    config.write_text('[usb]\ncommand_timeout = "soon"\n', encoding="utf-8")
    bad = box.run(["/usr/bin/tvpay-dongled", "--config", str(config)])
    assert bad.returncode == 78
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "command_timeout" in lines[0]
    # -S leaves Debian's dist-packages off the path, as if python3-usb were missing.
    missing = box.run(["python3", "-S", "/usr/bin/tvpay-dongled", "--socket", "/nonexistent/s"])
    assert missing.returncode == 69
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing Python module usb: install python3-usb" in lines[0]


@pytest.mark.usefixtures("installed")
def test_strict_decoder_decides_on_arm64_exactly_as_here(box: foreign_root.ForeignBox) -> None:
    # The installed modules with the vendored aarch64 cbor2 against this machine's venv: every
    # vector, strictness case and mutation is accepted or refused the same way.
    probe = Path(__file__).with_name("decoder_outcomes.py")
    native = subprocess.run(
        [sys.executable, str(probe), str(MESSAGE_VECTORS)],
        capture_output=True,
        text=True,
        check=True,
    )
    argv = [f"{HARNESS}/decoder_outcomes.py", f"{HARNESS}/messages.json", "/usr/lib/tvpay-box"]
    emulated = box.run(["python3", *argv])
    assert emulated.returncode == 0, emulated.stderr
    expected = json.loads(native.stdout)
    assert len(expected) > 1000 and "duplicate key: refused MessageError" in expected
    assert json.loads(emulated.stdout) == expected


def _box_socket(shared: Path) -> Path:
    return shared / "box-dongled.sock"


@contextmanager
def _installed_daemon(
    box: foreign_root.ForeignBox, stack: RunningStack, shared: Path
) -> Iterator[None]:
    """The box's /usr/bin/tvpay-dongled with the stack's daemon settings: the virtual cable
    on the host as its USB, the stack's socket path."""
    notify_path = shared / "notify.sock"
    notify_path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    log_path = shared / "dongled.log"
    # The stack's daemon settings on a socket of the box's own: the stack's TV app (in the
    # emulator's process) keeps reconnecting to the stack's socket and must not reach this one.
    stack_socket = stack.where["daemon"]["socket"]
    config = shared / "box-dongled.toml"
    text = (Path(stack_socket).parent / "dongled.toml").read_text(encoding="utf-8")
    config.write_text(text.replace(stack_socket, str(_box_socket(shared))), encoding="utf-8")
    env = {"PYTHONPATH": HARNESS, "NOTIFY_SOCKET": str(notify_path)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            box.command(["/usr/bin/tvpay-dongled", "--config", str(config)], env),
            stdout=log,
            stderr=log,
        )
    try:
        wait_ready(notify, process, log_path, timeout=EMULATED_START)
        yield
    finally:
        _stop(process)
        notify.close()


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def _installed_tv(
    box: foreign_root.ForeignBox, stack: RunningStack, shared: Path, site: Path
) -> Iterator[AutomationClient]:
    """The box's TV app (/usr/lib/tvpay-box) with its journal in /var/lib/tvpay/tvapp, the
    stack's gateway and daemon socket, and an automation API of its own."""
    where = stack.where
    settings = {
        "gateway_url": where["tv_gateway_url"],
        "ca_file": where["tls_ca"],
        "daemon_socket": str(_box_socket(shared)),
        "state_dir": str(Path(JOURNAL).parent),
        "kivy_home": str(Path(JOURNAL).parent / "kivy"),
        "language": "zh_CN",
        "holder_name": where["demo"]["name"],
        "headless": True,
    }
    settings_file = shared / "tv.json"
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    env = {"PYTHONPATH": f"{HARNESS}:{site}"}
    argv = ["python3", f"{HARNESS}/installed_tv_automation.py", str(settings_file)]
    log = (shared / "tv.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        box.command(argv, env), stdout=subprocess.PIPE, stderr=log, text=True
    )
    found: list[str] = []
    ready = threading.Event()

    def read_url() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("automation API listening on ") and not found:
                found.append(line.split(" on ", 1)[1].strip())
                ready.set()
        ready.set()

    threading.Thread(target=read_url, daemon=True).start()
    try:
        ready.wait(EMULATED_START)
        assert found, f"the installed TV app did not start; see {shared / 'tv.log'}"
        with AutomationClient(found[0], timeout=EMULATED_WAIT + 30) as client:
            yield client
    finally:
        _stop(process)
        log.close()


def _journal_rows(box: foreign_root.ForeignBox) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(f"file:{box.path(JOURNAL)}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: db.execute(f'SELECT * FROM "{t}"').fetchall() for t in sorted(tables)}


def _upgrade_package(tmp_path: Path) -> Path:
    """The box package again, as version 0.1.0+1 (a newer changelog entry)."""
    changelog = tmp_path / "changelog"
    current = (ROOT / "packaging/debian/changelog").read_text(encoding="utf-8")
    entry = (
        "tvpay (0.1.0+1) bookworm; urgency=medium\n\n  * Upgrade check.\n\n"
        " -- TVPay Packaging <packaging@tvpay.cn>  Fri, 28 Nov 2025 04:00:00 +0000\n\n"
    )
    changelog.write_text(entry + current, encoding="utf-8")
    out = tmp_path / "upgrade"
    command = [
        sys.executable, str(ROOT / "packaging/build_deb.py"),
        "--out", str(out), "--arch", ARCH, "--changelog", str(changelog), "tvpay-box",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return next(out.glob(f"tvpay-box_0.1.0+1_{ARCH}.deb"))


@pytest.mark.usefixtures("installed")
def test_installed_box_pays_a_bill_and_keeps_its_journal_across_an_upgrade(
    box: foreign_root.ForeignBox, shared: Path, site: Path, tmp_path: Path
) -> None:
    with start_stack(shared / "stack") as stack:
        # The installed daemon takes the stack's place on the virtual cable and socket.
        stack.client.kill_daemon()
        stack.client.unplug()
        with _installed_daemon(box, stack, shared), _installed_tv(box, stack, shared, site) as tv:
            # Started with the dongle unplugged: the box asks for it.
            wait_until(
                lambda: tv.screen().get("state") == "no_dongle", EMULATED_WAIT, "no-dongle screen"
            )
            stack.client.plug()
            tv.wait(screen="home", timeout=EMULATED_WAIT)
            before = Ledger.read(stack)
            start_payment(tv, unpaid_account(stack))
            type_pin(tv, stack.pin)
            receipt = confirm_and_wait_receipt(tv, timeout=EMULATED_WAIT)
            assert receipt["screen"] == "receipt"
            assert len(Ledger.read(stack).newly_paid_since(before)) == 1
            SCREENSHOT.parent.mkdir(exist_ok=True)
            SCREENSHOT.write_bytes(tv.screenshot())
        journal = _journal_rows(box)
        assert any(journal.values()), "the payment left nothing in the box's journal"

        upgrade = _upgrade_package(tmp_path)
        shutil.copy(upgrade, box.path(DEBS))
        result = box.run(["apt-get", "install", "-y", f"{DEBS}/{upgrade.name}"])
        assert result.returncode == 0, result.stdout + result.stderr
        version = box.run(["dpkg-query", "-W", "-f=${Version}", "tvpay-box"]).stdout
        assert version == "0.1.0+1"
        assert _journal_rows(box) == journal
        # The upgraded box still knows its dongle: back on the home screen, no pairing.
        with _installed_daemon(box, stack, shared), _installed_tv(box, stack, shared, site) as tv:
            tv.wait(screen="home", timeout=EMULATED_WAIT)
