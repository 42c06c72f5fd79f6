"""Prepaid electricity latency on the emulated box: purchase → card written and confirmed, and
purchase → token shown.

Runs the whole box (`tvpay-emulator up --headless`, real gateway over HTTPS, real daemon, the
emulated dongle with the purchase card in its slot) and buys with the TV box's own services
(tests/e2e/prepaid_buyer.py): the card read, the purchase made, the PIN and signature through the
daemon, the payment authorized, then the write-card block run on the card, the card read back and
the gateway's confirmation (card), or the token fetched (token). The quote is asked for before
the clock starts: the buy screen shows it before the household confirms. Between two card
purchases the card goes into the meter and back through the automation API (not timed): the
meter's write-back is what lets the box sell the next one.

Prints one JSON object per meter kind: p50/p95/max in milliseconds. Target: p95 <= 300 ms.

    .venv/bin/python bench/prepaid.py [--count 20] [--timing default]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.prepaid_buyer import PrepaidBuyer
from tests.e2e.stack import RunningStack, start_stack

AMOUNT_FEN = 1000  # the demo rules' minimum, so many purchases fit the wallet and the meter
TARGET_P95_MS = 300


def _timed(buy: Callable[[], object]) -> float:
    started = time.perf_counter()
    buy()
    return (time.perf_counter() - started) * 1000


def _card_purchase(stack: RunningStack, buyer: PrepaidBuyer) -> float:
    meter, quote = buyer.quote("card", AMOUNT_FEN)
    elapsed = _timed(lambda: buyer.pay_on_card(meter, quote))
    outcome = stack.client.move_card("meter")["outcome"]
    if outcome["outcome"] != "credited":
        raise RuntimeError(f"the meter did not credit the purchase: {outcome['message']}")
    stack.client.move_card("box")
    return elapsed


def _token_purchase(buyer: PrepaidBuyer) -> float:
    meter, quote = buyer.quote("token", AMOUNT_FEN)
    return _timed(lambda: buyer.pay_for_token(meter, quote))


def _summary(kind: str, timing: str, samples: list[float]) -> dict[str, object]:
    samples = sorted(samples)
    return {
        "bench": f"prepaid_{kind}",
        "timing": timing,
        "purchases": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, round(0.95 * len(samples)) - 1)], 1),
        "max_ms": round(samples[-1], 1),
        "target_p95_ms": TARGET_P95_MS,
    }


def run(count: int, timing: str) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="tvpay-bench-prepaid-") as work:
        args = ("--seed", "5", "--households", "1", "--timing", timing)
        with start_stack(Path(work) / "state", args=args) as stack:
            buyer = PrepaidBuyer(stack.where, Path(work) / "box")
            try:
                # Warm-up: the first TLS session, device session and signature.
                _card_purchase(stack, buyer)
                _token_purchase(buyer)
                card = [_card_purchase(stack, buyer) for _ in range(count)]
                token = [_token_purchase(buyer) for _ in range(count)]
            finally:
                buyer.close()
    return [_summary("card_written", timing, card), _summary("token_shown", timing, token)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20, help="purchases of each kind")
    parser.add_argument("--timing", choices=("default", "hardware"), default="default")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    for line in run(args.count, args.timing):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
