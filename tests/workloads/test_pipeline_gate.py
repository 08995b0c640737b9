"""The evaluation gate's decision table and its bad-input errors; the canary controller's table."""

from __future__ import annotations

import math

import pytest

from workloads.pipeline.canary import CanaryInputError, CanaryPolicy, CanaryStats, judge
from workloads.pipeline.gate import Decision, GateConfig, GateInputError, decide


def run(ndcg: float, baseline: float, hit: float = 0.5, base_hit: float = 0.3, **extra: float) -> dict[str, float]:
    return {"ndcg_at_10": ndcg, "baseline_ndcg_at_10": baseline, "hit_rate_at_10": hit,
            "baseline_hit_rate_at_10": base_hit, **extra}


# (name, challenger run, champion run or None, config, promoted, words in the reason)
GATE_TABLE = [
    ("first model beating the baseline is promoted", run(0.40, 0.30), None, GateConfig(), True, "first model"),
    ("first model at the baseline is not", run(0.30, 0.30), None, GateConfig(), False, "nothing is promoted"),
    ("first model below the baseline is not", run(0.20, 0.30), None, GateConfig(), False, "popularity baseline"),
    ("better than champion by more than the margin", run(0.40, 0.30), run(0.35, 0.30),
     GateConfig(margin=0.01), True, "beats the champion's 0.3500 by +0.0500"),
    ("better, but not by the margin", run(0.355, 0.30), run(0.35, 0.30), GateConfig(margin=0.01), False,
     "not more than the margin 0.01; the champion stays"),
    # binary fractions, so that the difference is exactly the margin
    ("exactly the margin is not enough", run(0.375, 0.125), run(0.25, 0.125), GateConfig(margin=0.125), False,
     "+0.1250 is not more than the margin 0.125"),
    ("worse than the champion", run(0.33, 0.30), run(0.35, 0.30), GateConfig(margin=0.0), False, "-0.0200"),
    ("beats the champion but not the baseline", run(0.29, 0.30), run(0.10, 0.05), GateConfig(), False,
     "does not beat the popularity baseline's 0.3000; the champion stays"),
    ("zero margin: any improvement", run(0.3501, 0.30), run(0.35, 0.30), GateConfig(margin=0.0), True, "beats"),
    # the champion re-scored on the challenger's data wins over its own older run's figure
    ("re-scored champion is the one compared", run(0.40, 0.30, champion_ndcg_at_10=0.45), run(0.20, 0.30),
     GateConfig(), False, "champion's 0.4500"),
    ("gate on hit rate", run(0.10, 0.30, hit=0.6, base_hit=0.5), run(0.5, 0.3, hit=0.55),
     GateConfig(metric="hit_rate_at_10", margin=0.01), True, "hit_rate_at_10 0.6000"),
]


@pytest.mark.parametrize(("challenger", "champion", "cfg", "promoted", "words"),
                         [row[1:] for row in GATE_TABLE], ids=[row[0] for row in GATE_TABLE])
def test_gate_decision_table(challenger, champion, cfg, promoted, words):
    d = decide(challenger, champion, cfg)
    assert isinstance(d, Decision)
    assert d.promoted is promoted, d.reason
    assert words in d.reason
    assert d.metric == cfg.metric and d.challenger == challenger[cfg.metric]


def test_decision_carries_the_figures_for_the_report():
    d = decide(run(0.4, 0.3, champion_ndcg_at_10=0.35, eval_examples=100.0), None)
    j = d.to_json()
    assert j["champion"] == 0.35 and j["baseline"] == 0.3
    assert j["metrics"]["champion_ndcg_at_10"] == 0.35 and "eval_examples" not in j["metrics"]


def test_a_metric_missing_from_the_challenger_run_names_it_and_the_fix():
    with pytest.raises(GateInputError, match=r"challenger run: metric 'baseline_ndcg_at_10' is missing "
                                             r"\(logged: ndcg_at_10\).*workloads.pipeline.evaluate"):
        decide({"ndcg_at_10": 0.4}, None)


def test_a_metric_missing_from_the_champion_run_names_the_champion():
    with pytest.raises(GateInputError, match="champion run: metric 'ndcg_at_10' is missing"):
        decide(run(0.4, 0.3), {"loss": 2.0})


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.4", True])
def test_a_non_numeric_metric_is_refused(value):
    with pytest.raises(GateInputError, match=r"metric 'ndcg_at_10'=.* is not a finite number"):
        decide({**run(0.4, 0.3), "ndcg_at_10": value}, None)


@pytest.mark.parametrize(("cfg", "words"), [
    (GateConfig(metric="accuracy"), "metric='accuracy' is not a gate metric; use one of hit_rate_at_10, ndcg_at_10"),
    (GateConfig(margin=-0.1), "margin=-0.1 must be a finite number ≥ 0"),
])
def test_bad_gate_config_is_one_clear_error(cfg, words):
    with pytest.raises(GateInputError, match="gate config: " + words.replace("(", r"\(").replace(")", r"\)")):
        decide(run(0.4, 0.3), None, cfg)


def test_bad_gate_config_lists_every_problem_at_once():
    with pytest.raises(GateInputError) as err:
        GateConfig(metric="auc", margin=math.inf).validate()
    assert "metric='auc'" in str(err.value) and "margin=inf" in str(err.value)


# ---------------------------------------------------------------------------------------------
# canary controller

POLICY = CanaryPolicy(percent=20, window_seconds=10, max_error_rate=0.02, max_p99_ms=500, min_requests=20,
                      max_window_factor=3)

# (name, stats, action, words)
CANARY_TABLE = [
    ("early and healthy: keep observing", CanaryStats(3.0, 10, 0, 80.0), "continue", "3.0 of 10 s"),
    ("errors past the bound roll back at once", CanaryStats(3.0, 40, 5, 80.0), "rollback", "5xx rate 12.5% (5/40)"),
    ("errors before min_requests do not decide yet", CanaryStats(3.0, 10, 5, 80.0), "continue", "observed"),
    ("a full healthy window promotes", CanaryStats(10.0, 50, 0, 120.0), "promote", "50 requests in 10.0 s"),
    ("errors within the bound still promote", CanaryStats(10.0, 100, 2, 120.0), "promote", "2.0% ≤ 2%"),
    ("p99 over the bound at the window's end rolls back", CanaryStats(10.0, 50, 0, 900.0), "rollback",
     "p99 900 ms exceeds 500 ms"),
    ("p99 over the bound mid-window waits", CanaryStats(5.0, 50, 0, 900.0), "continue", "observed"),
    ("too little traffic extends the window", CanaryStats(12.0, 5, 0, 50.0), "continue", "window extended"),
    ("too little traffic for the whole extension rolls back", CanaryStats(30.0, 5, 0, 50.0), "rollback",
     "too little traffic"),
]


@pytest.mark.parametrize(("stats", "action", "words"), [r[1:] for r in CANARY_TABLE], ids=[r[0] for r in CANARY_TABLE])
def test_canary_controller_table(stats, action, words):
    v = judge(POLICY, stats)
    assert v.action == action, v.reason
    assert words in v.reason
    assert v.to_json()["stats"]["requests"] == stats.requests


@pytest.mark.parametrize("percent", [-5, 0, 100, 150, math.nan])
def test_a_canary_percentage_outside_0_to_100_is_one_clear_error(percent):
    with pytest.raises(CanaryInputError, match=rf"canary policy: percent={percent!r} must be between 0 and 100"):
        judge(CanaryPolicy(percent=percent), CanaryStats(1.0, 1, 0, None))


def test_bad_canary_policy_lists_every_problem():
    with pytest.raises(CanaryInputError) as err:
        CanaryPolicy(percent=120, window_seconds=0, max_error_rate=1.5, max_p99_ms=-1, min_requests=0).validate()
    text = str(err.value)
    for field in ("percent=120", "window_seconds=0", "max_error_rate=1.5", "max_p99_ms=-1", "min_requests=0"):
        assert field in text
