"""Fine-tune or train from scratch? A pure rule, shared by the local loop and the cluster pipeline.

Fine-tuning starts from the champion's exported weights (the registry artifact, not a trainer
checkpoint: a checkpoint also holds the optimizer, the LR schedule's position and the sampler's
place in the *old* data, none of which apply to a new window) with a fresh optimizer and
schedule. It is possible only when the item vocabulary is unchanged, because the item embedding
table (and the tied output head) has one row per item id. Otherwise the model is trained from
scratch. The reason is part of the result, so that the log and the report say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["fine-tune", "scratch"]


@dataclass(frozen=True)
class RetrainPlan:
    mode: Mode
    reason: str


def retrain_plan(champion_items: Sequence[int] | None, data_items: Sequence[int],
                 champion_version: str | None = None) -> RetrainPlan:
    """How to train the next challenger, given the champion's ``items.json`` and the data's item ids."""
    if champion_items is None:
        return RetrainPlan("scratch", "no champion yet: nothing to start from")
    who = f"champion v{champion_version}" if champion_version else "the champion"
    old, new = set(champion_items), set(data_items)
    if old == new:
        return RetrainPlan("fine-tune", f"item vocabulary unchanged ({len(new)} items): fine-tune {who}'s weights "
                                        "on the new window (fresh optimizer and schedule)")
    added, removed = len(new - old), len(old - new)
    return RetrainPlan("scratch", f"item vocabulary changed (+{added} / -{removed} items): {who}'s embedding "
                                  "table no longer matches the ids, so train from scratch")
