"""The daemon's file-descriptor budget: raise the soft RLIMIT_NOFILE to the hard limit at start,
and refuse a configuration whose connection cap would not fit in it.

Every client connection costs one descriptor. With the cap checked against the limit, a flood of
connections is refused by the cap, with an answer, long before ``accept`` could fail for want of
descriptors (which is still survived: see admission.py).
"""

from __future__ import annotations

import resource

from dongle.daemon.config import ConfigError, DaemonConfig
from dongle.daemon.log import log

# Descriptors the daemon needs besides its clients: standard streams, the listening socket, the
# signal wake-up pair, epoll and eventfd, the spare descriptor, udev's netlink socket, each open
# dongle's USB handles, and headroom for libusb and the emulator's cable connections.
RESERVED = 64


def raise_soft_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # e.g. a hard limit above the kernel's nr_open
            log("fd_limit_unchanged", level="warning", soft=soft, hard=hard, error=exc)
            return soft
        log("fd_limit_raised", soft=hard, was=soft)
        return hard
    return soft


def check_fits(config: DaemonConfig, soft_limit: int) -> None:
    """ConfigError when ``[clients] max_total`` connections would not fit in ``soft_limit``."""
    needed = config.max_connections + RESERVED
    if soft_limit != resource.RLIM_INFINITY and needed > soft_limit:
        raise ConfigError(
            f"[clients] max_total = {config.max_connections} needs {needed} file descriptors "
            f"but the daemon may open only {soft_limit}: lower max_total, or raise the limit "
            "(LimitNOFILE= in the systemd unit)"
        )
