"""A small typed client of the automation API (scenarios, tests and benchmarks use it)."""

from __future__ import annotations

from typing import Any

import httpx


class AutomationClientError(Exception):
    """The automation API refused a request; ``code`` is its machine-readable error code."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.body = body


class AutomationClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8765", *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AutomationClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AutomationClientError(
                0,
                "unreachable",
                f"cannot reach the emulator at {self.base_url} ({exc}): is 'tvpay-emulator up'"
                " running, and on this port?",
                {},
            ) from exc
        if response.is_success:
            if response.headers.get("content-type", "").startswith("application/json"):
                return response.json()
            return response.content
        try:
            body = response.json()
            error = body["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            body, code, message = {}, "http_error", response.text[:200]
        raise AutomationClientError(response.status_code, code, message, body)

    def press(self, *keys: str) -> dict[str, Any]:
        return self._call("POST", "/api/keys", json={"keys": list(keys)})["screen"]

    def screen(self) -> dict[str, Any]:
        return self._call("GET", "/api/screen")

    def screenshot(self, image_format: str = "png") -> bytes:
        return self._call("GET", "/api/screenshot", params={"format": image_format})

    def wait(
        self, *, screen: str | None = None, text: str | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"timeout": timeout}
        if screen is not None:
            body["screen"] = screen
        if text is not None:
            body["text"] = text
        return self._call("POST", "/api/wait", json=body, timeout=timeout + 10)["screen"]

    def where(self) -> dict[str, Any]:
        return self._call("GET", "/api/where")

    def dongles(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/dongles")["dongles"]

    def plug(self, serial: str = "demo") -> None:
        self._call("POST", f"/api/dongles/{serial}/plug")

    def unplug(self, serial: str = "demo") -> None:
        self._call("POST", f"/api/dongles/{serial}/unplug")

    def fault(self, kind: str, serial: str = "demo", **params: Any) -> None:
        self._call("POST", f"/api/dongles/{serial}/faults", json={"kind": kind, "params": params})

    def clear_faults(self, serial: str = "demo") -> None:
        self._call("DELETE", f"/api/dongles/{serial}/faults")

    def network(self, mode: str, delay_ms: int = 0) -> dict[str, Any]:
        return self._call("PUT", "/api/network", json={"mode": mode, "delay_ms": delay_ms})

    def restart_gateway(self) -> dict[str, Any]:
        return self._call("POST", "/api/gateway/restart", timeout=60)

    def kill_daemon(self) -> dict[str, Any]:
        return self._call("POST", "/api/daemon/kill")

    def start_daemon(self) -> dict[str, Any]:
        return self._call("POST", "/api/daemon/start", timeout=60)

    def restart_daemon(self) -> dict[str, Any]:
        return self._call("POST", "/api/daemon/restart", timeout=60)

    def meters(self) -> dict[str, Any]:
        return self._call("GET", "/api/meters")

    def move_card(self, to: str) -> dict[str, Any]:
        """``to`` is "box", "meter" or "out"; into the meter answers the meter's ``outcome``."""
        return self._call("POST", "/api/card/move", json={"to": to})

    def enter_token(self, digits: str) -> dict[str, Any]:
        return self._call("POST", "/api/meters/token", json={"digits": digits})
