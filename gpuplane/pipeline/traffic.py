"""A steady request generator for the model loop: open-loop OIP v2 requests through the router.

It runs in its own thread (its own asyncio loop) for the whole loop, so requests keep flowing
while models are trained, evaluated, canaried, promoted and rolled back. Each request is recorded
(send time, latency, status, the backend that answered, from the router's ``x-gpuplane-backend``
header); :func:`summarise` turns the records of a period into p50/p99 and a count of 5xx.
Requests that find ``max_in_flight`` already in flight wait for a slot (the wait counts in
their latency): the generator never drops a request silently.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpuplane.demo.traffic import Example, infer_body

BACKEND_HEADER = "x-gpuplane-backend"


@dataclass
class Record:
    sent_s: float
    """Seconds since the generator started."""
    latency_s: float
    status: int
    """HTTP status; 0 when no reply came (connection error, timeout)."""
    backend: str
    error: str = ""


@dataclass
class RequestGenerator:
    url: str
    """Inference URL (``http://host:port/v2/models/<name>/infer``)."""
    examples: Sequence[Example]
    rate_per_s: float
    max_in_flight: int = 32
    timeout_s: float = 30.0
    records: list[Record] = field(default_factory=list)
    started_at: float = 0.0
    """``time.perf_counter()`` when sending began."""

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the generator started (the records' clock)."""
        return time.perf_counter() - self.started_at

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="requests", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    async def _run(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
        slots = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            i = 0
            period = 1.0 / self.rate_per_s
            while not self._stop.is_set():
                due = i * period
                delay = due - self.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = infer_body(self.examples[i % len(self.examples)])
                task = asyncio.create_task(self._one(client, slots, body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, client: Any, slots: asyncio.Semaphore, body: dict[str, object]) -> None:
        import httpx

        sent = self.now()
        async with slots:
            try:
                r = await client.post(self.url, json=body)
                rec = Record(sent, self.now() - sent, r.status_code, r.headers.get(BACKEND_HEADER, ""),
                             "" if r.status_code == 200 else r.text[:200])
            except httpx.HTTPError as exc:
                rec = Record(sent, self.now() - sent, 0, "", f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.records.append(rec)


def summarise(records: Sequence[Record], start_s: float, end_s: float) -> dict[str, Any]:
    """Requests sent in [start_s, end_s): count, per-status counts, 5xx, no-reply, p50/p99 of the 200s (ms)."""
    chosen = [r for r in records if start_s <= r.sent_s < end_s]
    codes: dict[str, int] = {}
    by_backend: dict[str, int] = {}
    for r in chosen:
        codes[str(r.status)] = codes.get(str(r.status), 0) + 1
        if r.backend:
            by_backend[r.backend] = by_backend.get(r.backend, 0) + 1
    ok = np.array([r.latency_s for r in chosen if r.status == 200], dtype=np.float64) * 1e3
    return {
        "start_s": round(start_s, 3), "end_s": round(end_s, 3), "requests": len(chosen), "codes": codes,
        "errors_5xx": sum(1 for r in chosen if r.status >= 500), "no_reply": sum(1 for r in chosen if r.status == 0),
        "by_backend": by_backend,
        "p50_ms": round(float(np.percentile(ok, 50)), 2) if ok.size else None,
        "p99_ms": round(float(np.percentile(ok, 99)), 2) if ok.size else None,
    }


def write_csv(path: Any, records: Sequence[Record]) -> None:
    rows = ["sent_s,latency_ms,status,backend"]
    rows += [f"{r.sent_s:.4f},{r.latency_s * 1e3:.3f},{r.status},{r.backend}" for r in records]
    path.write_text("\n".join(rows) + "\n")
