"""Runs service calls off the UI thread and hands their results back on it (via Clock)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kivy.clock import Clock

log = logging.getLogger("tvapp.worker")


class Worker:
    def __init__(self, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="tvapp-worker")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def busy(self) -> bool:
        """Whether any job is running or its result is still to be delivered on the UI thread."""
        with self._lock:
            return self._in_flight > 0

    def run(
        self,
        job: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future:
        with self._lock:
            self._in_flight += 1
        future = self._pool.submit(job)

        def deliver(_dt: float) -> None:
            try:
                error = future.exception()
                if error is None:
                    if on_done is not None:
                        on_done(future.result())
                elif on_error is not None:
                    on_error(error)
                else:
                    log.error("event=job_failed error=%r", error)
            finally:
                with self._lock:
                    self._in_flight -= 1

        future.add_done_callback(lambda _f: Clock.schedule_once(deliver, 0))
        return future

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def on_main_thread(func: Callable[..., None], *args: Any) -> None:
    """Call ``func(*args)`` on the UI thread (from a service's background thread)."""
    Clock.schedule_once(lambda _dt: func(*args), 0)
