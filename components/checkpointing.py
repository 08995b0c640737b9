"""Checkpoint-interval math shared by the training simulator and the batch planner. Pure.

``young_daly_interval(C, MTBF) = sqrt(2·C·MTBF)``: the first-order optimal work between periodic
checkpoints when a checkpoint costs ``C`` and interruptions arrive with mean gap ``MTBF`` (Young
1974, Daly 2006). Any time unit, as long as both arguments use the same one.
gpuplane.simulate.training (the spot training model) and components/batch_job (how often a
batch task commits its progress) both call this one function.
"""

from __future__ import annotations

import math


def young_daly_interval(checkpoint_cost: float, mtbf: float) -> float:
    """Young/Daly first-order optimal work between checkpoints: sqrt(2·C·MTBF).

    Raises ``ValueError`` when ``checkpoint_cost`` < 0 or ``mtbf`` <= 0."""
    if checkpoint_cost < 0 or mtbf <= 0:
        raise ValueError(f"young_daly_interval: need checkpoint cost ≥ 0 and MTBF > 0 (got {checkpoint_cost}, {mtbf})")
    return math.sqrt(2.0 * checkpoint_cost * mtbf)
