"""Load an exported next-item model and rank next items for batches of histories.

Contract:

- Reads MODEL_DIR/model.safetensors (``NextItemModel.state_dict()``), MODEL_DIR/config.json
  (``ModelConfig.to_json()``) and optionally MODEL_DIR/items.json (a JSON list of the item ids
  that may be recommended; without it every id 1..num_items may be).
- ``load()`` is blocking and meant for the model worker thread. It imports torch lazily (this
  module imports only the standard library, so the HTTP layer answers liveness before torch is
  loaded), builds the model on the meta device (no random init), reads the weights with
  safetensors straight onto the target device (memory-mapped on CPU) and assigns them, then runs
  a warm-up pass. It records the phases ``imports``, ``weights`` and ``warmup`` in seconds.
- ``predict(jobs)`` runs one forward pass over every row of every job: rows are left-padded to
  the batch's longest row, not to ``block_size``, with position ids as if they were padded to
  ``block_size``. Padding keys are masked in every layer and the causal mask does not depend on
  where a row starts, so this is the same computation as padding to ``block_size`` minus columns
  that are padding in every row: a row's result does not depend on its batch mates (up to float
  rounding), and short histories cost in proportion to their length. The padding id and ids
  outside items.json are masked, and each job gets its own top-k (ids and log-probabilities).
- Only the last position goes through the output head; ``next_item_logits`` mirrors
  ``NextItemModel.forward`` for that position, and tests pin it to ``NextItemModel.recommend``
  (full left padding and trimmed).

Not done here: quantisation, compilation, multi-GPU placement.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads.serving.protocol import ModelSpec

log = logging.getLogger("gpuplane.serving")

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
ITEMS_FILE = "items.json"


class ModelDirError(ValueError):
    """The model directory is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class PredictJob:
    """One request's share of a batch: validated histories (1..block_size ids each) and its k."""

    histories: tuple[tuple[int, ...], ...]
    k: int

    @property
    def rows(self) -> int:
        return len(self.histories)


@dataclass(frozen=True)
class Prediction:
    """Per-row results for one job, best first: item ids (rows × k) and log-probabilities."""

    items: list[list[int]]
    scores: list[list[float]]


def check_model_dir(model_dir: Path) -> None:
    """Fail fast (before any server starts) when the export files are not there."""
    if not model_dir.is_dir():
        raise ModelDirError(f"--model-dir {model_dir}: not a directory; point it at a training export "
                            f"holding {WEIGHTS_FILE} and {CONFIG_FILE}")
    missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE) if not (model_dir / f).is_file()]
    if missing:
        raise ModelDirError(f"--model-dir {model_dir}: missing {', '.join(missing)}; a training export holds "
                            f"{WEIGHTS_FILE}, {CONFIG_FILE} and optionally {ITEMS_FILE}")


def read_items(model_dir: Path, num_items: int) -> frozenset[int] | None:
    """The ids in items.json, or None when the file is absent (every id 1..num_items is valid)."""
    path = model_dir / ITEMS_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelDirError(f"{path}: not valid JSON ({exc}); expected a list of item ids") from None
    if not isinstance(raw, list) or not raw:
        raise ModelDirError(f"{path}: expected a non-empty JSON list of item ids, got {type(raw).__name__}")
    bad = [i for i in raw if type(i) is not int or not 1 <= i <= num_items]
    if bad:
        raise ModelDirError(f"{path}: ids {bad[:10]} are outside 1..{num_items} (config.json num_items); "
                            "fix the export")
    return frozenset(raw)


@contextlib.contextmanager
def _skip_weight_init(torch: Any) -> Iterator[None]:
    """Make ``torch.nn.init``'s in-place initialisers no-ops while a model is built.

    The weights are overwritten by the checkpoint anyway, and on the meta device
    ``normal_`` goes through ``torch._refs``, whose first use imports torch._dynamo
    (about 1.2 s measured on a 2-core machine). Same idea as transformers' ``no_init_weights``."""
    init = torch.nn.init
    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(init, n) for n in names}
    try:
        for n in names:
            setattr(init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def next_item_logits(model: Any, idx: Any, position_offset: int = 0) -> Any:
    """Logits (B, vocab) for the item after each left-padded history in ``idx`` (B, T).

    Same computation as ``NextItemModel.forward(idx)[:, -1, :]``, but the tied output head runs
    on the last position only: for a large catalogue the head dominates the cost. Column ``t``
    gets position id ``position_offset + t``: with ``position_offset = block_size - T`` the
    result equals that of ``idx`` left-padded to ``block_size`` (the dropped columns are padding,
    which no real position attends to)."""
    import torch

    T = idx.shape[1]
    if position_offset < 0 or position_offset + T > model.wpe.num_embeddings:
        raise ValueError(f"position_offset {position_offset} with {T} columns exceeds block_size "
                         f"{model.wpe.num_embeddings}")
    key_mask = idx != 0  # (B, T)
    pos = torch.arange(position_offset, position_offset + T, device=idx.device)  # (T,)
    x = model.drop(model.wte(idx) + model.wpe(pos))  # (B, T, C)
    for block in model.blocks:
        x = block(x, key_mask)
    x = model.ln_f(x[:, -1, :])  # (B, C); LayerNorm is per position
    return x @ model.wte.weight.T  # (B, V)


@dataclass
class ModelRunner:
    """KServe-style lifecycle: ``load()`` once (sets ``spec``), then ``predict()`` many times."""

    model_dir: Path
    model_name: str = "recommender"
    device: str = "auto"
    """'auto' (cuda when available, else cpu), 'cpu', 'cuda' or 'cuda:N'."""
    warmup_batch_sizes: tuple[int, ...] = (1, 8)
    """Batch sizes run once before ready (all on CUDA, the first only on CPU)."""
    torch_threads: int | None = None
    """CPU threads for torch's intra-op parallelism (process-wide); None keeps torch's default
    (one per core). On a busy or small CPU host, 1 avoids OpenMP wake-up stalls on small ops."""
    phases: dict[str, float] = field(default_factory=dict)
    """Cold-start phase durations in seconds, filled by ``load()``."""
    spec: ModelSpec | None = None

    def load(self) -> ModelSpec:
        t0 = time.perf_counter()
        import torch
        from safetensors.torch import load_file

        from workloads.model import ModelConfig, NextItemModel

        t1 = time.perf_counter()
        self.phases["imports"] = t1 - t0
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)

        check_model_dir(self.model_dir)
        config_path = self.model_dir / CONFIG_FILE
        try:
            cfg = ModelConfig.from_json(config_path.read_text())
        except (ValueError, TypeError) as exc:
            raise ModelDirError(f"{config_path}: {exc}") from None
        device = self._resolve_device(torch)
        # safetensors memory-maps the file and places each tensor on `device` directly.
        state = load_file(str(self.model_dir / WEIGHTS_FILE), device=str(device))
        with _skip_weight_init(torch), torch.device("meta"):  # shapes only: no memory, no random init
            model = NextItemModel(cfg)
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            raise ModelDirError(f"{self.model_dir / WEIGHTS_FILE} does not match {config_path}: {exc}") from None
        model.eval().requires_grad_(False)
        valid = read_items(self.model_dir, cfg.num_items)
        valid_mask = torch.zeros(cfg.vocab_size, dtype=torch.bool)  # (V,)
        if valid is None:
            valid_mask[1:] = True
        else:
            valid_mask[sorted(valid)] = True
        self._torch, self._model, self._device = torch, model, device
        self._valid_mask = valid_mask.to(device)
        self._block_size = cfg.block_size
        t2 = time.perf_counter()
        self.phases["weights"] = t2 - t1

        spec = ModelSpec(
            name=self.model_name,
            num_items=cfg.num_items,
            block_size=cfg.block_size,
            valid_items=range(1, cfg.num_items + 1) if valid is None else valid,
            num_valid_items=cfg.num_items if valid is None else len(valid),
        )
        first_item = 1 if valid is None else min(valid)
        # On CUDA every batch shape is warmed (kernel selection, cuBLAS workspaces, allocator); on
        # CPU one small pass covers the one-off initialisation, and a large one would only cost time.
        sizes = self.warmup_batch_sizes if device.type == "cuda" else self.warmup_batch_sizes[:1]
        for rows in sizes:
            self.predict([PredictJob(((first_item,),) * rows, spec.effective_default_k)])
        self.phases["warmup"] = time.perf_counter() - t2
        self.spec = spec
        return spec

    def predict(self, jobs: Sequence[PredictJob]) -> list[Prediction]:
        torch = self._torch
        T = max(len(row) for job in jobs for row in job.histories)  # longest row; <= block_size
        flat: list[int] = []
        for job in jobs:
            for row in job.histories:
                if len(row) < T:
                    flat.extend([0] * (T - len(row)))
                flat.extend(row)
        B = len(flat) // T
        k_max = max(job.k for job in jobs)
        idx = torch.tensor(flat, dtype=torch.long).view(B, T).to(self._device, non_blocking=True)  # (B, T)
        with torch.inference_mode():
            logits = next_item_logits(self._model, idx, self._block_size - T).float()  # (B, V)
            logits.masked_fill_(~self._valid_mask, float("-inf"))
            scores, items = torch.topk(torch.log_softmax(logits, dim=-1), k=k_max, dim=-1)  # (B, k_max)
        all_items, all_scores = items.cpu().tolist(), scores.cpu().tolist()
        out, start = [], 0
        for job in jobs:
            end = start + job.rows
            out.append(Prediction([r[: job.k] for r in all_items[start:end]],
                                  [r[: job.k] for r in all_scores[start:end]]))
            start = end
        return out

    def _resolve_device(self, torch: Any) -> Any:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device}: CUDA is not available on this machine; use --device cpu")
        return device
