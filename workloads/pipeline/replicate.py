"""Copy an exported model directory to another bucket (train here, serve there).

``python -m workloads.pipeline.replicate --src URL --dst URL [--also URL ...]``: copies every file under
``--src`` to ``--dst`` (any fsspec URL: ``s3://``, ``gs://``, a local path), then from ``--dst`` to each
``--also`` (e.g. the ``champion`` prefix a serving endpoint reads). Within a copy ``config.json`` goes
first and ``model.safetensors`` last, so a server starting mid-copy reads the previous weights or the
new ones whole (the copy is not atomic across files). Prints one JSON line: files, bytes, seconds per
destination. Exit 0 on success, 2 on a usage error (no source files), 1 on an I/O failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import fsspec

ORDER = {"config.json": 0, "model.safetensors": 2}
CHUNK = 16 * 1024 * 1024


def _files(fs, root: str) -> list[str]:
    root = root.rstrip("/")
    return sorted((p for p in fs.find(root) if not fs.isdir(p)), key=lambda p: (ORDER.get(p.rsplit("/", 1)[-1], 1), p))


def copy_tree(src: str, dst: str) -> dict[str, float]:
    """Copy every file under ``src`` to ``dst``; returns files, bytes and seconds."""
    sfs, sroot = fsspec.core.url_to_fs(src)
    dfs, droot = fsspec.core.url_to_fs(dst)
    files = _files(sfs, sroot)
    if not files:
        raise FileNotFoundError(f"no files under {src}")
    started, total = time.perf_counter(), 0
    for path in files:
        rel = path[len(sroot.rstrip("/")) + 1:]
        target = f"{droot.rstrip('/')}/{rel}"
        parent = target.rsplit("/", 1)[0]
        if parent:
            dfs.makedirs(parent, exist_ok=True)
        with sfs.open(path, "rb") as r, dfs.open(target, "wb") as w:
            while chunk := r.read(CHUNK):
                w.write(chunk)
                total += len(chunk)
    return {"files": len(files), "bytes": total, "seconds": round(time.perf_counter() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--also", action="append", default=[])
    args = ap.parse_args(argv)
    report: dict[str, dict[str, float]] = {}
    try:
        report[args.dst] = copy_tree(args.src, args.dst)
        for extra in args.also:
            report[extra] = copy_tree(args.dst, extra)
    except FileNotFoundError as e:
        print(f"error: {e}. To fix: point --src at the exported model directory.", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: copying {args.src} to {args.dst}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
