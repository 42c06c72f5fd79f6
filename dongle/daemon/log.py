"""The daemon's event log: ``log(event, level="info", **fields)``, one key=value line per event
to stderr (protocol.logfmt). Callers pass only what is safe to log: never a PIN, a key, a token
or a full account number."""

from __future__ import annotations

from protocol.logfmt import EventLog

log = EventLog("tvpay.dongled")
