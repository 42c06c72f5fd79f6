"""Feeds the protocol's strict decoder every message vector, the strictness cases and a seeded
corpus of mutations of the vectors, and prints what each one gave, as one JSON list.

Run by test_arm64_box.py twice: natively with the project's venv, and inside the arm64 root
with the installed package's modules and its vendored aarch64 cbor2:
    python3 decoder_outcomes.py messages.json [PACKAGE_LIBDIR]
Equal outputs mean the box decodes (and refuses) exactly the same bytes on both CPUs.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if len(sys.argv) > 2:
    sys.path[:0] = [sys.argv[2], sys.argv[2] + "/vendor"]  # as the package's launchers do

from protocol.frame import Frame, FrameType
from protocol.messages import decode_map, decode_message

SEED = 22
MUTATIONS_PER_VECTOR = 60
# CBOR the strict decoder must refuse: each is otherwise a valid one-entry map {"a": ...}.
STRICTNESS = {
    "duplicate key": "a2616101616102",
    "indefinite-length map": "bf616101ff",
    "indefinite-length text": "a161617f6161ff",
    "non-canonical integer": "a161611801",
    "non-canonical length": "a17801616101",
    "trailing bytes": "a161610100",
    "accepted reference": "a16161f5",
}


def _outcome(decode: Callable[[], Any]) -> str:
    try:
        return f"ok {decode()!r}"
    except Exception as exc:  # the outcome is what is compared, whatever it is
        return f"refused {type(exc).__name__}"


def _mutations(payload: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(MUTATIONS_PER_VECTOR):
        data = bytearray(payload)
        kind = rng.randrange(3)
        where = rng.randrange(len(data) + 1)
        if kind == 0 and data:
            data[min(where, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[where:]
        else:
            data.insert(where, rng.randrange(256))
        out.append(bytes(data))
    return out


def outcomes(vectors: dict[str, Any]) -> list[str]:
    results = []
    for name, hex_data in STRICTNESS.items():
        results.append(f"{name}: {_outcome(lambda h=hex_data: decode_map(bytes.fromhex(h)))}")
    rng = random.Random(SEED)
    for vector in vectors["messages"] + vectors["bad"]:
        ftype = FrameType[vector["frame_type"]]
        payload = bytes.fromhex(vector["payload"])
        for data in [payload, *_mutations(payload, rng)]:
            frame = Frame(ftype, 0, data)
            results.append(
                f"{vector['name']} {data.hex()}: {_outcome(lambda f=frame: decode_message(f))}"
            )
    return results


if __name__ == "__main__":
    print(json.dumps(outcomes(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
