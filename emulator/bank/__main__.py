"""``python -m emulator.bank serve …``: the bank simulator as its own process."""

from __future__ import annotations

import sys

from emulator.bank.commands import main

sys.exit(main())
