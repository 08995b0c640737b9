"""Offline evaluation on held-out users: hit-rate@k and NDCG@k, model versus popularity.

Each example is (history, next item) from a user who never appeared in training (see
``data.py``). A hit is the next item among the k recommendations; NDCG@k with one relevant item
is 1 / log2(rank + 2) for a hit at 0-based ``rank`` and 0 otherwise. The popularity baseline
recommends the k items seen most often in training histories, the same list for everyone.
"""

from __future__ import annotations

import math

import torch

from workloads.model import NextItemModel


def ranking_metrics(recommended: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """hit-rate and NDCG of ``recommended`` (E, k) item ids against ``targets`` (E,)."""
    k = recommended.shape[1]
    hits = recommended == targets[:, None]  # (E, k), at most one True per row
    found = hits.any(dim=1)
    rank = hits.float().argmax(dim=1)  # (E,) 0-based; meaningless where not found
    gain = torch.where(found, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros_like(rank, dtype=torch.float32))
    return {f"hit_rate_at_{k}": found.float().mean().item(), f"ndcg_at_{k}": gain.mean().item()}


@torch.no_grad()
def evaluate(
    model: NextItemModel,
    histories: torch.Tensor,
    targets: torch.Tensor,
    item_counts: torch.Tensor,
    k: int = 10,
    batch_size: int = 512,
) -> dict[str, float]:
    """Metrics of ``model`` and of the popularity baseline on the same examples."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    recs = []
    for i in range(0, histories.shape[0], batch_size):
        items, _ = model.recommend(histories[i : i + batch_size].to(device), k=k)  # (b, k)
        recs.append(items.cpu())
    model.train(was_training)
    counts = item_counts.clone()
    counts[0] = -1  # never recommend padding
    popular = torch.topk(counts, k=k).indices  # (k,)
    baseline = ranking_metrics(popular.expand(targets.shape[0], k), targets)
    out = ranking_metrics(torch.cat(recs), targets)
    out.update({f"popularity_{name}": value for name, value in baseline.items()})
    out["eval_examples"] = float(targets.shape[0])
    return {name: (value if math.isfinite(value) else 0.0) for name, value in out.items()}
