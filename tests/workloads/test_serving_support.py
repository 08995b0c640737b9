"""Helpers shared by the serving and activator tests (no tests here).

A tiny randomly initialised model written in the training export format, free ports, a real
uvicorn server in a thread, and polling helpers. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run torch ops on one thread for a test module (restored after): on a small, busy CI
    host, OpenMP wake-ups on tiny ops otherwise cost milliseconds each."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_model_dir(path: Path, *, num_items: int = 50, block_size: int = 8, n_embd: int = 16,
                    items: list[int] | None = None, seed: int = 0) -> Path:
    """A tiny NextItemModel export: model.safetensors, config.json and optionally items.json."""
    import torch
    from safetensors.torch import save_file

    from workloads.model import ModelConfig, NextItemModel

    torch.manual_seed(seed)
    cfg = ModelConfig(num_items=num_items, block_size=block_size, n_layer=2, n_head=2, n_embd=n_embd)
    model = NextItemModel(cfg)
    path.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(path / "model.safetensors"))
    (path / "config.json").write_text(cfg.to_json())
    if items is not None:
        (path / "items.json").write_text(json.dumps(items))
    return path


def infer_body(rows: list[list[int]], k: int | None = None, **extra: Any) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [{"name": "item_ids", "datatype": "INT64",
                                     "shape": [len(rows), len(rows[0]) if rows else 0], "data": rows}]
    if k is not None:
        inputs.append({"name": "k", "datatype": "INT64", "shape": [1], "data": [k]})
    return {"inputs": inputs, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_seconds: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} not reached within {timeout_seconds}s")


@contextlib.contextmanager
def uvicorn_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with real uvicorn on a free loopback port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10.0, "uvicorn start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10.0)
