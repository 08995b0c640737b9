"""``python -m workloads.pipeline.evaluate``: score an exported model on held-out data, log it to
MLflow, register it and alias it ``challenger``.

Steps:

1. Load the export (``config.json`` + ``model.safetensors``) and the data directory's held-out
   users (the trainer's fixed hash split, ``workloads.training.data``), so the examples are ones
   no training run has seen.
2. hit-rate@10 and NDCG@10 of the model and of the popularity baseline on those examples.
3. When the registered model has a ``champion``, score it on the same examples too
   (``champion_<metric>``): the gate then compares like with like, not today's challenger with
   last week's test set. Skipped, with a note, when its item vocabulary differs from the data's.
4. One MLflow run: the metrics (``hit_rate_at_10``, ``ndcg_at_10``, ``baseline_hit_rate_at_10``,
   ``baseline_ndcg_at_10``, ``champion_*``, ``eval_examples``, the export's training figures as
   ``train_*``), params (data, preset, steps) and the export as artifacts under ``model/``.
5. A new version of the registered model from that run, aliased ``challenger``.

Prints one JSON object (``run_id``, ``version``, ``metrics``) on stdout, and writes it to
``--output`` when given. Exit codes: 0 done, 2 bad input (the message names it).
The tracking URI is ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workloads.pipeline.gate import BASELINE_PREFIX, CHAMPION_PREFIX, METRICS
from workloads.pipeline.registry import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_NAME,
    Registry,
    RegistryError,
)

EXIT_OK = 0
EXIT_USAGE = 2


class EvaluateError(ValueError):
    """Bad input to the evaluation step."""


def load_export(model_dir: Path) -> Any:
    """The ``NextItemModel`` in an export directory (CPU, eval mode)."""
    from safetensors.torch import load_file

    from workloads.model import ModelConfig, NextItemModel

    missing = [f for f in ("config.json", "model.safetensors") if not (model_dir / f).is_file()]
    if missing:
        raise EvaluateError(f"--model-dir {model_dir}: missing {', '.join(missing)}; point it at a training export "
                            "(python -m workloads.training --export-dir)")
    cfg = ModelConfig.from_json((model_dir / "config.json").read_text())
    model = NextItemModel(cfg)
    try:
        model.load_state_dict(load_file(str(model_dir / "model.safetensors"), device="cpu"), strict=True)
    except RuntimeError as exc:
        raise EvaluateError(f"--model-dir {model_dir}: model.safetensors does not match config.json: {exc}") from None
    return model.eval()  # scored under torch.inference_mode() in score(); grad mode is left as it was


def score(model: Any, data: Any) -> dict[str, float]:
    """Gate metrics of ``model`` and the popularity baseline on ``data``'s held-out examples."""
    from workloads.training.evaluate import evaluate

    if model.cfg.num_items < data.num_items:
        raise EvaluateError(f"the model knows items 1..{model.cfg.num_items} but the data has ids up to "
                            f"{data.num_items}: the item vocabulary changed; retrain from scratch")
    import torch

    with torch.inference_mode():
        raw = evaluate(model, data.eval_histories, data.eval_targets, data.item_counts)
    out = {m: raw[m] for m in METRICS}
    out.update({BASELINE_PREFIX + m: raw[f"popularity_{m}"] for m in METRICS})
    out["eval_examples"] = raw["eval_examples"]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.pipeline.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", type=Path, required=True, help="training export to evaluate")
    p.add_argument("--data", type=Path, required=True, help="data directory (workloads.data.generate layout)")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="MLflow tracking and registry URI [env MLFLOW_TRACKING_URI]")
    p.add_argument("--artifact-root", default=os.environ.get("GPUPLANE_ARTIFACT_ROOT"),
                   help="artifact location of a new experiment: a directory, s3:// or gs:// "
                        "[env GPUPLANE_ARTIFACT_ROOT; default: MLflow's]")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name (default: %(default)s)")
    p.add_argument("--eval-fraction", type=float, default=0.1, help="share of users held out (default 0.1, as training)")
    p.add_argument("--run-name", help="MLflow run name")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="run and version tag (repeatable)")
    p.add_argument("--no-champion", action="store_true", help="do not re-score the champion on this data")
    p.add_argument("--output", type=Path, help="also write the JSON summary here")
    return p


def _tags(pairs: Sequence[str]) -> dict[str, str]:
    bad = [t for t in pairs if "=" not in t or not t.split("=", 1)[0]]
    if bad:
        raise EvaluateError(f"--tag {bad[0]!r} must look like KEY=VALUE")
    return dict(t.split("=", 1) for t in pairs)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from workloads.training.config import UsageError
    from workloads.training.data import load_dataset

    if not args.tracking_uri:
        raise EvaluateError("no tracking URI: pass --tracking-uri (e.g. sqlite:///registry/mlflow.db) "
                            "or set MLFLOW_TRACKING_URI")
    if not 0 < args.eval_fraction < 1:
        raise EvaluateError(f"--eval-fraction={args.eval_fraction} must be between 0 and 1 (exclusive)")
    tags = _tags(args.tag)
    model = load_export(args.model_dir)
    try:
        data = load_dataset(args.data, model.cfg.block_size, args.eval_fraction, 5)
    except UsageError as exc:
        raise EvaluateError(str(exc)) from None
    metrics = score(model, data)
    registry = Registry(args.tracking_uri, args.artifact_root)
    notes: list[str] = []
    champion = None if args.no_champion else registry.find_alias(args.model_name, CHAMPION)
    if champion is not None:
        with tempfile.TemporaryDirectory(prefix="champion-") as tmp:
            champ_dir = registry.download(args.model_name, champion.version, tmp)
            try:
                champ = score(load_export(champ_dir), data)
            except EvaluateError as exc:
                champ = None
                notes.append(f"champion v{champion.version} not re-scored: {exc}")
        if champ is not None:
            metrics.update({CHAMPION_PREFIX + m: champ[m] for m in METRICS})
    train = {}
    metrics_file = args.model_dir / "metrics.json"
    if metrics_file.is_file():
        exported = json.loads(metrics_file.read_text())
        train = {f"train_{k}": float(exported[k]) for k in ("loss", "steps") if isinstance(exported.get(k), int | float)}
    params = {"data": str(args.data), "model_dir": str(args.model_dir), "eval_fraction": args.eval_fraction,
              "num_items": model.cfg.num_items, "block_size": model.cfg.block_size,
              "champion_version": champion.version if champion is not None else "none"}
    run_id = registry.log_evaluation(args.model_dir, {**metrics, **train}, params, tags, args.run_name)
    version = registry.register(args.model_name, run_id, tags)
    registry.set_alias(args.model_name, CHALLENGER, version.version)
    return {"run_id": run_id, "model_name": args.model_name, "version": version.version, "alias": CHALLENGER,
            "champion_version": champion.version if champion is not None else None, "metrics": metrics,
            "notes": notes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = run(args)
    except (EvaluateError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = json.dumps(summary, indent=2, sort_keys=True)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
