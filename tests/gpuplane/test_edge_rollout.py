"""The edge rollout controller (gpuplane/edge/rollout.py) on in-memory sites: waves, gates, rollback,
deferral and catch-up, policy errors. The same controller on real site processes is in test_edge_demo.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gpuplane.edge.rollout import (
    Controller,
    Gate,
    LinkDown,
    ModelRef,
    Policy,
    RolloutError,
    Sample,
    batch_size,
    plan_waves,
)

SITES = ["a1", "a2", "b1", "b2", "c1", "c2"]
GOOD = ModelRef("file:///good.onnx", "g" * 64, "good")
BAD = ModelRef("file:///bad.onnx", "b" * 64, "bad")
OLD = ModelRef("file:///old.onnx", "o" * 64, "old")
SLOW = ModelRef("file:///slow.onnx", "s" * 64, "slow")


@pytest.mark.parametrize(("percentages", "waves"), [
    ((50, 100), [["a1"], ["a2", "b1"], ["b2", "c1", "c2"]]),  # ceil(50 % of 6) = 3 sites, the canary included
    ((100,), [["a1"], ["a2", "b1", "b2", "c1", "c2"]]),
    ((34, 67, 100), [["a1"], ["a2", "b1"], ["b2", "c1"], ["c2"]]),  # ceil(2.04) = 3, ceil(4.02) = 5
])
def test_waves_are_the_canary_then_cumulative_shares_of_the_fleet(percentages: tuple[float, ...],
                                                                  waves: list[list[str]]) -> None:
    assert plan_waves(SITES, Policy(canary=("a1",), percentages=percentages)) == waves


@pytest.mark.parametrize(("percent", "wave", "size"), [(25, 6, 1), (50, 6, 3), (50, 3, 1), (10, 2, 1), (100, 4, 4)])
def test_max_unavailable_is_a_share_of_the_wave_rounded_down_at_least_one(percent: float, wave: int, size: int) -> None:
    assert batch_size([f"s{i}" for i in range(wave)], Policy(canary=("a1",), max_unavailable_percent=percent)) == size


def test_every_policy_problem_is_reported_at_once() -> None:
    with pytest.raises(RolloutError) as e:
        plan_waves(SITES, Policy(canary=("zz",), percentages=(60, 40), max_unavailable_percent=0,
                                 gate=Gate(min_agreement=2)))
    msg = str(e.value)
    assert "canary=['zz']: ['zz'] are not sites" in msg
    assert "percentages=[60, 40]: each must be in (0, 100] and larger than the one before" in msg
    assert "max_unavailable_percent=0" in msg and "min_agreement in [0, 1]" in msg
    with pytest.raises(RolloutError, match=r"percentages=\[50\]: the last wave must reach 100"):
        plan_waves(SITES, Policy(canary=("a1",), percentages=(50,)))
    with pytest.raises(RolloutError, match=r"10 % adds no site \(the earlier waves already cover 1 of 6 sites\)"):
        plan_waves(SITES, Policy(canary=("a1",), percentages=(10, 100)))


class FakeSite:
    """A site in memory: answers the cloud model's top-k for GOOD/OLD, reversed ids for BAD."""

    def __init__(self, name: str, want: np.ndarray) -> None:
        self.name, self.group, self.url = name, name[0], f"mem://{name}"
        self.cut = False
        self.model = OLD.sha256
        self.loads: list[str] = []
        self.want = want

    def _up(self) -> None:
        if self.cut:
            raise LinkDown(f"{self.name}: link down")

    def health(self) -> dict[str, Any]:
        self._up()
        return {"model": {"sha256": self.model}, "reloads": len(self.loads)}

    def load(self, model: ModelRef) -> tuple[int, dict[str, Any]]:
        self._up()
        if model.sha256 == "x" * 64:
            return 409, {"error": "digest mismatch", "sha256": self.model}
        self.model = model.sha256
        self.loads.append(model.label)
        return 200, {"sha256": model.sha256, "source": "fetched", "load_ms": 1.0}

    def infer(self, history: list[int], k: int) -> tuple[int, dict[str, Any]]:
        self._up()
        row = self.want[len(history) % len(self.want)]
        items = [9999 - int(v) for v in row] if self.model == BAD.sha256 else [int(v) for v in row]
        device_ms = 2.0 if self.model == SLOW.sha256 else 0.2
        return 200, {"top_items": [items[:k]], "sha256": self.model, "inference_ms": device_ms}


@pytest.fixture
def fleet() -> tuple[Controller, dict[str, FakeSite]]:
    want = np.arange(40).reshape(4, 10) + 1  # (E, k)
    sites = {n: FakeSite(n, want) for n in SITES}
    histories = np.array([[0, 0, 1, 2], [0, 1, 2, 3], [1, 2, 3, 4], [0, 0, 0, 5]])  # lengths 2, 3, 4, 1
    sample = Sample.of(histories, want[[2, 3, 0, 1]])  # the fake answers row len(history) % 4
    return Controller(list(sites.values()), sample), sites  # type: ignore[arg-type]


PREVIOUS = {n: OLD for n in SITES}
POLICY = Policy(canary=("a1",), percentages=(50, 100), max_unavailable_percent=100, gate=Gate(k=10, min_examples=4))


def test_a_bad_model_is_rolled_back_at_the_canary_and_no_other_site_is_touched(fleet) -> None:
    ctl, sites = fleet
    result = ctl.rollout(BAD, POLICY, PREVIOUS)
    assert (result.outcome, result.failed_wave, result.rolled_back) == ("rolled back", 0, ["a1"])
    assert result.gates[0]["agreement"] == 0.0 and not result.gates[0]["passed"]
    assert sites["a1"].loads == ["bad", "old"] and sites["a1"].model == OLD.sha256
    assert ctl.records["a1"].rollbacks == 1
    for name in SITES[1:]:
        assert sites[name].loads == [] and sites[name].model == OLD.sha256, name


def test_a_good_model_goes_out_wave_by_wave_each_site_gated(fleet) -> None:
    ctl, sites = fleet
    seen: list[tuple[int, list[str], list[str]]] = []
    result = ctl.rollout(GOOD, POLICY, PREVIOUS, before_wave=lambda i, w: seen.append(
        (i, w, [n for n, s in sites.items() if s.model == GOOD.sha256])))
    assert result.outcome == "completed" and all(g["passed"] and g["agreement"] == 1.0 for g in result.gates)
    assert [(i, done) for i, _, done in seen] == [(0, []), (1, ["a1"]), (2, ["a1", "a2", "b1"])]
    assert all(s.model == GOOD.sha256 for s in sites.values())


def test_the_on_device_latency_bound_fails_the_gate_like_agreement_does(fleet) -> None:
    ctl, sites = fleet
    policy = Policy(canary=("a1",), gate=Gate(max_p99_ms=1.0, min_examples=4))
    result = ctl.rollout(SLOW, policy, PREVIOUS)
    assert result.outcome == "rolled back" and result.gates[0]["p99_ms"] == 2.0 and result.gates[0]["agreement"] == 1.0
    assert sites["a1"].model == OLD.sha256


def test_a_failure_in_a_later_wave_rolls_back_only_that_wave(fleet) -> None:
    ctl, sites = fleet
    sites["b1"].load = lambda model: (409, {"error": "digest mismatch", "sha256": OLD.sha256})  # type: ignore[method-assign]
    result = ctl.rollout(GOOD, POLICY, PREVIOUS)
    assert (result.outcome, result.failed_wave) == ("rolled back", 1)
    assert result.rolled_back == ["a2"]  # b1 refused (kept its model); b2 is in the next wave, never loaded
    assert {n: s.model == GOOD.sha256 for n, s in sites.items()} == {
        "a1": True, "a2": False, "b1": False, "b2": False, "c1": False, "c2": False}


def test_a_cut_off_site_is_deferred_then_caught_up_when_its_link_is_back(fleet) -> None:
    ctl, sites = fleet
    sites["c2"].cut = True
    result = ctl.rollout(GOOD, POLICY, PREVIOUS)
    assert result.outcome == "completed" and result.deferred == ["c2"] and sites["c2"].model == OLD.sha256
    assert ctl.catch_up(result, POLICY, PREVIOUS) == []  # still cut off: stays deferred
    sites["c2"].cut = False
    assert ctl.catch_up(result, POLICY, PREVIOUS) == ["c2"]
    assert sites["c2"].model == GOOD.sha256 and result.deferred == []
    assert [e.kind for e in ctl.records["c2"].events] == ["deferred", "deferred", "load", "gate", "catch-up"]


def test_after_a_rollback_a_cut_off_site_has_nothing_to_catch_up(fleet) -> None:
    ctl, sites = fleet
    sites["c2"].cut = True
    result = ctl.rollout(BAD, POLICY, PREVIOUS)
    sites["c2"].cut = False
    assert ctl.catch_up(result, POLICY, PREVIOUS) == [] and sites["c2"].loads == []


def test_a_gate_on_fewer_examples_than_its_minimum_fails(fleet) -> None:
    ctl, sites = fleet
    result = ctl.rollout(GOOD, Policy(canary=("a1",), gate=Gate(min_examples=5)), PREVIOUS)
    assert result.outcome == "rolled back" and result.gates[0]["agreement"] == 1.0 and result.gates[0]["requests"] == 4
    assert sites["a1"].model == OLD.sha256


def test_a_rollback_that_finds_the_link_down_is_recorded_not_raised(fleet) -> None:
    ctl, sites = fleet
    real_infer = sites["a1"].infer

    def infer_then_cut(history: list[int], k: int) -> tuple[int, dict]:
        reply = real_infer(history, k)
        sites["a1"].cut = True  # the link drops right after the gate's last answer
        return reply

    sites["a1"].infer = infer_then_cut  # type: ignore[method-assign]
    result = ctl.rollout(BAD, POLICY, PREVIOUS)
    assert result.outcome == "rolled back" and ctl.records["a1"].rollbacks == 0
    assert (result.rolled_back, result.rollback_failed) == ([], ["a1"])
    assert "NOT DONE" in ctl.records["a1"].events[-1].detail and sites["a1"].model == BAD.sha256
