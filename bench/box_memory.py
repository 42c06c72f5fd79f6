"""Benchmark of the box's memory, natively: the TV app and the dongle daemon together, against
a budget of 256 MB for a 1 GB set-top box (the rest is the vendor's middleware and video).

Measured as a box runs it: the tvpay-box package is built for this machine and unpacked, and its
TV app runs on Debian's python3 and Debian's Kivy, headless, against the real gateway, daemon and
virtual dongle (tests/tvapp/world.py). It opens each account's bills and goes back, ROUNDS
times; then both processes' resident memory (VmRSS) and peak (VmHWM) are read from /proc.
Prints one JSON object per line. Under emulation (tests/packaging/test_arm64_box.py) only correctness counts:
no figure here comes from an emulated run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"

BUDGET_MIB = 256
ROUNDS = 20
WINDOW = (1280, 720)
SCREEN_TIMEOUT = 30.0


def _memory_kib(pid: int | str) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def child(lib: Path, gateway_url: str, socket: str, state: Path) -> None:
    """The package's TV app as on a box (1280x720, the CJK font), walked through its screens."""
    sys.path[:0] = [str(lib), str(lib / "vendor")]  # as /usr/bin/tvpay-tv does
    (state / "kivy").mkdir(parents=True, exist_ok=True)
    os.environ["KIVY_HOME"] = str(state / "kivy")
    from tvapp.ui.boot import prepare_kivy

    prepare_kivy(*WINDOW, fullscreen=False, font_cache=state / "fonts")
    from kivy.base import EventLoop, runTouchApp

    from tvapp.config import TvConfig
    from tvapp.services.container import Services
    from tvapp.ui.app import TvPayApp

    config = TvConfig(gateway_url=gateway_url, daemon_socket=socket, state_dir=str(state))
    app = TvPayApp(config, Services.build(config))
    app._run_prepare()
    runTouchApp(embedded=True)

    def until(done: object, what: str) -> None:
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while not done():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit(f"the TV app never showed {what}")
            EventLoop.idle()
        EventLoop.idle()  # drawn

    def at_home() -> bool:
        return app.sm.current == "home" and bool(app.home_vm.accounts) and not app.vm.loading

    until(at_home, "its home screen")
    for _ in range(ROUNDS):
        app.press("ok")
        until(lambda: app.sm.current == "bills" and not app.vm.loading, "an account's bills")
        app.press("back")
        until(at_home, "its home screen again")
    print(json.dumps(_memory_kib("self")))


def _unpacked_box(tmp: Path) -> Path:
    """Build tvpay-box for this machine into ``tmp`` and unpack it; its module directory."""
    out = tmp / "deb"
    subprocess.run(
        [sys.executable, str(ROOT / "packaging/build_deb.py"), "--out", str(out), "tvpay-box"],
        check=True,
        capture_output=True,
    )
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["dpkg-deb", "-x", str(next(out.glob(f"*_{arch}.deb"))), str(tmp / "box")])
    return tmp / "box/usr/lib/tvpay-box"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.tvapp.world import running_world

    with tempfile.TemporaryDirectory(prefix="boxmem-") as tmp, running_world(Path(tmp)) as world:
        lib = _unpacked_box(Path(tmp))
        socket = str(world.daemon_socket)
        done = subprocess.run(
            [SYSTEM_PYTHON, __file__, "--tv", str(lib), world.gateway_url, socket, tmp],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the TV app child failed:\n{done.stderr[-3000:]}")
        tv = json.loads(done.stdout.strip().splitlines()[-1])
        daemon = _memory_kib(world.processes["daemon"].pid)
    total = tv["VmRSS"] + daemon["VmRSS"]
    peak = tv["VmHWM"] + daemon["VmHWM"]
    print(
        json.dumps(
            {
                "bench": "box_memory",
                "machine": os.uname().machine,
                "python": "Debian's python3 and Kivy, the tvpay-box package",
                "rounds": ROUNDS,
                "tv_app_mib": round(tv["VmRSS"] / 1024, 1),
                "daemon_mib": round(daemon["VmRSS"] / 1024, 1),
                "total_mib": round(total / 1024, 1),
                "total_peak_mib": round(peak / 1024, 1),
                "budget_mib": BUDGET_MIB,
                "within_budget": peak / 1024 <= BUDGET_MIB,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tv":
        child(Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]) / "tv")
    else:
        main()
