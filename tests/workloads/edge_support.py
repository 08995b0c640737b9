"""A trained tiny model and its ONNX exports, shared by the edge tests (session-scoped: trained once).

Trained, not random: a random model's scores are nearly tied, so its top-k would say little about
whether an export (or a quantization) preserves the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

EVAL_FRACTION = 0.1
STEPS = 60


@dataclass(frozen=True)
class Trained:
    data_dir: Path
    model_dir: Path
    onnx_dir: Path
    histories: np.ndarray
    """(E, T) held-out users' left-padded histories."""


def train_tiny(root: Path, seed: int = 3) -> tuple[Path, Path]:
    """Generate a small event log and train the tiny preset on it for ``STEPS`` steps; (data, export)."""
    from workloads.data.generate import GenerateConfig, generate
    from workloads.training.config import parse_args
    from workloads.training.train import run

    data, export = root / "data", root / "model"
    if not (data / "meta.json").exists():
        generate(data, GenerateConfig(users=300, items=200, days=7, seed=5))
    run(parse_args(["--preset", "tiny", "--data", str(data), "--export-dir", str(export), "--batch-size", "32",
                    "--max-steps", str(STEPS), "--lr-decay-steps", str(STEPS), "--threads", "1", "--seed", str(seed),
                    "--log-every", str(STEPS), "--eval-fraction", str(EVAL_FRACTION)]), log=lambda m: None)
    return data, export


def held_out(data: Path, block_size: int, limit: int = 400) -> np.ndarray:
    from workloads.training.data import load_dataset

    return load_dataset(data, block_size, EVAL_FRACTION, 5).eval_histories[:limit].numpy()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from workloads.training.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("edge-model")
    data, export = train_tiny(root)
    histories = held_out(data, 32)
    export_onnx(export, root / "onnx", quantize="int8", histories=histories, k=10)
    return Trained(data, export, root / "onnx", histories)
