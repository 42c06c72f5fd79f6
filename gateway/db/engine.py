"""Engines and transactions for both backends.

SQLite: WAL, synchronous=FULL (NORMAL may lose the last commits on power loss), a busy timeout,
and BEGIN IMMEDIATE for writes so two writers never both read-then-upgrade into a deadlock; reads
use a deferred BEGIN so they do not queue behind writers. PostgreSQL: READ COMMITTED with row locks
(SELECT ... FOR UPDATE) where state moves; serialization failures and deadlocks are retried.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import ServiceUnavailable

log = logging.getLogger("tvpay.gateway")
T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}
_MAX_ATTEMPTS = 8


def make_engine(url: str, pool_size: int = 20) -> Engine:
    """An engine with the pragmas and transaction modes described above."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to the "begin" hook below (pysqlite's own is unreliable).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _retryable(exc: DBAPIError) -> bool:
    # A unique-constraint race (two requests inserting the same row) is settled by running the
    # loser again: it then sees the winner's row and answers accordingly.
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


class Database:
    """Runs units of work in transactions, retrying those the database asked to retry."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._read_engine = (
            engine.execution_options(sqlite_begin="DEFERRED") if is_sqlite(engine) else engine
        )
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        # SQLite has one writer. Threads of this process queue on this lock in FIFO-ish order
        # instead of each spinning in SQLite's busy handler, whose sleeps grow to 100 ms and
        # made the slowest 1% of payments wait over half a second. The busy timeout still
        # covers other processes (the CLI) writing to the same file.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite(engine) else nullcontext()
        )

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one write transaction; commit when it returns, roll back if it raises."""
        with self._write_lock:
            return self._run(self._sessions, work)

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read transaction (no write lock on SQLite)."""
        return self._run(self._read_sessions, work)

    def _run(self, factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with factory() as session, session.begin():
                    return work(session)
            except DBAPIError as exc:
                if exc.connection_invalidated or (
                    isinstance(exc, OperationalError) and not _retryable(exc)
                ):
                    log.error("event=db_unavailable error=%s", type(exc.orig).__name__)
                    raise ServiceUnavailable(
                        "The payment database is unavailable; try again in a minute."
                    ) from exc
                if not _retryable(exc) or attempt == _MAX_ATTEMPTS:
                    raise
                log.info(
                    "event=db_retry attempt=%d sqlstate=%s",
                    attempt,
                    getattr(exc.orig, "sqlstate", "-"),
                )
                # Jittered back-off so colliding transactions do not collide again in lockstep.
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
        raise AssertionError("unreachable")
