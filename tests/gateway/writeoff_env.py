"""A gateway, the utility simulator process and the dispatcher process wired together, with one
simulated clock both of them read, for the write-off tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.billers import set_notify_url
from gateway.db.models import OutboxMessage
from gateway.ledger import check
from tests.emulator.utility import UtilityUnderTest
from tests.gateway.helpers import GatewayUnderTest

BILLER = "SGCC-BJ"  # the biller of tests.gateway.helpers.bill_rows


@dataclass
class WriteoffEnv:
    gw: GatewayUnderTest
    utility: UtilityUnderTest
    state_dir: Path

    @property
    def clock_file(self) -> Path:
        return self.utility.clock_file

    def connect(self) -> None:
        """Start the simulated clock an hour past the wall clock, so the payments the test makes
        (stamped with the gateway's real time) are due at once."""
        self.utility.set_clock(int(time.time()) + 3600)

    def dispatcher_argv(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gateway.cli",
            "--state-dir",
            str(self.state_dir),
            "--database-url",
            self.gw.ctx.config.database_url,
            "dispatch",
            "--clock-file",
            str(self.clock_file),
            *extra,
        ]

    def dispatch(self, *extra: str) -> dict[str, int]:
        """Run ``tvpay-gateway dispatch --once`` as a process; its summary line."""
        done = subprocess.run(
            self.dispatcher_argv("--once", *extra), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    def pay(self) -> tuple[str, str]:
        """A household pays one bill from its wallet; (payment id, session token)."""
        dongle, token, bills = self.gw.paying_household(1)
        # The biller exists once its bills are imported: point it at the simulator.
        self.gw.ctx.db.write(lambda s: set_notify_url(s, [BILLER], self.utility.url))
        created = self.gw.create_payment(token, bills[0]).json()
        answer = self.gw.authorize(
            created["payment_id"], dongle.sign_payment(created["sign_fields"])
        )
        assert answer.status_code == 200, answer.text
        return created["payment_id"], token

    def payment(self, payment_id: str, token: str) -> dict[str, Any]:
        return self.gw.call("GET", f"/api/v1/payments/{payment_id}", token).json()

    def outbox(self, key: str) -> OutboxMessage:
        return self.gw.ctx.db.read(
            lambda s: s.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
        )

    def ledger_problems(self) -> list[str]:
        return self.gw.ctx.db.read(check)
