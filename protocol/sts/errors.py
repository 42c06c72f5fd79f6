"""The one error of the STS token package: every bad input to it raises ``TokenError``."""

from __future__ import annotations

from protocol.errors import ProtocolError


class TokenError(ProtocolError, ValueError):
    """A token, an amount, a time, a key or a meter identity that STS cannot carry or accept.

    The message says what was wrong and what to do; nothing has been changed anywhere.
    """
