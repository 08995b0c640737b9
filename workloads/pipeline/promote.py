"""``python -m workloads.pipeline.promote``: the evaluation gate as a pipeline step.

Reads the ``challenger`` version's evaluation run and the ``champion``'s (if any) from the MLflow
registry, applies :func:`workloads.pipeline.gate.decide` and, when the challenger is promoted,
moves the ``champion`` alias to it (``--no-move`` decides only: the local loop moves the alias
after the canary). Every version judged gets the tags ``gate`` (``promoted`` / ``rejected``) and
``gate_reason``.

Prints the decision as JSON (``promoted``, ``reason``, ``metric``, ``margin``, the figures,
``challenger_version``, ``champion_version``) and writes it to ``--output`` when given.
Exit codes: 0 promoted, 3 rejected (the champion stays), 2 bad input (a metric missing from a
run, an unknown alias, a negative margin: the message names it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workloads.pipeline.gate import METRICS, GateConfig, GateInputError, decide
from workloads.pipeline.registry import CHALLENGER, CHAMPION, DEFAULT_MODEL_NAME, Registry, RegistryError

EXIT_PROMOTED = 0
EXIT_USAGE = 2
EXIT_REJECTED = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.pipeline.promote", description=__doc__.split("\n")[0],
                                epilog="Exit codes: 0 promoted, 3 rejected (champion stays), 2 bad input.")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="MLflow tracking and registry URI [env MLFLOW_TRACKING_URI]")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name (default: %(default)s)")
    p.add_argument("--metric", default=GateConfig.metric, help=f"gate metric, one of {', '.join(METRICS)} "
                   "(default: %(default)s)")
    p.add_argument("--margin", type=float, default=GateConfig.margin,
                   help="absolute improvement over the champion required (default: %(default)s)")
    p.add_argument("--challenger-alias", default=CHALLENGER, help="alias of the version judged (default: %(default)s)")
    p.add_argument("--champion-alias", default=CHAMPION, help="alias of the version to beat (default: %(default)s)")
    p.add_argument("--no-move", action="store_true", help="decide only; do not move the champion alias")
    p.add_argument("--output", type=Path, help="also write the JSON decision here")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.tracking_uri:
        raise GateInputError("no tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    cfg = GateConfig(metric=args.metric, margin=args.margin)
    cfg.validate()
    registry = Registry(args.tracking_uri)
    challenger = registry.by_alias(args.model_name, args.challenger_alias)
    champion = registry.find_alias(args.model_name, args.champion_alias)
    if champion is not None and champion.version == challenger.version:
        raise GateInputError(f"--challenger-alias {args.challenger_alias} and --champion-alias {args.champion_alias} "
                             f"both point at version {challenger.version}; evaluate a new version first")
    champion_metrics = registry.run_metrics(champion.run_id) if champion is not None else None
    decision = decide(registry.run_metrics(challenger.run_id), champion_metrics, cfg)
    out = {**decision.to_json(), "model_name": args.model_name, "challenger_version": challenger.version,
           "champion_version": champion.version if champion is not None else None, "alias_moved": False}
    registry.set_tag(args.model_name, challenger.version, "gate", "promoted" if decision.promoted else "rejected")
    registry.set_tag(args.model_name, challenger.version, "gate_reason", decision.reason[:500])
    if decision.promoted and not args.no_move:
        registry.set_alias(args.model_name, args.champion_alias, challenger.version)
        out["alias_moved"] = True
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        decision = run(args)
    except (GateInputError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = json.dumps(decision, indent=2, sort_keys=True)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return EXIT_PROMOTED if decision["promoted"] else EXIT_REJECTED


if __name__ == "__main__":
    sys.exit(main())
