"""The local feature pipeline: event log -> feature tables -> Feast registry -> SQLite online store.

``materialize_local(data_dir, repo_dir)`` runs it end to end and returns a summary dict;
``python -m workloads.features materialize --data DIR --repo-dir DIR`` is its command line.

What it does, in order:

1. reads ``DATA/events.parquet`` (the data contract; ``DATA/meta.json`` must exist, which the
   generator writes last);
2. builds the point-in-time feature tables (``transform.py``) and writes them to
   ``REPO/data/<table>.parquet``;
3. makes ``REPO`` a self-contained Feast repository: ``feature_store.yaml`` rendered from the
   ``local`` template (or the target's, given), ``features.py`` and ``feature_views.yaml``;
4. registers the definitions (the Python form of ``feast apply``) and materialises every
   snapshot into the SQLite online store.

Readers: ``historical_features`` (training, point-in-time correct) and ``online_features``
(in-process, for tests and benchmarks; a model server uses ``client.FeastHistoryClient`` over
HTTP instead). Feast is imported lazily inside the functions that need it (the import costs
seconds), so importing this module is cheap. It does not deploy anything to a cluster or cloud:
that is the FeatureStore component's job, which renders the same templates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workloads.features.render import render_feature_store_yaml
from workloads.features.transform import TransformConfig, build_feature_tables, read_events, write_feature_tables

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

REPO_FILES = (
    Path(__file__).parent / "repo" / "features.py",
    Path(__file__).parent / "templates" / "feature_views.yaml",
)
"""The feature definition (code and data) copied into every repository directory."""

LAST_ITEMS_FEATURE = "user_last_items:last_items"
TRAINING_FEATURES = (
    "user_last_items:last_items",
    "user_activity:events_24h",
    "user_activity:events_7d",
    "user_activity:purchases_7d",
    "user_activity:distinct_items",
)

Progress = Callable[[str], None]
_LABEL_ROW = "__gpuplane_label_row"


def _quiet_progress(_: str) -> None:
    return None


def prepare_repo(
    repo_dir: str | Path, *, project: str = "gpuplane", feature_store_yaml: str | Path | None = None
) -> Path:
    """Make ``repo_dir`` a Feast repository: ``feature_store.yaml`` (rendered for the local
    target, or copied from ``feature_store_yaml``), ``features.py`` and ``feature_views.yaml``."""
    repo = Path(repo_dir)
    (repo / "data").mkdir(parents=True, exist_ok=True)
    if feature_store_yaml is None:
        yaml_text = render_feature_store_yaml("local", project=project)
    else:
        yaml_text = Path(feature_store_yaml).read_text()
    _write_text_atomically(repo / "feature_store.yaml", yaml_text)
    for source in REPO_FILES:
        shutil.copyfile(source, repo / source.name)
    return repo


def open_store(repo_dir: str | Path) -> FeatureStore:
    """A ``feast.FeatureStore`` on ``repo_dir`` (imports Feast: seconds on first call)."""
    os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry
    from feast import FeatureStore

    repo = Path(repo_dir)
    if not (repo / "feature_store.yaml").exists():
        raise FileNotFoundError(
            f"{repo}/feature_store.yaml is missing. Run `python -m workloads.features materialize "
            f"--data DATA --repo-dir {repo}` first."
        )
    return FeatureStore(repo_path=str(repo))


def materialize_local(
    data_dir: str | Path,
    repo_dir: str | Path,
    *,
    history_length: int = 32,
    snapshot_every_hours: int = 24,
    project: str = "gpuplane",
    created_at: dt.datetime | None = None,
    feature_store_yaml: str | Path | None = None,
    offline_root: str | None = None,
    source: str = "file",
    source_options: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the pipeline end to end in this process (see the module docstring); return a summary.

    Defaults are the local target. A cluster's materialisation job passes the target's
    rendered ``feature_store.yaml`` (Redis, DynamoDB, ... online store; registry on a bucket)
    and ``offline_root`` (e.g. ``s3://bucket/features``: where the tables are written and
    where the registered sources point); ``data_dir`` may then be a bucket URL too. With
    ``source="athena"`` (options ``database``) or ``"bigquery"`` (options ``dataset`` as
    ``project.dataset``) the views read the Glue / BigQuery tables that the FeatureStore
    component defines over ``{offline_root}/{view}/``.

    The summary holds the dataset size (events, users, items, snapshots), the rows written per
    feature table, the snapshot range (ISO 8601), the repository paths and seconds per stage
    (``seconds``: read, transform, import_feast, write, apply, materialize, total).
    """
    say = progress or _quiet_progress
    data = str(data_dir).rstrip("/")
    repo = Path(repo_dir)
    if not _exists(f"{data}/meta.json"):
        raise FileNotFoundError(
            f"{data}/meta.json is missing, so {data} is not a complete data set. Generate one with "
            f"`python -m workloads.data.generate --out {data} --users 1000 --items 1000 --days 7 --seed 0`."
        )
    seconds: dict[str, float] = {}
    t_start = time.perf_counter()

    t = time.perf_counter()
    events = read_events(f"{data}/events.parquet")
    seconds["read"] = time.perf_counter() - t
    say(f"read {events.num_rows:,} events from {data}/events.parquet ({seconds['read']:.2f} s)")

    t = time.perf_counter()
    config = TransformConfig(
        history_length=history_length, snapshot_every_hours=snapshot_every_hours, created_at=created_at
    )
    tables = build_feature_tables(events, config)
    seconds["transform"] = time.perf_counter() - t
    say(
        f"built feature tables over {tables.snapshots} snapshots every {snapshot_every_hours} h "
        f"({tables.first_snapshot.isoformat()} .. {tables.last_snapshot.isoformat()}): "
        + ", ".join(f"{name} {t.num_rows:,} rows" for name, t in tables.tables().items())
        + f" ({seconds['transform']:.2f} s)"
    )

    t = time.perf_counter()
    say("importing Feast ...")
    os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry
    from workloads.features.repo.features import SOURCES, objects, table_path

    seconds["import_feast"] = time.perf_counter() - t
    if source not in SOURCES:
        raise ValueError(f"materialize: source={source!r} is not one of {SOURCES}")

    t = time.perf_counter()
    prepare_repo(repo, project=project, feature_store_yaml=feature_store_yaml)
    root = offline_root.rstrip("/") if offline_root else "data"
    paths = write_feature_tables(
        tables, root if offline_root else repo / "data", layout=lambda out, view: table_path(out, view, source)
    )
    seconds["write"] = time.perf_counter() - t
    say(f"wrote {repo}/feature_store.yaml, features.py and {len(paths)} tables under {offline_root or repo / 'data'}")

    t = time.perf_counter()
    say("applying the feature definitions (feast apply) ...")
    store = open_store(repo)
    definitions = objects(root, source, source_options)
    with contextlib.redirect_stdout(sys.stderr):
        store.apply(definitions)
    seconds["apply"] = time.perf_counter() - t
    say(f"applied {len(definitions)} objects to the registry ({store.config.registry.path}) ({seconds['apply']:.2f} s)")

    t = time.perf_counter()
    # Feast materialises rows with start <= event_timestamp < end; cover every snapshot.
    start = tables.first_snapshot - dt.timedelta(seconds=1)
    end = tables.last_snapshot + dt.timedelta(seconds=1)
    with contextlib.redirect_stdout(sys.stderr):  # Feast prints its progress to stdout
        store.materialize(start_date=start, end_date=end)
    seconds["materialize"] = time.perf_counter() - t
    rows = sum(t.num_rows for t in tables.tables().values())
    # The online store keeps the latest row per entity: that is what gets written.
    online_rows = 2 * tables.stats["users"] + tables.stats["items"]  # every logged entity has a row
    say(
        f"materialized {rows:,} snapshot rows ({online_rows:,} latest entity rows written) into the "
        f"{store.config.online_store.type} online store ({seconds['materialize']:.2f} s, "
        f"{rows / max(seconds['materialize'], 1e-9):,.0f} rows/s)"
    )
    seconds["total"] = time.perf_counter() - t_start
    return {
        "data_dir": data,
        "offline_root": offline_root or str(repo / "data"),
        "repo_dir": str(repo),
        "events": tables.events,
        "users": tables.stats["users"],
        "items": tables.stats["items"],
        "snapshots": tables.snapshots,
        "snapshot_every_hours": snapshot_every_hours,
        "history_length": history_length,
        "first_snapshot": tables.first_snapshot.isoformat(),
        "last_snapshot": tables.last_snapshot.isoformat(),
        "rows": {name: t.num_rows for name, t in tables.tables().items()},
        "materialized_rows": rows,
        "online_rows": online_rows,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def historical_features(
    repo_dir: str | Path,
    entity_df: pd.DataFrame,
    features: Sequence[str] = TRAINING_FEATURES,
) -> pd.DataFrame:
    """Point-in-time features for labels: ``entity_df`` has ``user_id`` and ``event_timestamp``.

    Each label gets, per feature view, the latest snapshot with ``event_timestamp <= label
    time`` (never a later one); labels before a user's first snapshot get nulls. Rows come back
    in the order of ``entity_df``, one per label, with its extra columns kept.
    """
    missing = {"user_id", "event_timestamp"} - set(entity_df.columns)
    if missing:
        raise ValueError(
            f"historical_features: entity_df lacks columns {sorted(missing)}; it needs user_id (int64) "
            "and event_timestamp (timezone-aware)."
        )
    import pandas as pd

    store = open_store(repo_dir)
    labels = entity_df.reset_index(drop=True).assign(**{_LABEL_ROW: range(len(entity_df))})
    joined = store.get_historical_features(entity_df=labels, features=list(features)).to_df()
    # Feast's file (dask) store drops a label whose entity has rows only after the label time,
    # and returns rows in its own order: put every label back, in input order, with nulls.
    feature_cols = [c for c in joined.columns if c not in labels.columns]
    from workloads.features.repo.features import SPEC

    integer_features = {f for v in SPEC["feature_views"].values() for f, d in v["features"].items() if d["dtype"] == "int64"}
    for col in feature_cols:  # nullable integers: a label without a value must not turn counts into floats
        if col.rsplit("__", 1)[-1] in integer_features:
            joined[col] = joined[col].astype("Int64")
    out = pd.merge(labels, joined[[_LABEL_ROW, *feature_cols]], on=_LABEL_ROW, how="left", validate="one_to_one")
    return out.sort_values(_LABEL_ROW).drop(columns=[_LABEL_ROW]).reset_index(drop=True)


def online_features(
    repo_dir: str | Path,
    user_ids: Sequence[int],
    features: Sequence[str] = (LAST_ITEMS_FEATURE,),
    store: FeatureStore | None = None,
) -> dict[str, list[Any]]:
    """Latest feature values for ``user_ids`` read in-process (tests, benchmarks)."""
    store = store or open_store(repo_dir)
    rows = [{"user_id": int(u)} for u in user_ids]
    return store.get_online_features(features=list(features), entity_rows=rows).to_dict()


def _exists(url_or_path: str) -> bool:
    if "://" not in url_or_path:
        return Path(url_or_path).exists()
    import fsspec  # bucket URLs (s3://, gs://) on a cluster

    fs, path = fsspec.core.url_to_fs(url_or_path)
    return bool(fs.exists(path))


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)
