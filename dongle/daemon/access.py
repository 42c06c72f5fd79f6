"""Who is calling: the peer's credentials from the kernel (SO_PEERCRED, SO_PEERGROUPS) and the
configured policy that decides who may use the dongle and who may provision it."""

from __future__ import annotations

import array
import errno
import grp
import os
import pwd
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dongle.daemon.config import DaemonConfig

_UCRED = struct.Struct("3i")
# Not exported by Python's socket module; Linux >= 4.13. The kernel snapshots it at connect().
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int
    groups: frozenset[int]


def peer_of(sock: socket.socket) -> Peer:
    """The credentials the kernel recorded for the process that connected ``sock``."""
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return Peer(pid, uid, gid, frozenset({gid, *_peer_groups(sock, pid)}))


def _peer_groups(sock: socket.socket, pid: int) -> Iterable[int]:
    size = 64 * 4
    while size <= 65536 * 4:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as exc:
            if exc.errno == errno.ERANGE:
                size *= 4
                continue
            break  # old kernel: fall back to /proc, racy but better than nothing
        return array.array("I", raw[: len(raw) - len(raw) % 4])
    return _proc_groups(pid)


def _proc_groups(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return [int(g) for g in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Root and the daemon's own user are always allowed; staff operations need a staff group."""

    users: frozenset[int]
    groups: frozenset[int]
    staff_groups: frozenset[int]
    daemon_uid: int

    def allows(self, peer: Peer) -> bool:
        return (
            peer.uid in (0, self.daemon_uid)
            or peer.uid in self.users
            or bool(peer.groups & self.groups)
        )

    def is_staff(self, peer: Peer) -> bool:
        return peer.uid == 0 or bool(peer.groups & self.staff_groups)

    @classmethod
    def from_config(cls, config: DaemonConfig) -> tuple[AccessPolicy, list[str]]:
        """The policy, and the configured names that do not exist on this system (to log)."""
        missing: list[str] = []
        users = _resolve(config.allowed_users, _uid, missing)
        groups = _resolve(config.allowed_groups, _gid, missing)
        staff = _resolve(config.staff_groups, _gid, missing)
        return cls(users, groups, staff, os.getuid()), missing


def _uid(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


def _gid(name: str) -> int:
    return grp.getgrnam(name).gr_gid


def _resolve(
    names: Iterable[str], lookup: Callable[[str], int], missing: list[str]
) -> frozenset[int]:
    ids: set[int] = set()
    for name in names:
        if name.isdigit():
            ids.add(int(name))
            continue
        try:
            ids.add(lookup(name))
        except KeyError:
            missing.append(name)
    return frozenset(ids)


def group_id(name: str | None) -> int | None:
    """The gid of a group name (or number), None when unset; KeyError when unknown."""
    if not name:
        return None
    return int(name) if name.isdigit() else _gid(name)
