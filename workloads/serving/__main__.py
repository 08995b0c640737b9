"""Entry point: ``python -m workloads.serving --model-dir DIR [options]``.

Contract (what InferenceEndpoint, the activator and the Dockerfile rely on):

- Serves the model in DIR (``model.safetensors``, ``config.json``, optional ``items.json``)
  over the Open Inference Protocol v2 on ``--host``:``--port`` (default: ``$PORT``, else 8080).
  The port answers ``/v2/health/live`` within a fraction of a second of start; readiness
  (``/v2/health/ready``) follows once the weights are loaded and warmed up.
- ``serve`` as the only argument (SageMaker's ``docker run IMAGE serve``) means SageMaker's contract:
  the model in /opt/ml/model, port 8080 on all interfaces, ``/ping`` and ``/invocations``, the
  model name from ``$GPUPLANE_MODEL_NAME``.
- SIGTERM (or SIGINT): readiness turns false and new inference requests get 503, requests in
  flight finish (up to ``--drain-timeout-seconds``), then the process exits 0. A second signal
  stops at once with exit code 1.
- Exit codes: 0 after a drain, 1 when the model fails to load or the drain was cut short, 2 on
  bad arguments or a missing model directory.
- Cold-start phases are logged on one line when ready and exported on ``/metrics``.
- OpenTelemetry traces are off unless the standard ``OTEL_*`` variables turn them on
  (workloads/serving/tracing.py); a ``TRACEPARENT`` variable puts the cold-start span under the
  request that started this process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from workloads.serving import tracing
from workloads.serving.app import ServerConfig, ServingState, create_app
from workloads.serving.metrics import process_start_monotonic
from workloads.serving.model_runner import ModelDirError, ModelRunner, check_model_dir

log = logging.getLogger("gpuplane.serving")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.serving",
                                description="Serve a gpuplane next-item model over the Open Inference Protocol v2.")
    p.add_argument("--model-dir", type=Path, required=True,
                   help="training export: model.safetensors, config.json, optional items.json")
    p.add_argument("--model-name", default="recommender", help="name in /v2/models/{name} (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")),
                   help="bind port (default: $PORT, else 8080)")
    p.add_argument("--max-batch-size", type=_positive_int, default=64,
                   help="most rows per model call and per request (default: %(default)s)")
    p.add_argument("--max-batch-delay-ms", type=_non_negative_float, default=5.0,
                   help="longest a request waits for batch mates (default: %(default)s)")
    p.add_argument("--max-queue", type=_positive_int, default=256,
                   help="most requests waiting for a batch; more get 503 + Retry-After (default: %(default)s)")
    p.add_argument("--max-body-bytes", type=_positive_int, default=1 << 20,
                   help="largest request body; larger gets 413 (default: %(default)s)")
    p.add_argument("--auth-token-file", type=Path,
                   help="file holding a bearer token that metadata and inference requests must send")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--torch-threads", type=_positive_int,
                   help="CPU threads for torch ops (default: one per core); 1 suits small models on busy hosts")
    p.add_argument("--drain-timeout-seconds", type=_non_negative_float, default=30.0,
                   help="longest SIGTERM waits for in-flight requests (default: %(default)s)")
    p.add_argument("--feature-server-url",
                   help="Feast feature server (`feast serve`) URL: lets requests send `user_id` instead of `item_ids`")
    p.add_argument("--feature-cache-seconds", type=_non_negative_float, default=0.0,
                   help="cache each user's history this long in-process (default: %(default)s, no cache)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM/SIGINT turned into drain-then-exit instead of an immediate stop.

    uvicorn's own handler stops accepting at once and re-raises the signal after shutdown (so
    the process would die of SIGTERM, not exit 0); this one drains through ``ServingState``."""

    def __init__(self, config: uvicorn.Config, state: ServingState, drain_timeout_seconds: float) -> None:
        super().__init__(config)
        self.state = state
        self.drain_timeout_seconds = drain_timeout_seconds
        self.exit_code = 0
        self._drain_requested = False
        self._drain_task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_requested:  # second signal: stop now
            self.exit_code = 1
            self.should_exit = self.force_exit = True
            return
        self._drain_requested = True  # picked up by on_tick, on the event loop

    def fail(self) -> None:
        """Stop with exit code 1 (the model did not load)."""
        self.exit_code = 1
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_requested and self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(), name="drain")
        return await super().on_tick(counter)

    async def _drain(self) -> None:
        log.info("draining: readiness is false, new requests get 503; %d in flight", self.state.in_flight)
        self.state.begin_drain()
        if not await self.state.wait_idle(self.drain_timeout_seconds):
            log.warning("drain timed out after %.1fs with %d requests in flight", self.drain_timeout_seconds,
                        self.state.in_flight)
            self.exit_code = 1
        self.should_exit = True


SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments, with SageMaker's ``serve`` (``docker run IMAGE serve``) read as its contract:
    the model SageMaker unpacked in /opt/ml/model, port 8080 on all interfaces, the model name from
    ``$GPUPLANE_MODEL_NAME`` (InferenceEndpoint sets it); flags after ``serve`` still apply."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        args = ["--model-dir", SAGEMAKER_MODEL_DIR, "--port", "8080", "--host", "0.0.0.0",
                "--model-name", os.environ.get("GPUPLANE_MODEL_NAME", "recommender"), *args[1:]]
    return build_parser().parse_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    process_start = process_start_monotonic()
    parser = build_parser()
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_model_dir(args.model_dir)
    except ModelDirError as exc:
        parser.error(str(exc))
    token = None
    if args.auth_token_file is not None:
        try:
            token = args.auth_token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"--auth-token-file {args.auth_token_file}: {exc.strerror}")
        if not token:
            parser.error(f"--auth-token-file {args.auth_token_file} is empty; write the token into it")

    try:
        tracer = tracing.setup("gpuplane-serving")
    except ValueError as exc:
        parser.error(str(exc))
    config = ServerConfig(model_name=args.model_name, max_batch_size=args.max_batch_size,
                          max_batch_delay_ms=args.max_batch_delay_ms, max_queue=args.max_queue,
                          max_body_bytes=args.max_body_bytes, auth_token=token)
    runner = ModelRunner(args.model_dir, model_name=args.model_name, device=args.device,
                         warmup_batch_sizes=tuple(sorted({1, args.max_batch_size})),
                         torch_threads=args.torch_threads)
    server: DrainingServer | None = None

    def on_fatal() -> None:
        if server is not None:
            server.fail()

    history_source = None
    if args.feature_server_url:
        from workloads.serving.history import FeastHistorySource

        history_source = FeastHistorySource(args.feature_server_url, cache_ttl_seconds=args.feature_cache_seconds,
                                            tracer=tracer)
    app = create_app(runner, config, history_source=history_source, process_start=process_start, on_fatal=on_fatal,
                     tracer=tracer)
    uv_config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                               lifespan="on", timeout_graceful_shutdown=max(1, int(args.drain_timeout_seconds)))
    server = DrainingServer(uv_config, app.state.serving, args.drain_timeout_seconds)
    try:
        server.run()
    finally:
        tracing.shutdown(tracer)  # flush spans still batched
    if not server.started and server.exit_code == 0:
        return 1  # could not bind, or startup failed: uvicorn has logged why
    log.info("stopped (exit code %d)", server.exit_code)
    return server.exit_code


if __name__ == "__main__":
    sys.exit(main())
