"""Benchmark of the TV app, headless: cold start to an interactive home screen, remote key to
focus change drawn (p50/p95 over 500 presses), and the app's RSS against a bare Kivy window
with the same font, measured in the same run. Prints one JSON object per line.

Targets (issue 7): start <= 2 s, p95 <= 50 ms, RSS <= 1.3x the bare window.
The app runs against the real gateway, dongle daemon and virtual dongle (tests/tvapp/world.py);
each measured program is a fresh process, so "cold" includes imports, Kivy and the window.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESSES = 500
WINDOW = (1280, 720)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _kivy(state: Path) -> None:
    import os

    (state / "kivy").mkdir(parents=True, exist_ok=True)
    os.environ["KIVY_HOME"] = str(state / "kivy")
    from tvapp.ui.boot import prepare_kivy

    prepare_kivy(*WINDOW, fullscreen=False, font_cache=state / "fonts")
    from kivy.config import Config

    Config.set("graphics", "maxfps", "0")  # measure drawing, not the frame limiter's sleep


def _frame_ms() -> float:
    """Median time to redraw the whole window once, with nothing changed but the request."""
    from kivy.base import EventLoop
    from kivy.core.window import Window

    frames = []
    for _ in range(100):
        Window.canvas.ask_update()
        t0 = time.perf_counter()
        EventLoop.idle()
        frames.append(time.perf_counter() - t0)
    return round(statistics.median(frames) * 1000, 2)


def child_app(started: float, gateway_url: str, socket: str, state: Path) -> None:
    _kivy(state)
    from kivy.base import EventLoop, runTouchApp

    from tvapp.config import TvConfig
    from tvapp.services.container import Services
    from tvapp.ui.app import TvPayApp

    config = TvConfig(gateway_url=gateway_url, daemon_socket=socket, state_dir=str(state))
    app = TvPayApp(config, Services.build(config))
    app._run_prepare()
    runTouchApp(embedded=True)
    while not (app.sm.current == "home" and app.home_vm.accounts and not app.vm.loading):
        EventLoop.idle()
    EventLoop.idle()  # the home screen with its accounts drawn
    cold = time.time() - started
    latencies, handling = [], []
    for i in range(PRESSES):
        action = ("right", "down", "left", "up")[i % 4]
        t0 = time.perf_counter()
        app.press(action)
        t1 = time.perf_counter()
        EventLoop.idle()  # one frame: the moved focus ring is drawn (and finished, headless)
        latencies.append(time.perf_counter() - t0)
        handling.append(t1 - t0)
    latencies.sort()
    print(
        json.dumps(
            {
                "cold_start_s": round(cold, 3),
                "key_to_focus_p50_ms": round(statistics.median(latencies) * 1000, 2),
                "key_to_focus_p95_ms": round(latencies[int(0.95 * len(latencies))] * 1000, 2),
                "key_handling_p50_ms": round(statistics.median(handling) * 1000, 2),
                "frame_p50_ms": _frame_ms(),
                "rss_kib": _rss_kib(),
            }
        )
    )


def child_bare(state: Path) -> None:
    _kivy(state)
    from kivy.base import EventLoop, runTouchApp
    from kivy.uix.label import Label

    from tvapp.ui.boot import finish_each_offscreen_frame

    finish_each_offscreen_frame()  # the same per-frame handling as the app, for a fair baseline
    runTouchApp(Label(text="生活缴费 ¥123.45", font_size=40), embedded=True)
    for _ in range(30):
        EventLoop.idle()
    print(json.dumps({"rss_kib": _rss_kib(), "frame_p50_ms": _frame_ms()}))


def _child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from tests.tvapp.world import running_world

    with tempfile.TemporaryDirectory(prefix="tvb-") as tmp, running_world(Path(tmp)) as world:
        app = _child(
            "--app", str(time.time()), world.gateway_url, str(world.daemon_socket), tmp + "/app"
        )
        bare = _child("--bare", tmp + "/bare")
    print(json.dumps({"bench": "tvapp_cold_start", "seconds": app["cold_start_s"], "target": 2.0}))
    print(
        json.dumps(
            {
                "bench": "tvapp_key_to_focus",
                "presses": PRESSES,
                "p50_ms": app["key_to_focus_p50_ms"],
                "p95_ms": app["key_to_focus_p95_ms"],
                "key_handling_p50_ms": app["key_handling_p50_ms"],
                "app_frame_p50_ms": app["frame_p50_ms"],
                "bare_window_frame_p50_ms": bare["frame_p50_ms"],
                "target_p95_ms": 50,
            }
        )
    )
    print(
        json.dumps(
            {
                "bench": "tvapp_rss",
                "app_mib": round(app["rss_kib"] / 1024, 1),
                "bare_window_mib": round(bare["rss_kib"] / 1024, 1),
                "ratio": round(app["rss_kib"] / bare["rss_kib"], 2),
                "target_ratio": 1.3,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--app":
        child_app(float(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--bare":
        child_bare(Path(sys.argv[2]))
    else:
        main()
