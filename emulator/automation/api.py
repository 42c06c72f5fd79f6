"""The automation API's routes (FastAPI) over a ``Box``; the web remote is served at ``/``."""

from __future__ import annotations

import time
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from emulator.automation.box import Box, BoxError, TvNotAnswering

_WAIT_POLL = 0.05
_MAX_WAIT = 300.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeysBody(_Body):
    keys: list[str] = Field(min_length=1, max_length=200)


class WaitBody(_Body):
    screen: str | None = Field(default=None, max_length=100)
    text: str | None = Field(default=None, min_length=1, max_length=500)
    timeout: float = Field(default=10.0, gt=0, le=_MAX_WAIT)


class FaultBody(_Body):
    kind: str = Field(min_length=1, max_length=40)
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)


class NetworkBody(_Body):
    mode: Literal["up", "down", "slow"]
    delay_ms: int = Field(default=0, ge=0, le=60_000)


class CardMoveBody(_Body):
    to: Literal["box", "meter", "out"]


class TokenBody(_Body):
    # 20 digits, with the spaces or dashes a household types between groups.
    digits: str = Field(min_length=1, max_length=40)


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}, **extra}, status_code=status)


def screen_matches(state: dict[str, Any], screen: str | None, text: str | None) -> bool:
    """True when ``state`` shows ``screen`` (if given) and some visible text contains ``text``."""
    if screen is not None and state.get("screen") != screen:
        return False
    if text is not None:
        return any(text in str(t) for t in state.get("texts", ()))
    return True


def create_app(box: Box) -> FastAPI:
    app = FastAPI(
        title="TVPay emulator automation API",
        version="1",
        description="Drive the emulated TV box: keys, screen, screenshots, dongles, faults.",
    )
    web = resources.files("emulator.web")
    app.mount("/web", StaticFiles(directory=str(web)), name="web")

    @app.exception_handler(BoxError)
    def _box_error(_request: Request, exc: BoxError) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return _error(422, "invalid_request", f"fix the request: {fields}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(web.joinpath("index.html").read_text(encoding="utf-8"))

    @app.post("/api/keys")
    def press_keys(body: KeysBody) -> dict[str, Any]:
        """Press remote keys in order; answers the screen after the last one was handled."""
        box.press(body.keys)
        return {"screen": box.screen()}

    @app.post("/api/keys/{key}")
    def press_key(key: str) -> dict[str, Any]:
        box.press([key])
        return {"screen": box.screen()}

    @app.get("/api/screen")
    def screen() -> dict[str, Any]:
        """The screen as JSON: screen id, focused element, visible texts."""
        return box.screen()

    @app.get("/api/screenshot", response_class=Response)
    def screenshot(
        image_format: Annotated[Literal["png", "jpeg"], Query(alias="format")] = "png",
    ) -> Response:
        return Response(
            box.screenshot(image_format),
            media_type=f"image/{image_format}",
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/api/wait")
    def wait(body: WaitBody) -> JSONResponse:
        """Wait until the screen (and/or a visible text) appears; 408 with the screen if not."""
        if body.screen is None and body.text is None:
            return _error(422, "invalid_request", "give a screen id, a text, or both to wait for")
        started = time.monotonic()
        deadline = started + body.timeout
        while True:
            try:
                state = box.screen()
            except TvNotAnswering:  # still starting, or busy: keep waiting until the deadline
                state = {"screen": None, "texts": []}
            waited_ms = round((time.monotonic() - started) * 1000)
            if screen_matches(state, body.screen, body.text):
                return JSONResponse({"screen": state, "waited_ms": waited_ms})
            if time.monotonic() >= deadline:
                wanted = " and ".join(
                    part
                    for part in (
                        f"screen {body.screen!r}" if body.screen else "",
                        f"text {body.text!r}" if body.text else "",
                    )
                    if part
                )
                return _error(
                    408,
                    "wait_timeout",
                    f"{wanted} did not appear within {body.timeout:g} s; the screen shows"
                    f" {state.get('screen')!r}",
                    screen=state,
                    waited_ms=waited_ms,
                )
            time.sleep(_WAIT_POLL)

    @app.get("/api/where")
    def where() -> dict[str, Any]:
        """Where everything runs: URLs, ports, pids, state dir, logs, demo household."""
        return box.where()

    @app.get("/api/dongles")
    def dongles() -> dict[str, Any]:
        return {"dongles": box.dongles()}

    @app.post("/api/dongles/{serial}/plug")
    def plug(serial: str) -> dict[str, Any]:
        box.plug(serial)
        return {"dongles": box.dongles()}

    @app.post("/api/dongles/{serial}/unplug")
    def unplug(serial: str) -> dict[str, Any]:
        box.unplug(serial)
        return {"dongles": box.dongles()}

    @app.post("/api/dongles/{serial}/faults")
    def fault(serial: str, body: FaultBody) -> dict[str, Any]:
        box.fault(serial, body.kind, body.params)
        return {"dongles": box.dongles()}

    @app.delete("/api/dongles/{serial}/faults")
    def clear_faults(serial: str) -> dict[str, Any]:
        box.clear_faults(serial)
        return {"dongles": box.dongles()}

    @app.get("/api/network")
    def network() -> dict[str, Any]:
        return box.network()

    @app.put("/api/network")
    def set_network(body: NetworkBody) -> dict[str, Any]:
        """Cut (``down``), slow (``slow`` + ``delay_ms``) or restore (``up``) TV ↔ gateway."""
        return box.set_network(body.mode, body.delay_ms)

    @app.post("/api/gateway/restart")
    def restart_gateway() -> dict[str, Any]:
        return box.restart_gateway()

    @app.post("/api/daemon/kill")
    def kill_daemon() -> dict[str, Any]:
        return box.kill_daemon()

    @app.post("/api/daemon/start")
    def start_daemon() -> dict[str, Any]:
        return box.start_daemon()

    @app.post("/api/daemon/restart")
    def restart_daemon() -> dict[str, Any]:
        box.kill_daemon()
        return box.start_daemon()

    @app.get("/api/meters")
    def meters() -> dict[str, Any]:
        """The household's meters: where the purchase card is, the card meter's count, balance
        and last outcome, the token meter's credit and last answer, the remote balance as the
        utility reports it."""
        return box.meters()

    @app.post("/api/card/move")
    def move_card(body: CardMoveBody) -> dict[str, Any]:
        """Move the purchase card; into the meter runs the meter's rules and answers its outcome."""
        return box.move_card(body.to)

    @app.post("/api/meters/token")
    def enter_token(body: TokenBody) -> dict[str, Any]:
        """Type a token on the keypad meter; the meter's answer (accepted or why not)."""
        return box.enter_token(body.digits)

    return app
