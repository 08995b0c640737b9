"""ASGI pieces shared by the activator and the router (both plain-ASGI forwarding proxies)."""

from __future__ import annotations

from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send


class ForwardFirst:
    """ASGI middleware: HTTP requests outside ``prefix`` go straight to ``forward`` (no framework
    routing on the hot path); the rest (the proxy's own routes, the lifespan) to the app."""

    def __init__(self, app: ASGIApp, forward: ASGIApp, prefix: str) -> None:
        self.app, self.forward, self.prefix = app, forward, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.prefix):
            await self.forward(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class GracefulServer(uvicorn.Server):
    """uvicorn without re-raising the signal after a graceful stop, so SIGTERM exits 0; a second
    signal forces the exit."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
