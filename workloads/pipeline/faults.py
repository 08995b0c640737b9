"""``python -m workloads.pipeline.faults --error-rate R [--seed S] -- <model server flags>``:
the model server (``workloads.serving``) with injected inference errors.

For the rollback drill: a model that passed the offline gate but fails at serving time, as a
runtime mismatch or a corrupt weight would make it fail. A share ``R`` of ``POST .../infer``
requests (drawn with a seeded generator) gets ``500 {"error": "injected fault ..."}`` from an
ASGI middleware in front of the real app; every other route (health, readiness, metadata) is
untouched, so the server starts, passes readiness and is sent traffic like any other. Nothing
here is used outside drills and tests.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


class InjectInferErrors:
    """ASGI middleware: answer a share of inference requests with 500."""

    def __init__(self, app: ASGIApp, error_rate: float, seed: int = 0) -> None:
        self.app = app
        self.error_rate = error_rate
        self.rng = random.Random(seed)
        self.injected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/infer")
                and self.rng.random() < self.error_rate):
            self.injected += 1
            body = json.dumps({"error": f"injected fault {self.injected} (workloads.pipeline.faults, "
                                        f"error rate {self.error_rate:g})"}).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def parse(argv: Sequence[str]) -> tuple[float, int, list[str]]:
    args = list(argv)
    if "--" not in args:
        raise SystemExit("usage: python -m workloads.pipeline.faults --error-rate R [--seed S] -- <server flags>")
    split = args.index("--")
    own, rest = args[:split], args[split + 1:]
    import argparse

    p = argparse.ArgumentParser(prog="python -m workloads.pipeline.faults")
    p.add_argument("--error-rate", type=float, required=True, help="share of infer requests answered 500 (0..1)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(own)
    if not 0 <= a.error_rate <= 1:
        p.error(f"--error-rate={a.error_rate} must be between 0 and 1")
    return a.error_rate, a.seed, rest


def main(argv: Sequence[str] | None = None) -> int:
    error_rate, seed, rest = parse(sys.argv[1:] if argv is None else argv)
    import workloads.serving.__main__ as server

    create_app = server.create_app

    def faulty_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.add_middleware(InjectInferErrors, error_rate=error_rate, seed=seed)
        return app

    server.create_app = faulty_app  # the server's main() builds its app through this name
    return int(server.main(rest))


if __name__ == "__main__":
    sys.exit(main())
