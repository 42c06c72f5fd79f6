"""The staff tool's step log: ``log(event, level="info", **fields)``, one key=value line per
event to stderr (protocol.logfmt; ``--quiet`` keeps only warnings and errors). Callers pass only
what is safe to log: never a PIN, a PUK, a token or a key."""

from __future__ import annotations

from protocol.logfmt import EventLog

log = EventLog("tvpay.staff")
