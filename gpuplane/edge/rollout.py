"""Wave rollout of a model to edge sites, each wave gated on the sites' own measurements.

Semantics (the same as the ``EdgeDeployment`` component's rollout contract, components/edge/spec.py;
this package may import components, but the contract is restated here so the demo reads on its own):

- Waves: the canary site(s) first, then cumulative percentages of the whole fleet (canary
  included), rounded up to whole sites; a wave's sites are the first not-yet-assigned sites in
  declaration order. With 6 sites, one canary and ``percentages=(50, 100)`` the second wave
  brings the fleet to ceil(50 % × 6) = 3 sites (2 more) and the third to all 6. Every wave must add
  a site and the last percentage must be 100.
- Max unavailable: inside a wave, at most ``max_unavailable_percent`` of the wave's sites (at least
  one) reload at once (a batch); the next batch starts when the previous one is measured.
- Gate, per site of the wave, on what that site answers: the controller sends it the held-out
  sample one history per request; the p99 of the on-device inference time the site reports for
  those requests must be ≤ ``max_p99_ms``, and the top-k agreement of its answers with the cloud
  (PyTorch) model's top-k ≥ ``min_agreement``. The round trip (HTTP and JSON on top, as the
  controller sees it) is recorded beside it, not gated: it measures the link and the host's load. A site
  that refuses the model (a digest mismatch, a file it cannot open) fails its gate too.
- A failed gate rolls every site of the wave that took the new model back to the model it served
  before (its cache holds it, so no download), and stops the rollout: later waves never see the
  new model.
- A site whose link is down when its wave comes is deferred, not failed: it keeps serving what it
  has, and ``catch_up`` moves it to the rollout's model (and gates it) once its link is back, if
  the rollout was not rolled back.

Sites are reached through :class:`SiteLink` (HTTP to ``workloads.edge.site``), whose ``cut`` flag
stands for the site's uplink: while it is set every controller call raises :class:`LinkDown`, and
the site itself keeps serving its local clients. Every action is recorded per site
(:class:`SiteRecord`) for the report.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


class LinkDown(Exception):
    """The site cannot be reached from the controller."""


class RolloutError(ValueError):
    """The rollout's policy does not fit the fleet (collected, raised once)."""


@dataclass(frozen=True)
class Gate:
    """The per-site check after a site takes a new model."""

    max_p99_ms: float = 100.0
    """Bound on the p99 on-device inference time (ms) of the held-out sample sent one history per request."""
    min_agreement: float = 0.9
    """Least mean top-k overlap with the cloud model's answers on the held-out sample."""
    k: int = 10
    min_examples: int = 20
    """Fewest held-out examples a gate may be decided on (fewer: the gate fails)."""


@dataclass(frozen=True)
class Policy:
    canary: tuple[str, ...]
    """Site names of the first wave."""
    percentages: tuple[float, ...] = (50.0, 100.0)
    """Cumulative shares (%) of the whole fleet after each wave past the canary; increasing, the last 100."""
    max_unavailable_percent: float = 25.0
    """Share of a wave's sites reloading at once, rounded down, at least one site."""
    gate: Gate = field(default_factory=Gate)


@dataclass(frozen=True)
class ModelRef:
    uri: str
    sha256: str
    label: str
    """A short name for reports (``v1``, ``v2-int8``, ``bad``)."""


def plan_waves(sites: Sequence[str], policy: Policy) -> list[list[str]]:
    """The waves of site names; ``RolloutError`` listing every problem with the policy."""
    problems = []
    unknown = [c for c in policy.canary if c not in sites]
    if unknown:
        problems.append(f"canary={list(policy.canary)}: {unknown} are not sites of the fleet ({list(sites)})")
    if not policy.canary:
        problems.append("canary=[]: name at least one canary site")
    p = list(policy.percentages)
    if any(not 0 < x <= 100 for x in p) or any(b <= a for a, b in itertools.pairwise(p)):
        problems.append(f"percentages={p}: each must be in (0, 100] and larger than the one before")
    elif not p or p[-1] != 100:
        problems.append(f"percentages={p}: the last wave must reach 100 (else some sites never get the model)")
    if not 0 < policy.max_unavailable_percent <= 100:
        problems.append(f"max_unavailable_percent={policy.max_unavailable_percent}: must be in (0, 100]")
    if not 0 <= policy.gate.min_agreement <= 1 or policy.gate.max_p99_ms <= 0 or policy.gate.k < 1:
        problems.append(f"gate={policy.gate}: min_agreement in [0, 1], max_p99_ms > 0 and k ≥ 1")
    waves = [list(policy.canary)]
    if not problems:
        assigned = len(policy.canary)
        rest = [s for s in sites if s not in policy.canary]
        for pct in p:
            target = math.ceil(len(sites) * pct / 100 - 1e-9)
            wave = rest[: max(0, target - assigned)]
            if not wave:
                problems.append(f"percentages: {pct:g} % adds no site (the earlier waves already cover "
                                f"{assigned} of {len(sites)} sites); remove it or raise it")
            rest, assigned = rest[len(wave):], assigned + len(wave)
            waves.append(wave)
    if problems:
        raise RolloutError("rollout policy has problems:\n" + "\n".join(f"  - {x}" for x in problems))
    return waves


def batch_size(wave: list[str], policy: Policy) -> int:
    """Sites of ``wave`` reloading at once: ``max_unavailable_percent`` of it, rounded down, at least 1."""
    return max(1, math.floor(len(wave) * policy.max_unavailable_percent / 100 + 1e-9))


@dataclass
class Event:
    t_s: float
    """Seconds since the controller started."""
    kind: str
    """``start``, ``load``, ``refused``, ``gate``, ``rollback``, ``deferred``, ``catch-up``, ``link``, ``restart``."""
    sha256: str | None
    """The model the site serves after the event."""
    detail: str = ""
    gate: dict[str, Any] | None = None


@dataclass
class SiteRecord:
    name: str
    group: str
    url: str
    events: list[Event] = field(default_factory=list)
    rollbacks: int = 0

    @property
    def sha256(self) -> str | None:
        return next((e.sha256 for e in reversed(self.events) if e.sha256), None)


class SiteLink:
    """The controller's HTTP link to one site; ``cut`` simulates the uplink being down."""

    def __init__(self, name: str, group: str, url: str, timeout_s: float = 30.0) -> None:
        import httpx

        self.name, self.group, self.url = name, group, url
        self.cut = False
        self._http = httpx.Client(base_url=url, timeout=timeout_s)

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        import httpx

        if self.cut:
            raise LinkDown(f"{self.name}: link down")
        try:
            r = self._http.request(method, path, json=body)
        except httpx.TransportError as err:
            raise LinkDown(f"{self.name}: {type(err).__name__}") from err
        return r.status_code, r.json()

    def health(self) -> dict[str, Any]:
        code, body = self._call("GET", "/v1/health")
        if code != 200:
            raise LinkDown(f"{self.name}: health answered {code}")
        return body

    def load(self, model: ModelRef) -> tuple[int, dict[str, Any]]:
        return self._call("POST", "/v1/model", {"uri": model.uri, "sha256": model.sha256})

    def infer(self, history: list[int], k: int) -> tuple[int, dict[str, Any]]:
        return self._call("POST", "/v1/infer", {"history": [history], "k": k})

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class Sample:
    """The held-out sample and the cloud model's answers to it."""

    histories: list[list[int]]
    want: np.ndarray
    """(E, k) top-k item ids of the cloud (PyTorch) model."""

    @classmethod
    def of(cls, histories: np.ndarray, want: np.ndarray) -> Sample:
        rows = [[int(v) for v in row if v] for row in histories]
        return cls(rows, want)


def measure(link: SiteLink, sample: Sample, gate: Gate) -> dict[str, Any]:
    """Send the sample one history per request: on-device and round-trip p50/p99, top-k agreement."""
    device, trip, got, served = [], [], [], set()
    for row in sample.histories:
        t = time.perf_counter()
        code, body = link.infer(row, gate.k)
        trip.append((time.perf_counter() - t) * 1000)
        if code != 200:
            raise LinkDown(f"{link.name}: infer answered {code}: {body.get('error')}")
        device.append(float(body["inference_ms"]))
        got.append(body["top_items"][0])
        served.add(body["sha256"])
    want = sample.want[:, : gate.k]
    agree = float(np.mean([len(set(g) & set(w.tolist())) / gate.k for g, w in zip(got, want, strict=True)]))
    p99 = float(np.percentile(device, 99))
    enough = len(device) >= gate.min_examples
    return {"p50_ms": float(np.percentile(device, 50)), "p99_ms": p99, "agreement": agree,
            "round_trip_p50_ms": float(np.percentile(trip, 50)), "round_trip_p99_ms": float(np.percentile(trip, 99)),
            "requests": len(device), "served_by": sorted(served),
            "passed": enough and p99 <= gate.max_p99_ms and agree >= gate.min_agreement}


@dataclass
class RolloutResult:
    model: ModelRef
    outcome: Literal["completed", "rolled back", "running"] = "running"
    waves: list[list[str]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    """One per site measured: site, wave, figures, passed."""
    deferred: list[str] = field(default_factory=list)
    """Sites whose link was down when their wave came (and have not caught up yet)."""
    failed_wave: int | None = None
    rolled_back: list[str] = field(default_factory=list)
    rollback_failed: list[str] = field(default_factory=list)
    """Sites that took the model, failed, and could not be rolled back (link down): they keep it for now."""


class Controller:
    """Rolls models out over ``links``; keeps one :class:`SiteRecord` per site."""

    def __init__(self, links: Sequence[SiteLink], sample: Sample, clock: Callable[[], float] = time.monotonic) -> None:
        self.links = {link.name: link for link in links}
        self.sample = sample
        self._clock = clock
        self.t0 = clock()
        self.records = {link.name: SiteRecord(link.name, link.group, link.url) for link in links}

    def note(self, site: str, kind: str, sha256: str | None, detail: str = "", gate: dict[str, Any] | None = None) -> None:
        self.records[site].events.append(Event(round(self._clock() - self.t0, 3), kind, sha256, detail, gate))

    def observe(self, kind: str = "start", detail: str = "") -> None:
        """Record every reachable site's current model."""
        for name, link in self.links.items():
            try:
                h = link.health()
            except LinkDown as err:
                self.note(name, kind, self.records[name].sha256, f"unreachable: {err}")
                continue
            self.note(name, kind, (h.get("model") or {}).get("sha256"), detail)

    def _apply(self, name: str, model: ModelRef, gate: Gate, wave: int, result: RolloutResult) -> bool | None:
        """Load ``model`` on ``name`` and gate it: True passed, False failed, None deferred (link down)."""
        link = self.links[name]
        try:
            code, body = link.load(model)
        except LinkDown as err:
            self.note(name, "deferred", self.records[name].sha256, f"{model.label}: {err}")
            return None
        if code != 200:
            self.note(name, "refused", body.get("sha256"), f"{model.label}: {code} {body.get('error')}")
            result.gates.append({"site": name, "wave": wave, "passed": False, "refused": body.get("error")})
            return False
        self.note(name, "load", body["sha256"], f"{model.label} ({body['source']}, {body['load_ms']:.0f} ms)")
        try:
            figures = measure(link, self.sample, gate)
        except LinkDown as err:
            figures = {"passed": False, "error": str(err)}
        verdict = "passed" if figures["passed"] else "FAILED"
        self.note(name, "gate", body["sha256"], f"{model.label} wave {wave}: {verdict}", figures)
        result.gates.append({"site": name, "wave": wave, **figures})
        return bool(figures["passed"])

    def _rollback(self, name: str, to: ModelRef, why: str) -> bool:
        try:
            code, body = self.links[name].load(to)
        except LinkDown as err:  # the link dropped after the gate: the site keeps the new model until it is back
            self.note(name, "rollback", self.records[name].sha256, f"to {to.label} NOT DONE ({err}): {why}")
            return False
        if code != 200:
            self.note(name, "rollback", body.get("sha256"), f"to {to.label} FAILED: {code} {body.get('error')}")
            return False
        self.records[name].rollbacks += 1
        self.note(name, "rollback", body["sha256"], f"to {to.label} ({body['source']}): {why}")
        return True

    def rollout(self, model: ModelRef, policy: Policy, previous: dict[str, ModelRef],
                before_wave: Callable[[int, list[str]], None] | None = None) -> RolloutResult:
        """Roll ``model`` out in waves; ``previous[site]`` is what a rollback restores."""
        result = RolloutResult(model, waves=plan_waves(list(self.links), policy))
        for i, wave in enumerate(result.waves):
            if before_wave is not None:
                before_wave(i, wave)
            took: list[str] = []
            failed = False
            size = batch_size(wave, policy)
            for b in range(0, len(wave), size):
                for name in wave[b : b + size]:
                    verdict = self._apply(name, model, policy.gate, i, result)
                    if verdict is None:
                        result.deferred.append(name)
                        continue
                    if self.records[name].sha256 == model.sha256:
                        took.append(name)
                    failed |= not verdict
                if failed:
                    break
            if failed:
                result.outcome, result.failed_wave = "rolled back", i
                for name in took:
                    if self._rollback(name, previous[name], f"gate failed at wave {i}"):
                        result.rolled_back.append(name)
                    else:
                        result.rollback_failed.append(name)
                return result
        result.outcome = "completed"
        return result

    def catch_up(self, result: RolloutResult, policy: Policy, previous: dict[str, ModelRef]) -> list[str]:
        """Move deferred sites whose link is back to ``result.model`` (gated); return those caught up."""
        if result.outcome != "completed":
            result.deferred.clear()  # nothing to catch up with: the fleet went back to the previous model
            return []
        done = []
        for name in list(result.deferred):
            verdict = self._apply(name, result.model, policy.gate, len(result.waves), result)
            if verdict is None:
                continue
            result.deferred.remove(name)
            if verdict:
                self.note(name, "catch-up", self.records[name].sha256, f"{result.model.label} after reconnecting")
                done.append(name)
            elif self.records[name].sha256 == result.model.sha256:
                self._rollback(name, previous[name], "gate failed at catch-up")
        return done
