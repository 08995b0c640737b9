"""Export the trained model for serving, one file at a time, each written atomically.

``export_dir`` receives (the serving contract in ``workloads.model``):

- ``model.safetensors``: ``NextItemModel.state_dict()`` (contiguous CPU tensors);
- ``config.json``: ``ModelConfig.to_json()``;
- ``items.json``: the sorted list of valid item ids;
- ``metrics.json``: evaluation and training figures, written last, so its presence means the
  other three files belong to the same export.

Each file goes to a temporary name in the same directory, is fsynced and then ``os.replace``d,
so a reader never sees a half-written file. ``metrics.json`` is removed first and restored last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from workloads.model import NextItemModel


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.chmod(tmp, 0o644)  # readable by a serving container running as another user
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def export_model(
    model: NextItemModel, export_dir: str | os.PathLike[str], item_ids: list[int], metrics: dict[str, Any]
) -> Path:
    """Write the four files under ``export_dir``; return its path."""
    out = Path(export_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").unlink(missing_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    _atomic_write(out / "model.safetensors", lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    _write_text(out / "config.json", model.cfg.to_json() + "\n")
    _write_text(out / "items.json", json.dumps(item_ids) + "\n")
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return out
