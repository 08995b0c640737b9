"""Command line of the feature store workload.

``python -m workloads.features materialize --data DIR --repo-dir DIR`` runs the local pipeline
(transform, ``feast apply``, materialise into SQLite) with progress lines and a JSON summary.
``python -m workloads.features serve --repo-dir DIR`` runs the Feast feature server on
loopback until interrupted. ``python -m workloads.features render --target T [--set k=v ...]``
prints a ``feature_store.yaml``. Exit codes: 0 success, 2 bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import yaml

from workloads.features.render import TARGETS, FeatureStoreYamlError, render_feature_store_yaml


def _progress(line: str) -> None:
    print(f"[features] {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.features", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    mat = sub.add_parser("materialize", help="event log -> feature tables -> Feast (SQLite online store)")
    mat.add_argument("--data", required=True, help="data directory of workloads.data.generate (events.parquet, meta.json)")
    mat.add_argument("--repo-dir", required=True, help="Feast repository directory to write (created if missing)")
    mat.add_argument("--history-length", type=int, default=32, help="items kept per user (default 32)")
    mat.add_argument("--snapshot-every-hours", type=int, default=24, help="hours between snapshots, divides 24 (default 24)")
    mat.add_argument("--project", default="gpuplane", help="Feast project name (default gpuplane)")
    mat.add_argument("--feature-store-yaml", help="use this rendered feature_store.yaml (default: the local target)")
    mat.add_argument("--offline-root", help="write the feature tables here, e.g. s3://bucket/features (default REPO/data)")
    mat.add_argument("--source", default="file", choices=("file", "athena", "bigquery"), help="offline source kind (default file)")
    mat.add_argument("--source-option", action="append", default=[], metavar="KEY=VALUE",
                     help="athena: database=DB; bigquery: dataset=PROJECT.DATASET")

    srv = sub.add_parser("serve", help="run `feast serve` for a repository on loopback until interrupted")
    srv.add_argument("--repo-dir", required=True)
    srv.add_argument("--port", type=int, default=6566)

    ren = sub.add_parser("render", help="print feature_store.yaml for a target")
    ren.add_argument("--target", required=True, choices=TARGETS)
    ren.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="template parameter")

    args = parser.parse_args(argv)
    if args.command == "materialize":
        from workloads.features.pipeline import materialize_local

        try:
            summary = materialize_local(
                args.data,
                args.repo_dir,
                history_length=args.history_length,
                snapshot_every_hours=args.snapshot_every_hours,
                project=args.project,
                feature_store_yaml=args.feature_store_yaml,
                offline_root=args.offline_root,
                source=args.source,
                source_options=dict(o.partition("=")[::2] for o in args.source_option),
                progress=_progress,
            )
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(json.dumps(summary, indent=2))
        return 0
    if args.command == "serve":
        from workloads.features.server import FeatureServer

        try:
            with FeatureServer(args.repo_dir, port=args.port) as server:
                _progress(f"feature server on {server.url} (ready in {server.startup_seconds:.1f} s); Ctrl-C stops it")
                while True:
                    time.sleep(3600)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 0
    params = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --set {item!r} must be KEY=VALUE", file=sys.stderr)
            return 2
        params[key] = yaml.safe_load(value) if value else value  # "6379" -> 6379, "false" -> False
    try:
        sys.stdout.write(render_feature_store_yaml(args.target, **params))
    except FeatureStoreYamlError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
