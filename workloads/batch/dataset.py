"""The batch's input: objects of the event log, and the items (users) inside them.

An object is a Parquet file in the event-log schema of ``workloads.data.generate``
(``user_id``, ``item_id``, ``event_timestamp``, ...). ``--data`` names one of:

- a generated data directory (it holds ``meta.json``): its ``events.parquet`` is the one object;
- one ``.parquet`` object;
- a folder or bucket prefix: every ``*.parquet`` object under it (recursively), except names
  with a part starting with ``.`` or ``_`` (temporary files, markers), in name order.

An item is one user of one object: the user's history in that object (item ids in time order,
consecutive repeats collapsed, as training builds it, ``workloads.training.data.histories_of``),
its last ``block_size`` ids. Items are ordered by object (plan order), then by ``user_id``
ascending; this order is what tasks shard, so it must not depend on anything but the objects.

Listing needs only fsspec; reading items imports pyarrow and the training data code (torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workloads.batch.store import StoreError, generation, join, open_location


@dataclass(frozen=True)
class ObjectRef:
    """One object and the generation it had when it was listed."""

    uri: str
    """Full URL (``file:///...``, ``s3://...``, ``gs://...``): the manifest's key."""
    generation: str


@dataclass(frozen=True)
class Item:
    object_uri: str
    user_id: int
    history: tuple[int, ...]
    """1..block_size item ids, oldest first."""


def _hidden(rel: str) -> bool:
    return any(part.startswith((".", "_")) for part in rel.split("/") if part)


def list_objects(data: str, field: str = "--data", *, allow_empty: bool = False) -> list[ObjectRef]:
    """The objects ``data`` names, with their generations (see the module doc); an error when there is none,
    unless ``allow_empty`` (a watched prefix: an empty or absent one is no objects yet)."""
    fs, root = open_location(data, field)
    try:
        info = fs.info(root)
    except FileNotFoundError:
        if allow_empty:
            return []
        raise StoreError(f"{field}={data!r} does not exist; point it at an event-log directory "
                         f"(python -m workloads.data.generate --out DIR), a .parquet object or a folder of them") from None
    if info["type"] == "directory" and fs.exists(join(root, "meta.json")):
        root = join(root, "events.parquet")
        info = fs.info(root)
    if info["type"] != "directory":
        if not root.endswith(".parquet"):
            raise StoreError(f"{field}={data!r} is not a .parquet object; give a Parquet event-log file or a folder")
        return [ObjectRef(fs.unstrip_protocol(root), generation(fs, root, info))]
    found = fs.find(root, detail=True)
    refs = [ObjectRef(fs.unstrip_protocol(path), generation(fs, path, meta))
            for path, meta in sorted(found.items())
            if path.endswith(".parquet") and not _hidden(path[len(root):])]
    if not refs and not allow_empty:
        raise StoreError(f"{field}={data!r}: no *.parquet objects under it; put event-log Parquet files there "
                         f"(names starting with '.' or '_' are ignored)")
    return refs


def _read_table(uri: str, columns: list[str]) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, path = open_location(uri, "object")
    try:
        with fs.open(path, "rb") as f:  # ParquetFile, not read_table: pyarrow.dataset would import pandas (~0.5 s)
            return pq.ParquetFile(f).read(columns=columns)
    except (pa.ArrowException, OSError, KeyError) as err:
        reason = " ".join(str(err).split())[:200]
        raise StoreError(f"object {uri} is not a readable Parquet file with columns {', '.join(columns)} ({reason}); "
                         "objects must follow the event-log schema of workloads.data.generate") from err


def count_items(uri: str) -> int:
    """Users in the object (its items), reading only the ``user_id`` column."""
    import pyarrow.compute as pc

    return len(pc.unique(_read_table(uri, ["user_id"])["user_id"]))


def read_items(uri: str, block_size: int, start: int, stop: int) -> list[Item]:
    """Items ``start..stop-1`` of the object (users in ascending id order)."""
    from workloads.training.data import HISTORY_COLUMNS, histories_of

    users, histories = histories_of(_read_table(uri, HISTORY_COLUMNS))
    return [Item(uri, int(users[i]), tuple(int(x) for x in histories[i][-block_size:])) for i in range(start, stop)]
