"""Feature store figures on this machine: materialisation throughput and online lookup latency.

Runs the local pipeline (generate -> transform -> feast apply -> materialise into SQLite) on a
synthetic event log, then times online lookups of batches of user ids three ways, side by side:

- in-process: ``FeatureStore.get_online_features`` (what a process that imports Feast gets);
- feature server: ``FeastHistoryClient`` -> ``feast serve`` over loopback HTTP (what the
  model server does; includes JSON encoding and the HTTP hop);
- cached: the same client with its TTL cache warm (no request at all).

Prints the dataset size, stage timings, rows/s, p50/p99 per batch size and the server/in-process
ratio. Figures, not pass/fail: nothing here asserts a threshold.

    python benchmarks/features_bench.py [--users 10000 --items 2000 --days 14 --iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import numpy as np
import pyarrow.parquet as pq

from workloads.data.generate import GenerateConfig, generate
from workloads.features.client import FeastHistoryClient
from workloads.features.pipeline import materialize_local, online_features, open_store
from workloads.features.server import FeatureServer


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=200, help="lookups per batch size and path")
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    args = parser.parse_args(argv)
    os.environ.setdefault("FEAST_USAGE", "False")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="features-bench-") as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        generate(base / "raw", GenerateConfig(users=args.users, items=args.items, days=args.days, seed=args.seed))
        gen_s = time.perf_counter() - t
        summary = materialize_local(base / "raw", base / "repo")
        sec = summary["seconds"]
        print(f"dataset: {summary['events']:,} events, {summary['users']:,} users, {summary['items']:,} items, "
              f"{args.days} days, {summary['snapshots']} daily snapshots (generated in {gen_s:.2f} s)")
        print("feature tables: " + ", ".join(f"{k} {v:,} rows" for k, v in summary["rows"].items()))
        print(f"{'stage':<14}{'seconds':>9}{'rows/s':>14}")
        rows = summary["materialized_rows"]
        print(f"{'read':<14}{sec['read']:>9.2f}{summary['events'] / sec['read']:>14,.0f}  (events)")
        print(f"{'transform':<14}{sec['transform']:>9.2f}{summary['events'] / sec['transform']:>14,.0f}  (events in)")
        print(f"{'import feast':<14}{sec['import_feast']:>9.2f}")
        print(f"{'write':<14}{sec['write']:>9.2f}{rows / sec['write']:>14,.0f}  (snapshot rows)")
        print(f"{'feast apply':<14}{sec['apply']:>9.2f}")
        print(f"{'materialize':<14}{sec['materialize']:>9.2f}{rows / sec['materialize']:>14,.0f}  (snapshot rows read; "
              f"{summary['online_rows']:,} latest rows written = {summary['online_rows'] / sec['materialize']:,.0f}/s)")

        latest = pq.read_table(base / "repo" / "data" / "user_last_items.parquet", columns=["user_id"])
        users = sorted(set(latest.column("user_id").to_pylist()))
        rng = random.Random(args.seed)
        batches = {b: [rng.sample(users, min(b, len(users))) for _ in range(args.iterations)] for b in batch_sizes}

        store = open_store(base / "repo")
        in_process: dict[int, tuple[float, float]] = {}
        for b, sample in batches.items():
            online_features(base / "repo", sample[0], store=store)  # warm-up
            times = []
            for ids in sample:
                t = time.perf_counter()
                online_features(base / "repo", ids, store=store)
                times.append(time.perf_counter() - t)
            in_process[b] = _percentiles(times)

        with FeatureServer(base / "repo") as server:
            startup = server.startup_seconds or 0.0

            async def over_http(cache_ttl: float) -> dict[int, tuple[float, float]]:
                out = {}
                async with FeastHistoryClient(server.url, cache_ttl_seconds=cache_ttl, timeout_s=30) as client:
                    for b, sample in batches.items():
                        await client.last_items(sample[0])  # warm-up (connection, cache)
                        times = []
                        for ids in sample if cache_ttl == 0 else [sample[0]] * len(sample):
                            t = time.perf_counter()
                            await client.last_items(ids)
                            times.append(time.perf_counter() - t)
                        out[b] = _percentiles(times)
                return out

            served = asyncio.run(over_http(0.0))
            cached = asyncio.run(over_http(3600.0))

        print(f"\nfeast serve startup (process start to /health 200): {startup:.1f} s")
        print(f"online lookup of a batch of user ids, {args.iterations} lookups each, milliseconds:")
        print(f"{'batch':>6} {'in-process p50/p99':>20} {'feature server p50/p99':>24} {'cached p50/p99':>18} "
              f"{'server/in-process (p50)':>24}")
        for b in batch_sizes:
            ip, sv, ca = in_process[b], served[b], cached[b]
            print(f"{b:>6} {ip[0]:>10.2f}/{ip[1]:<9.2f} {sv[0]:>12.2f}/{sv[1]:<11.2f} {ca[0]:>9.3f}/{ca[1]:<8.3f} "
                  f"{sv[0] / ip[0]:>24.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
