"""Data for the local model loop: a new day of events landing, and a deliberately bad training set.

``append_day`` simulates the arrival of the next day of the event log: the same generator seed
gives the same world (users, items, their tastes and related items are drawn before any session;
see ``workloads.data.generate``), a later ``start`` and one day of fresh sessions, appended to the
previous window. ``shuffle_items`` permutes the ``item_id`` column across events: popularity is
kept, the sequence structure a model learns from is destroyed (a model trained on it is worse
than the popularity baseline on real held-out data).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np


def _write_meta(out: Path, meta: dict[str, object]) -> None:
    tmp = out / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(out / "meta.json")


def append_day(prev: Path, out: Path, days: int = 1) -> dict[str, object]:
    """``out`` = ``prev``'s window plus ``days`` new days of events; returns its meta (with ``new_events``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from workloads.data.generate import GenerateConfig, generate

    meta = json.loads((prev / "meta.json").read_text())
    start = dt.datetime.fromisoformat(str(meta["start"])) + dt.timedelta(days=int(meta["days"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="new-day-") as tmp:
        generate(tmp, GenerateConfig(users=int(meta["users"]), items=int(meta["items"]), days=days,
                                     seed=int(meta["seed"]), start=start.isoformat()))
        old = pq.read_table(prev / "events.parquet")
        new = pq.read_table(Path(tmp) / "events.parquet")
        offset = int(pc.max(old["session_id"]).as_py() or 0) + 1  # session ids stay unique across days
        new = new.set_column(new.schema.get_field_index("session_id"), "session_id",
                             pc.add(new["session_id"], pa.scalar(offset, pa.int64())))
        pq.write_table(pa.concat_tables([old, new]), out / "events.parquet")
        shutil.copyfile(Path(tmp) / "items.parquet", out / "items.parquet")
        shutil.copyfile(Path(tmp) / "users.parquet", out / "users.parquet")
    merged = {**meta, "days": int(meta["days"]) + days}
    _write_meta(out, merged)
    return {**merged, "new_events": new.num_rows, "events": old.num_rows + new.num_rows,
            "new_window_start": start.isoformat()}


def shuffle_items(src: Path, out: Path, seed: int) -> None:
    """``out`` = ``src`` with the events' ``item_id`` column permuted (labels shuffled)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    events = pq.read_table(src / "events.parquet")
    items = events["item_id"].to_numpy()
    shuffled = np.random.default_rng(seed).permutation(items)
    events = events.set_column(events.schema.get_field_index("item_id"), "item_id", pa.array(shuffled, pa.int64()))
    pq.write_table(events, out / "events.parquet")
    for name in ("items.parquet", "users.parquet"):
        shutil.copyfile(src / name, out / name)
    _write_meta(out, {**json.loads((src / "meta.json").read_text()), "shuffled_item_ids": True})


def item_ids(data_dir: Path) -> list[int]:
    import pyarrow.parquet as pq

    return sorted(int(i) for i in pq.read_table(data_dir / "items.parquet", columns=["item_id"])["item_id"].to_numpy())
