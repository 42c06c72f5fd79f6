"""``tvpay-tv``'s own start-up (tvapp.main.start_up), then the app headless until it settles;
prints what the screen shows as one JSON line. The journal damage tests run it as a process,
so each start is a fresh process with its own Kivy window, as on a box.

    python -m tests.tvapp.boot_probe [tvpay-tv flags...]
"""

from __future__ import annotations

import json
import sys

from tests.tvapp.driver import AppDriver
from tvapp.main import start_up


def main(argv: list[str]) -> int:
    started = start_up(argv)
    if isinstance(started, int):
        return started
    config, services = started
    driver = AppDriver.start(config, services)
    try:
        # Settled: the start job (session, resubmission, accounts) and the journal's dongle
        # counter check have delivered their results.
        driver.wait_for(
            lambda _s: not driver.app.vm.loading and not driver.app.controller.worker.busy,
            "the start to settle",
            timeout=60,
        )
        driver.frames(3)
        state = driver.state()
        if state["screen"] == "journal":
            driver.screenshot(f"journal-{state['state']}-{state['language']}")
        print(json.dumps(state, ensure_ascii=False), flush=True)
    finally:
        driver.stop()
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
