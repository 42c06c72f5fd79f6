"""Operator settings of a biller: where its utility receives write-off notifications."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import Biller
from gateway.errors import NotFound, Unprocessable

_MAX_URL = 300


def set_notify_url(session: Session, codes: Sequence[str] | None, url: str | None) -> list[str]:
    """Point the billers ``codes`` (None: every biller) at ``url``, an http(s) base URL; None
    stops sending. All or nothing: an unknown code changes no biller. Returns the codes set."""
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > _MAX_URL:
            raise Unprocessable(
                f"notify URL {url[:80]!r} must be an http(s) base URL of at most {_MAX_URL} "
                "characters, e.g. https://billing.example.cn/tvpay",
                code="notify_url_invalid",
            )
    query = select(Biller).order_by(Biller.code).with_for_update()
    if codes is not None:
        query = query.where(Biller.code.in_(list(codes)))
    billers = list(session.scalars(query))
    missing = sorted(set(codes or ()) - {b.code for b in billers})
    if missing:
        raise NotFound(
            f"no biller {', '.join(missing)}; import its bills first", code="biller_not_found"
        )
    for biller in billers:
        biller.notify_url = url
    return [b.code for b in billers]
