"""Turn the event log into training windows and held-out evaluation examples; serve batches.

Input is the data contract of ``workloads.data.generate`` (``events.parquet``, ``items.parquet``).

- A user's history is their item ids in time order with consecutive repeats collapsed (a view,
  cart and purchase of one item count once).
- Users are split by a fixed hash of ``user_id``: a held-out user never contributes to training,
  whatever the seed or world size.
- Training windows are left-padded (T + 1)-token slices of training users' histories that tile
  each history, so an epoch sees every transition exactly once.
- ``BatchSampler`` walks a seeded permutation of the windows per epoch. Its whole position is one
  integer (``samples_seen``); with the seed it reproduces the data order after a restart, for any
  world size, because every rank derives the same global batch and takes its own slice of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from workloads.training.config import UsageError

IGNORE_INDEX = -1


@dataclass(frozen=True)
class Dataset:
    """Tensors built from one data directory."""

    windows: torch.Tensor
    """(W, T + 1) int64, left-padded with 0; inputs are [:, :-1], targets [:, 1:]."""
    eval_histories: torch.Tensor
    """(E, T) int64, left-padded histories of held-out users."""
    eval_targets: torch.Tensor
    """(E,) int64, the item that followed each history."""
    item_counts: torch.Tensor
    """(num_items + 1,) int64, occurrences of each item in training histories (popularity baseline)."""
    item_ids: list[int]
    """Valid item ids (from items.parquet)."""
    num_items: int
    """Largest item id; the model's vocabulary is 0..num_items."""
    train_users: int
    eval_users: int


def is_held_out(user_id: np.ndarray, fraction: float) -> np.ndarray:
    """Deterministic user split: Knuth's multiplicative hash of the id, scaled to [0, 1)."""
    h = (user_id.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h.astype(np.float64) / 2**32) < fraction


def _left_pad(seq: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.int64)
    if seq.size:
        out[-seq.size :] = seq[-length:]
    return out


def read_table(path: Path, columns: list[str]) -> pa.Table:
    """``columns`` of a Parquet file; ``UsageError`` naming the file and the fix when it cannot be read.

    A truncated file, one that is not Parquet, or one without the columns would otherwise end
    every restart in a pyarrow traceback.
    """
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, KeyError) as err:
        reason = " ".join(str(err).split())[:200]  # one line, whatever pyarrow says
        raise UsageError(
            f"{path} is not a readable Parquet file with columns {', '.join(columns)} ({reason}); "
            f"regenerate the data directory with `python -m workloads.data.generate --out {path.parent}`"
        ) from err


HISTORY_COLUMNS = ["user_id", "item_id", "event_timestamp"]


def user_histories(events_path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """(user ids, their item histories) with consecutive repeats collapsed, in time order."""
    return histories_of(read_table(events_path, HISTORY_COLUMNS))


def histories_of(table: pa.Table) -> tuple[np.ndarray, list[np.ndarray]]:
    """``user_histories`` of an events table already read (``HISTORY_COLUMNS`` at least); users ascending."""
    users = table["user_id"].to_numpy()
    items = table["item_id"].to_numpy()
    ts = table["event_timestamp"].cast("int64").to_numpy()
    order = np.lexsort((ts, users))  # by user, then time (stable for equal timestamps)
    users, items = users[order], items[order]
    keep = np.ones(users.shape[0], dtype=bool)
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[keep], items[keep]
    uniq, starts = np.unique(users, return_index=True)
    return uniq, np.split(items, starts[1:])


def load_dataset(data_dir: str | Path, block_size: int, eval_fraction: float, eval_positions: int) -> Dataset:
    """Read a generated data directory and build windows, evaluation examples and counts."""
    root = Path(data_dir)
    missing = [n for n in ("events.parquet", "items.parquet") if not (root / n).is_file()]
    if missing:
        raise UsageError(
            f"--data={data_dir}: missing {', '.join(missing)}; "
            "create it with `python -m workloads.data.generate --out DIR`"
        )
    item_ids = read_table(root / "items.parquet", ["item_id"])["item_id"].to_numpy()
    if item_ids.size == 0 or item_ids.min() < 1:
        raise UsageError(f"--data={data_dir}: items.parquet item_id must be 1..M (got min {item_ids.min(initial=0)})")
    num_items = int(item_ids.max())
    user_ids, histories = user_histories(root / "events.parquet")
    top = max((int(h.max()) for h in histories if h.size), default=0)
    if top > num_items:
        raise UsageError(f"--data={data_dir}: events reference item_id {top} > largest item id {num_items}")

    held_out = is_held_out(user_ids, eval_fraction)
    T = block_size
    windows: list[np.ndarray] = []
    eval_hist: list[np.ndarray] = []
    eval_tgt: list[int] = []
    counts = np.zeros(num_items + 1, dtype=np.int64)
    for seq, out in zip(histories, held_out, strict=True):
        n = seq.shape[0]
        if n < 2:
            continue
        if out:
            for j in range(max(1, n - eval_positions), n):
                eval_hist.append(_left_pad(seq[max(0, j - T) : j], T))
                eval_tgt.append(int(seq[j]))
            continue
        counts += np.bincount(seq, minlength=num_items + 1)
        for end in range(n, 1, -T):  # windows overlap by one token, so each transition is a target once
            windows.append(_left_pad(seq[max(0, end - T - 1) : end], T + 1))
    if not windows or not eval_tgt:
        raise UsageError(
            f"--data={data_dir}: too little data ({len(windows)} training windows, {len(eval_tgt)} evaluation "
            "examples); generate more users or days, or change --eval-fraction"
        )
    return Dataset(
        windows=torch.from_numpy(np.stack(windows)),
        eval_histories=torch.from_numpy(np.stack(eval_hist)),
        eval_targets=torch.tensor(eval_tgt, dtype=torch.int64),
        item_counts=torch.from_numpy(counts),
        item_ids=[int(i) for i in np.sort(item_ids)],
        num_items=num_items,
        train_users=int((~held_out).sum()),
        eval_users=int(held_out.sum()),
    )


class BatchSampler:
    """Global batches of window indices from a per-epoch seeded permutation; state is one integer."""

    def __init__(self, num_windows: int, global_batch: int, seed: int) -> None:
        self.num_windows = num_windows
        self.global_batch = global_batch
        self.seed = seed
        self.samples_seen = 0
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.int64)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_windows, generator=g)
            self._perm_epoch = epoch
        return self._perm

    def next_indices(self) -> torch.Tensor:
        """The next global batch (global_batch,) of window indices; crosses epochs seamlessly."""
        parts = []
        need = self.global_batch
        while need:
            epoch, offset = divmod(self.samples_seen, self.num_windows)
            take = min(need, self.num_windows - offset)
            parts.append(self._permutation(epoch)[offset : offset + take])
            self.samples_seen += take
            need -= take
        return torch.cat(parts)

    def state_dict(self) -> dict[str, int]:
        return {"samples_seen": self.samples_seen, "num_windows": self.num_windows, "global_batch": self.global_batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["num_windows"] != self.num_windows:
            raise UsageError(
                f"checkpoint was trained on {state['num_windows']} windows but --data has {self.num_windows}; "
                "resume with the same data directory or start a new --checkpoint-dir"
            )
        self.samples_seen = int(state["samples_seen"])


def split_batch(
    windows: torch.Tensor, indices: torch.Tensor, grad_accum: int, world_size: int, rank: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """This rank's micro-batches [(x (b, T), y (b, T))] and the valid-target count of the global batch.

    The count is a 0-d tensor on the batch's device (no host sync); every rank computes the same
    value, so normalising the summed loss by it makes DDP's gradient average equal one process.

    The global batch is laid out (grad_accum, world_size, b): micro-step m of rank r takes
    row [m, r]. Targets at padded inputs are IGNORE_INDEX.
    """
    batch = windows[indices.to(windows.device)]  # (B, T + 1)
    x, y = batch[:, :-1], batch[:, 1:].clone()  # (B, T) each
    y[x == 0] = IGNORE_INDEX  # left padding: no input, nothing to predict (covers y == 0 too)
    n_valid = (y != IGNORE_INDEX).sum()
    b = indices.shape[0] // (grad_accum * world_size)
    xs = x.view(grad_accum, world_size, b, -1)[:, rank]
    ys = y.view(grad_accum, world_size, b, -1)[:, rank]
    return [(xs[m], ys[m]) for m in range(grad_accum)], n_valid
