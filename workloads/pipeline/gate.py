"""The evaluation gate: may the challenger replace the champion?

A pure function of metrics, table-tested. The challenger is promoted only if

1. it beats the popularity baseline on the gate metric (``baseline_<metric>`` measured on the
   same held-out examples), and
2. there is no champion (the first model), or it beats the champion's ``<metric>`` by more than
   ``margin`` (absolute: NDCG 0.312 against 0.300 is an improvement of 0.012).

Otherwise the champion stays; the :class:`Decision` says which condition failed with the
numbers. The champion's figure should come from the same held-out examples as the challenger's
(``evaluate`` re-scores the champion on the new data and logs it as ``champion_<metric>``);
:func:`champion_figure` prefers that figure over the champion's own, older run.

Bad input (a metric missing from a run, a negative margin, an unknown metric) raises one
:class:`GateInputError` naming the field, the value and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

METRICS = ("hit_rate_at_10", "ndcg_at_10")
"""Gate metrics an evaluation run logs (and the popularity baseline's, as ``baseline_<name>``)."""
BASELINE_PREFIX = "baseline_"
CHAMPION_PREFIX = "champion_"
"""``evaluate`` logs the current champion's score on the challenger's held-out data under this prefix."""


class GateInputError(ValueError):
    """The gate's input is incomplete or invalid; the message names the field, value and fix."""


@dataclass(frozen=True)
class GateConfig:
    """How the gate decides."""

    metric: str = "ndcg_at_10"
    """Held-out metric compared (one of ``METRICS``); higher is better."""
    margin: float = 0.002
    """Absolute improvement over the champion's metric the challenger must exceed (≥ 0)."""

    def validate(self) -> None:
        problems = []
        if self.metric not in METRICS:
            problems.append(f"metric={self.metric!r} is not a gate metric; use one of {', '.join(METRICS)}")
        if not (isinstance(self.margin, int | float) and math.isfinite(self.margin) and self.margin >= 0):
            problems.append(f"margin={self.margin!r} must be a finite number ≥ 0 (an absolute improvement, "
                            "e.g. 0.002)")
        if problems:
            raise GateInputError("gate config: " + "; ".join(problems))


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with the figures it used."""

    promoted: bool
    reason: str
    metric: str
    margin: float
    challenger: float
    baseline: float
    champion: float | None
    """None when there was no champion (first model)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Every gate metric of the challenger (and baseline / champion figures) for the report."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _figure(metrics: Mapping[str, Any], key: str, who: str) -> float:
    if key not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        raise GateInputError(f"{who} run: metric {key!r} is missing (logged: {have}); log it with "
                             "`python -m workloads.pipeline.evaluate`, which records every gate metric")
    value = metrics[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GateInputError(f"{who} run: metric {key!r}={value!r} is not a finite number; re-run the evaluation")
    return float(value)


def champion_figure(challenger: Mapping[str, Any], champion: Mapping[str, Any] | None, metric: str) -> float | None:
    """The champion's score to beat: on the challenger's held-out data when logged, else its own run's."""
    if CHAMPION_PREFIX + metric in challenger:
        return _figure(challenger, CHAMPION_PREFIX + metric, "challenger")
    if champion is None:
        return None
    return _figure(champion, metric, "champion")


def decide(challenger: Mapping[str, Any], champion: Mapping[str, Any] | None, cfg: GateConfig | None = None) -> Decision:
    """Promote or keep the champion; see the module docstring for the rule."""
    cfg = cfg or GateConfig()
    cfg.validate()
    m = cfg.metric
    value = _figure(challenger, m, "challenger")
    baseline = _figure(challenger, BASELINE_PREFIX + m, "challenger")
    best = champion_figure(challenger, champion, m)
    figures = {k: float(v) for k, v in challenger.items()
               if isinstance(v, int | float) and not isinstance(v, bool)
               and k.removeprefix(BASELINE_PREFIX).removeprefix(CHAMPION_PREFIX) in METRICS}

    def verdict(promoted: bool, reason: str) -> Decision:
        return Decision(promoted, reason, m, cfg.margin, value, baseline, best, figures)

    if value <= baseline:
        return verdict(False, f"{m} {value:.4f} does not beat the popularity baseline's {baseline:.4f}; "
                              + ("the champion stays" if best is not None else "nothing is promoted"))
    if best is None:
        return verdict(True, f"first model: {m} {value:.4f} beats the popularity baseline's {baseline:.4f}")
    gain = value - best
    if gain <= cfg.margin:
        return verdict(False, f"{m} {value:.4f} vs the champion's {best:.4f}: {gain:+.4f} is not more than the "
                              f"margin {cfg.margin:g}; the champion stays")
    return verdict(True, f"{m} {value:.4f} beats the champion's {best:.4f} by {gain:+.4f} (margin {cfg.margin:g}) "
                         f"and the popularity baseline's {baseline:.4f}")
