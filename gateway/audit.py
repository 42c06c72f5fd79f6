"""The audit log: one row per staff or operator action and per attempt to bind an account, written
in the action's own transaction."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.models import AuditEntry

log = logging.getLogger("tvpay.gateway")


def record(session: Session, actor: str, action: str, target: str, **details: Any) -> None:
    """Add an audit entry; it commits or rolls back together with the action it describes."""
    session.add(
        AuditEntry(
            at=now(),
            actor=actor,
            action=action,
            target=target,
            details=json.dumps(details, ensure_ascii=False, sort_keys=True),
        )
    )
    log.info("event=audit actor=%s action=%s target=%s", actor, action, target)
