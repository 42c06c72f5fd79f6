"""Child processes of the stack: started, watched for readiness, logged with a prefix, stopped.

Every child is spawned from one long-lived thread (``Spawner``): Linux delivers the parent-death
signal (PR_SET_PDEATHSIG) when the *thread* that forked the child exits, so children forked from a
short-lived web-request thread would be killed when that thread is recycled. Each child runs in its
own session so that Ctrl-C in the terminal reaches only the supervisor, which then stops the
children in order; if the supervisor itself dies hard, the death signal takes the children down.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


class ProcessError(Exception):
    """A child process of the stack failed to start or stopped unexpectedly."""


class ProcessNotReady(ProcessError):
    """A child did not announce readiness in time."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Spawner:
    """Forks every child from one thread that lives as long as the stack (see module docstring)."""

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="spawner"
        )

    def popen(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        future = self._executor.submit(
            subprocess.Popen,
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return future.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one child: its name (the log prefix), command line and readiness line."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    ready_pattern: str | None = None
    ready_timeout: float = 30.0
    stop_timeout: float = 5.0


class ManagedProcess:
    """One running child: its output goes, prefixed with its name, to a log file and to stderr."""

    def __init__(
        self,
        spec: ProcessSpec,
        spawner: Spawner,
        log_dir: Path,
        *,
        echo: IO[str] | None = sys.stderr,
    ) -> None:
        self.spec = spec
        self._spawner = spawner
        self._log_path = log_dir / f"{spec.name}.log"
        self._echo = echo
        self._echo_lock = threading.Lock()
        self._popen: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._ready_match: re.Match[str] | None = None
        self._pumps: list[threading.Thread] = []
        self._log: IO[str] | None = None

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self, cwd: Path) -> re.Match[str] | None:
        """Start the child and wait for its readiness line; return the line's match (or None)."""
        if self.running():
            raise ProcessError(f"{self.spec.name} is already running (pid {self.pid})")
        self._terminate(signal.SIGKILL, self.spec.stop_timeout)  # reap a previous run's pumps
        self._ready.clear()
        self._ready_match = None
        env = {**os.environ, **self.spec.env, "PYTHONUNBUFFERED": "1"}
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self._log = self._log_path.open("a", encoding="utf-8")
        self._popen = self._spawner.popen(self.spec.argv, env, cwd)
        pattern = re.compile(self.spec.ready_pattern) if self.spec.ready_pattern else None
        self._pumps = [
            threading.Thread(
                target=self._pump,
                args=(stream, log, pattern),
                name=f"log-{self.spec.name}",
                daemon=True,
            )
            for stream in (self._popen.stdout, self._popen.stderr)
        ]
        for pump in self._pumps:
            pump.start()
        if pattern is None:
            return None
        return self._wait_ready()

    def _wait_ready(self) -> re.Match[str]:
        deadline = time.monotonic() + self.spec.ready_timeout
        assert self._popen is not None
        while not self._ready.wait(0.05):
            if self._popen.poll() is not None:
                raise ProcessError(
                    f"{self.spec.name} exited with status {self._popen.returncode} while starting;"
                    f" see its log {self._log_path}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ProcessNotReady(
                    f"{self.spec.name} did not become ready within {self.spec.ready_timeout:.0f} s;"
                    f" see its log {self._log_path}"
                )
        assert self._ready_match is not None
        return self._ready_match

    def _pump(
        self, stream: IO[bytes] | None, log: IO[str], pattern: re.Pattern[str] | None
    ) -> None:
        assert stream is not None
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._echo_lock:
                log.write(line + "\n")
                log.flush()
                if self._echo is not None:
                    self._echo.write(f"{self.spec.name:>8} | {line}\n")
                    self._echo.flush()
            if pattern is not None and not self._ready.is_set():
                match = pattern.search(line)
                if match is not None:
                    self._ready_match = match
                    self._ready.set()
        stream.close()

    def stop(self) -> int | None:
        """SIGTERM the child's process group, SIGKILL it after the stop timeout; return the status."""
        return self._terminate(signal.SIGTERM, self.spec.stop_timeout)

    def kill(self) -> int | None:
        """SIGKILL the child (a crash, as far as it can tell) and reap it."""
        return self._terminate(signal.SIGKILL, self.spec.stop_timeout)

    def _terminate(self, sig: signal.Signals, timeout: float) -> int | None:
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self._signal_group(popen.pid, sig)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
        for pump in self._pumps:
            pump.join(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return popen.returncode

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
