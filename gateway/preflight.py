"""Start-up checks that turn an unusable state directory or database into one sentence naming
the path or URL and what to check, instead of a traceback from deep inside a library."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from gateway.errors import ConfigError, DatabaseUnreachable, StateDirError


def check_state_dir(path: Path, *, create: bool) -> None:
    """Raise ``StateDirError`` unless ``path`` is a directory this process can read and write
    (created when ``create``); ``ConfigError`` when it is missing and must not be created."""
    if not create and not path.exists():
        raise ConfigError(f"state directory {path} does not exist; run 'tvpay-gateway init' first")
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        if create:
            path.mkdir(parents=True, exist_ok=True)
        os.listdir(path)
        # Only a real write proves writability: access() says yes to root on a read-only mount.
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise StateDirError(
            f"state directory {path} cannot be used ({exc.strerror or exc}): check that it is a "
            f"directory that this user (uid {os.geteuid()}) can read and write, or pass --state-dir"
        ) from None


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print and log)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def database_unreachable(url: str, exc: DBAPIError) -> DatabaseUnreachable:
    """The one-line error for a database that refused or never answered the connection."""
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    return DatabaseUnreachable(
        f"cannot reach the database {masked_url(url)} ({reason}): check that the server runs "
        "and that host, port, user, password and database name in database_url are right"
    )
