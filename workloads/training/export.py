"""Export the trained model for serving, one file at a time, each written atomically.

``export_dir`` receives (the serving contract in ``workloads.model``):

- ``model.safetensors``: ``NextItemModel.state_dict()`` (contiguous CPU tensors);
- ``config.json``: ``ModelConfig.to_json()``;
- ``items.json``: the sorted list of valid item ids;
- ``metrics.json``: evaluation and training figures, written last, so its presence means the
  other three files belong to the same export.

Each file goes to a temporary name in the same directory, is fsynced and then ``os.replace``d,
so a reader never sees a half-written file. ``metrics.json`` is removed first and restored last.

Run as a module it turns such an export into ONNX for edge sites (``onnx_export.py`` holds the how)::

    python -m workloads.training.export --format onnx [--quantize int8] [--model-dir DIR] [--out DIR] [--data DIR]

``--model-dir`` defaults to ``demo-output/model`` (what ``make demo`` trains); ``--out`` to
``MODEL_DIR/onnx``; with ``--data`` (the training data directory) the held-out users' top-k
agreement with the PyTorch model is measured and written into each manifest. Exit codes: 0 done,
2 a usage error (one line naming the flag and the fix), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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


DEFAULT_MODEL_DIR = "demo-output/model"
"""The reference export: ``make demo`` trains the tiny preset and writes it here."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.training.export",
                                description="Export a trained model (model.safetensors + config.json) to ONNX.")
    p.add_argument("--format", required=True, help="output format: onnx")
    p.add_argument("--quantize", help="also write an int8 model (dynamic quantization): int8")
    p.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help=f"training export (default {DEFAULT_MODEL_DIR})")
    p.add_argument("--out", help="output directory (default MODEL_DIR/onnx)")
    p.add_argument("--data", help="training data directory: measure top-k agreement on its held-out users")
    p.add_argument("--k", type=int, default=10, help="k of the top-k agreement (default 10)")
    p.add_argument("--eval-fraction", type=float, default=0.1,
                   help="share of users held out, as in training (default 0.1)")
    p.add_argument("--examples", type=int, default=1000, help="most held-out histories compared (default 1000)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from workloads.training.onnx_export import FORMATS, ExportError, export_onnx

    try:
        if args.format not in FORMATS:
            raise ExportError(f"--format={args.format}: unknown format. To fix: use --format onnx "
                              f"(supported: {', '.join(FORMATS)})")
        if args.k < 1 or args.examples < 1:
            raise ExportError(f"--k={args.k} and --examples={args.examples} must be at least 1")
        histories = None
        if args.data:
            from workloads.training.config import UsageError
            from workloads.training.data import load_dataset

            cfg = json.loads((Path(args.model_dir) / "config.json").read_text()) \
                if (Path(args.model_dir) / "config.json").is_file() else {"block_size": 32}
            try:
                data = load_dataset(args.data, int(cfg["block_size"]), args.eval_fraction, 5)
            except (UsageError, OSError) as err:
                raise ExportError(f"{err} (or leave --data out)") from err
            histories = data.eval_histories[: args.examples].numpy()
        out = args.out or str(Path(args.model_dir) / "onnx")
        manifests = export_onnx(args.model_dir, out, quantize=args.quantize, histories=histories, k=args.k)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for m in manifests:
        agree = (f", top-{args.k} agreement with PyTorch {m.agreement[f'top_{args.k}']:.4f} on "
                 f"{int(m.agreement['examples'])} held-out histories" if m.agreement else "")
        print(f"wrote {Path(out) / m.file}: {m.size_bytes:,} bytes, sha256 {m.sha256[:12]}, opset {m.opset}, "
              f"{m.quantization or 'fp32'}{agree}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
