"""Runs the automation API with uvicorn on a background thread, on a socket bound up front.

Binding the socket before uvicorn starts lets port 0 work: the bound port is known at once.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class AutomationServerError(Exception):
    """The automation API could not start."""


class AutomationServer:
    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 8765) -> None:
        try:
            self._socket = socket.create_server((host, port))
        except OSError as exc:
            raise AutomationServerError(
                f"cannot listen on {host}:{port} ({exc.strerror}): another emulator may be"
                " running; stop it or pass --automation-port 0 for a free port"
            ) from exc
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="automation-api",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and return the base URL once requests are accepted."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AutomationServerError("the automation API did not start; see the log above")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(5.0)
        self._socket.close()
