"""Keep the catalog's price rows current: read a public price file, compare, rewrite, age-check.

    gpuplane catalog refresh --from aws-vms.csv --source "SkyPilot catalog v8 @00148f2" [--dry-run]
    gpuplane catalog drift --from aws-vms.csv      # rows that differ from the file, with the change
    gpuplane catalog check --max-age-days 90       # rows read longer ago than that

Formats read (``--format``, detected from the header when not given):

- ``skypilot``: SkyPilot's catalog CSVs (``catalogs/v8/aws/vms.csv``, ``catalogs/v8/gcp/vms.csv``;
  columns ``InstanceType, AcceleratorName, AcceleratorCount, ..., Price, SpotPrice, Region,
  AvailabilityZone``), SkyPilot's copies of the clouds' public prices, one row per zone. AWS
  on-demand is regional; spot is the **median over the region's zones** (the row's source says how
  many zones and their range). GCP host rows (machine types) and accelerator rows (blank
  ``InstanceType``) are read per GPU: the count-1 row where one exists, else count-8 / 8.
- ``aws-bulk``: the AWS Price List bulk file for one region as the clouds publish it
  (``https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/<region>/index.csv``):
  five preamble lines, then ``TermType, PricePerUnit, Instance Type, Region Code, Tenancy,
  Operating System, Pre Installed S/W, CapacityStatus, Unit, ...``; the on-demand, shared-tenancy,
  Linux, no-software, ``Used`` capacity, ``Hrs`` row of each instance type.

What refresh changes: only rows already in ``aws_prices.csv`` / ``gcp_prices.csv`` (it never adds
an offering), each rewritten with the file's figure, the ``--source`` text (plus the per-row
detail) and ``--date`` as ``fetched_at``. It refuses a figure the catalog loader would reject
(blank, zero, spot above the row's on-demand) and, for GCP accelerators, an on-demand figure below
``SUSPECT_FRACTION`` of the same GPU's dearest region in the file (SkyPilot's GCP GPU rows mix a
cheaper SKU into some regions; see its README) — those rows keep their old figure and are
listed as skipped. The rewritten folder is loaded with the strict loader before any file is
replaced, so a refresh never leaves a catalog that does not load.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import typer

from components.catalog import DATA_DIR, Catalog, CatalogError

SUSPECT_FRACTION = 0.6
"""A GCP accelerator's on-demand figure below this fraction of the same GPU's dearest region in
the file is taken for another SKU and not applied (GCP's own regional spread is within ~1.3x)."""

# SkyPilot's GCP accelerator names -> the catalog's canonical names (H100-MEGA: a3-megagpu's GPUs,
# priced in the catalog through the H100 row).
GCP_ACCELERATORS = {"A100": "A100-40GB", "A100-80GB": "A100-80GB", "H100": "H100", "H200": "H200", "L4": "L4"}

Key = tuple[str, ...]
"""``("aws", instance_type, region, capacity)`` or ``("gcp", sku_kind, name, region, capacity)``."""


@dataclass(frozen=True)
class Figure:
    usd_per_hour: float
    detail: str
    """How the figure was read from the file (zones, counts), appended to the row's source."""


@dataclass
class PriceFile:
    """Figures read from one or more public price files, keyed like ``Catalog.price_rows``."""

    figures: dict[Key, Figure] = field(default_factory=dict)
    suspect: dict[Key, str] = field(default_factory=dict)
    """Figures present in the file but not to be applied, with the reason."""


class PriceFileError(ValueError):
    """A price file cannot be read; the message names the file and the fix."""


def _num(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def read_price_file(path: Path, fmt: str | None = None, into: PriceFile | None = None) -> PriceFile:
    """Read a ``skypilot`` or ``aws-bulk`` price file (format detected from the header when None)."""
    out = into if into is not None else PriceFile()
    try:
        text = path.read_text()
    except OSError as e:
        raise PriceFileError(f"{path}: cannot be read ({e.strerror}). Give a price file in the SkyPilot or AWS bulk CSV format.") from None
    head = text[:4000]
    if fmt is None:
        fmt = "aws-bulk" if '"TermType"' in head or "TermType," in head else "skypilot"
    if fmt == "skypilot":
        _read_skypilot(path, text, out)
    elif fmt == "aws-bulk":
        _read_aws_bulk(path, text, out)
    else:
        raise PriceFileError(f"--format = {fmt!r} is not known. Use skypilot or aws-bulk.")
    return out


def _read_skypilot(path: Path, text: str, out: PriceFile) -> None:
    reader = csv.DictReader(io.StringIO(text))
    need = {"InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "SpotPrice", "Region", "AvailabilityZone"}
    missing = need - set(reader.fieldnames or [])
    if missing:
        raise PriceFileError(f"{path}: columns {sorted(missing)} are missing; a SkyPilot catalog CSV (catalogs/v8/<cloud>/vms.csv) has them.")
    rows = list(reader)
    is_aws = "Arch" in (reader.fieldnames or [])
    if is_aws:
        od: dict[tuple[str, str], float] = {}
        spot: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in rows:
            key = (r["InstanceType"], r["Region"])
            if (p := _num(r["Price"])) is not None:
                od[key] = p
            if (s := _num(r["SpotPrice"])) is not None:
                spot[key].append(s)
        for (name, region), p in od.items():
            out.figures[("aws", name, region, "on_demand")] = Figure(p, "on-demand, regional")
        for (name, region), values in spot.items():
            m = statistics.median(values)
            detail = f"spot median of {len(values)} zones (min {min(values):g}, max {max(values):g})"
            out.figures[("aws", name, region, "spot")] = Figure(round(m, 6), detail)
        return
    # GCP: host rows have an InstanceType; accelerator rows price AcceleratorCount GPUs together.
    host: dict[tuple[str, str, str], float] = {}
    gpu: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for r in rows:
        for cap, col in (("on_demand", "Price"), ("spot", "SpotPrice")):
            if (p := _num(r[col])) is None:
                continue
            if r["InstanceType"]:
                host[(r["InstanceType"], r["Region"], cap)] = p
            elif r["AcceleratorName"] in GCP_ACCELERATORS:
                count = int(float(r["AcceleratorCount"] or 0))
                if count > 0:
                    gpu[(GCP_ACCELERATORS[r["AcceleratorName"]], r["Region"], cap)][count] = p
    for (name, region, cap), p in host.items():
        out.figures[("gcp", "machine", name, region, cap)] = Figure(p, f"{cap.replace('_', '-')}, host only")
    per_gpu: dict[Key, Figure] = {}
    for (name, region, cap), by_count in gpu.items():
        count = 1 if 1 in by_count else max(by_count)
        per_gpu[("gcp", "accelerator", name, region, cap)] = Figure(
            round(by_count[count] / count, 6), f"{cap.replace('_', '-')}, per GPU from the count-{count} row")
    dearest: dict[str, float] = defaultdict(float)
    for gkey, f in per_gpu.items():
        if gkey[4] == "on_demand":
            dearest[gkey[2]] = max(dearest[gkey[2]], f.usd_per_hour)
    for gkey, f in per_gpu.items():
        if gkey[4] == "on_demand" and f.usd_per_hour < SUSPECT_FRACTION * dearest[gkey[2]]:
            out.suspect[gkey] = (f"{f.usd_per_hour:g}/GPU is below {SUSPECT_FRACTION:g} x the dearest region in the file "
                                 f"({dearest[gkey[2]]:g}): taken for another SKU")
        out.figures[gkey] = f


def _read_aws_bulk(path: Path, text: str, out: PriceFile) -> None:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines[:20]) if "TermType" in line), None)
    if start is None:
        raise PriceFileError(f"{path}: no 'TermType' header in the first 20 lines; expected an AWS Price List bulk CSV (offers/v1.0/aws/AmazonEC2/current/<region>/index.csv).")
    for r in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if (r.get("TermType") != "OnDemand" or r.get("Tenancy") != "Shared" or r.get("Operating System") != "Linux"
                or r.get("Pre Installed S/W") not in ("NA", "") or r.get("CapacityStatus") != "Used" or r.get("Unit") != "Hrs"):
            continue
        if (p := _num(r.get("PricePerUnit"))) is not None and r.get("Instance Type") and r.get("Region Code"):
            out.figures[("aws", r["Instance Type"], r["Region Code"], "on_demand")] = Figure(p, "on-demand, AWS Price List bulk file")


@dataclass(frozen=True)
class Change:
    key: Key
    old: float
    new: float
    old_source: str
    old_date: str

    @property
    def rel(self) -> float:
        return (self.old - self.new) / self.new


@dataclass
class Refresh:
    changes: list[Change]
    """Rows whose figure the file gives (changed or not: the source and date are rewritten)."""
    skipped: dict[Key, str]
    """Catalog rows the file has a figure for that was not applied, with the reason."""
    not_in_file: list[Key]


def _price_files(data_dir: Path) -> dict[str, Path]:
    return {"aws": data_dir / "aws_prices.csv", "gcp": data_dir / "gcp_prices.csv"}


def _row_key(cloud: str, row: dict[str, str]) -> Key:
    if cloud == "aws":
        return ("aws", row["instance_type"], row["region"], row["capacity"])
    return ("gcp", row["sku_kind"], row["name"], row["region"], row["capacity"])


def plan_refresh(prices: PriceFile, data_dir: Path = DATA_DIR) -> tuple[Refresh, dict[str, list[dict[str, str]]]]:
    """What a refresh would do, and the rows it would write (nothing is written here)."""
    changes: list[Change] = []
    skipped: dict[Key, str] = {}
    not_in_file: list[Key] = []
    out: dict[str, list[dict[str, str]]] = {}
    for cloud, path in _price_files(data_dir).items():
        rows = list(csv.DictReader(path.open(newline="")))
        new_od: dict[Key, float] = {}
        for row in rows:  # on-demand first: a spot figure is checked against the row's new on-demand
            key = _row_key(cloud, row)
            if key[-1] == "on_demand":
                f = prices.figures.get(key)
                new_od[key[:-1]] = f.usd_per_hour if f is not None and key not in prices.suspect else float(row["usd_per_hour"])
        for row in rows:
            key = _row_key(cloud, row)
            f = prices.figures.get(key)
            if f is None:
                not_in_file.append(key)
                continue
            if key in prices.suspect:
                skipped[key] = prices.suspect[key]
                continue
            od = new_od.get(key[:-1])
            if key[-1] != "on_demand" and od is not None and f.usd_per_hour > od * (1 + 1e-4):
                skipped[key] = f"{key[-1]} {f.usd_per_hour:g} is above the row's on-demand {od:g}"
                continue
            if od is not None and key[-1] != "on_demand" and f.usd_per_hour > od:  # the file's rounding: spot = on-demand
                f = prices.figures[key] = Figure(od, f.detail + ", equal to on-demand")
            changes.append(Change(key, float(row["usd_per_hour"]), f.usd_per_hour, row["source"], row["fetched_at"]))
        out[cloud] = rows
    return Refresh(changes, skipped, not_in_file), out


def apply_refresh(prices: PriceFile, source: str, fetched_at: str, data_dir: Path = DATA_DIR) -> Refresh:
    """Rewrite the price rows the file gives, with ``source`` (+ per-row detail) and ``fetched_at``.

    The new files are loaded with the strict loader (a copy of the whole folder) before any file
    is replaced; a catalog that would not load raises ``CatalogError`` and changes nothing."""
    import shutil
    import tempfile

    result, rows_by_cloud = plan_refresh(prices, data_dir)
    changed = {c.key for c in result.changes}
    texts: dict[Path, str] = {}
    for cloud, path in _price_files(data_dir).items():
        rows = rows_by_cloud[cloud]
        for row in rows:
            key = _row_key(cloud, row)
            if key in changed:
                f = prices.figures[key]
                row["usd_per_hour"] = f"{f.usd_per_hour:.6f}".rstrip("0").rstrip(".")
                row["source"] = f"{source}: {f.detail}"
                row["fetched_at"] = fetched_at
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        texts[path] = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp) / "data"
        shutil.copytree(data_dir, trial)
        for path, text in texts.items():
            (trial / path.name).write_text(text)
        Catalog(trial)  # raises CatalogError naming file and line
    for path, text in texts.items():
        path.write_text(text)
    return result


def drift(prices: PriceFile, data_dir: Path = DATA_DIR, tolerance: float = 0.0) -> list[Change]:
    """Catalog rows whose figure differs from the file's by more than ``tolerance`` (relative)."""
    result, _ = plan_refresh(prices, data_dir)
    return [c for c in result.changes if abs(c.old - c.new) > tolerance * c.new + 1e-9]


def stale_rows(max_age_days: int, today: date | None = None, data_dir: Path = DATA_DIR) -> list[tuple[Key, str, int]]:
    """Price rows (instances, machines, GPUs, serverless) read more than ``max_age_days`` ago."""
    today = today or date.today()
    cat = Catalog(data_dir)
    out: list[tuple[Key, str, int]] = []
    rows: Iterable[tuple[Key, str, str]] = [(k, r.fetched_at, r.source) for k, r in cat.price_rows.items()]
    rows = [*rows, *(((s.cloud, s.service, s.unit, s.region), s.fetched_at, s.source) for s in cat.serverless.values())]
    for key, fetched, source in rows:
        age = (today - date.fromisoformat(fetched)).days
        if age > max_age_days:
            out.append((key, source, age))
    return sorted(out, key=lambda t: (-t[2], t[0]))


app = typer.Typer(help="Keep the catalog's prices current: refresh from a public price file, show drift, list old rows.",
                  no_args_is_help=True, add_completion=False)


def _read_all(files: list[Path], fmt: str | None) -> PriceFile:
    prices = PriceFile()
    for f in files:
        read_price_file(f, fmt, prices)
    return prices


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


FROM = typer.Option(..., "--from", help="A price file: SkyPilot catalog CSV (aws or gcp vms.csv) or an AWS Price List bulk CSV. Repeat for several.")
FORMAT = typer.Option(None, "--format", help="skypilot or aws-bulk (default: detected from the header).")
DATA = typer.Option(DATA_DIR, "--catalog-dir", help="The catalog's data folder.")


@app.command("refresh")
def refresh_command(
    files: list[Path] = FROM,
    source: str = typer.Option(..., "--source", help="Where the file comes from, written into every row it updates: a URL, or a public dataset with its commit."),
    fetched_at: str = typer.Option(date.today().isoformat(), "--date", help="The day the figures were read (YYYY-MM-DD), written as fetched_at."),
    fmt: str | None = FORMAT,
    data_dir: Path = DATA,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would change; write nothing."),
) -> None:
    """Update the catalog's price rows from a public price file, writing source and date per row."""
    try:
        date.fromisoformat(fetched_at)
    except ValueError:
        raise _fail(f"--date = {fetched_at!r} is not a YYYY-MM-DD date. Give the day the figures were read.") from None
    if not source.strip():
        raise _fail("--source is empty. Name the file's origin: a URL, or a public dataset with its commit.")
    try:
        prices = _read_all(files, fmt)
        result = plan_refresh(prices, data_dir)[0] if dry_run else apply_refresh(prices, source, fetched_at, data_dir)
    except (PriceFileError, CatalogError) as e:
        raise _fail(str(e)) from None
    moved = [c for c in result.changes if c.old != c.new]
    for c in moved:
        typer.echo(f"{'/'.join(c.key)}: {c.old:g} (read {c.old_date}) -> {c.new:g}")
    for key, why in result.skipped.items():
        typer.echo(f"skipped {'/'.join(key)}: {why}")
    verb = "would update" if dry_run else "updated"
    typer.echo(f"{verb} {len(result.changes)} rows ({len(moved)} with a new figure), skipped {len(result.skipped)}, "
               f"{len(result.not_in_file)} not in the file (kept)")


@app.command("drift")
def drift_command(
    files: list[Path] = FROM,
    fmt: str | None = FORMAT,
    data_dir: Path = DATA,
    tolerance: float = typer.Option(0.01, "--tolerance", help="Ignore relative differences up to this (0.01 = 1 %)."),
) -> None:
    """Print catalog price rows that differ from a public price file; exit 1 when any does."""
    try:
        changes = drift(_read_all(files, fmt), data_dir, tolerance)
    except (PriceFileError, CatalogError) as e:
        raise _fail(str(e)) from None
    for c in changes:
        typer.echo(f"{'/'.join(c.key)}: catalog {c.old:g} (read {c.old_date}), file {c.new:g}: {c.rel:+.1%}")
    typer.echo(f"{len(changes)} rows drift by more than {tolerance:.0%}")
    raise typer.Exit(1 if changes else 0)


@app.command("check")
def check_command(
    max_age_days: int = typer.Option(..., "--max-age-days", min=0, help="Print rows whose fetched_at is older than this many days."),
    data_dir: Path = DATA,
) -> None:
    """Print price rows older than --max-age-days (their fetched_at); exit 1 when any is."""
    try:
        old = stale_rows(max_age_days, data_dir=data_dir)
    except CatalogError as e:
        raise _fail(str(e)) from None
    for key, source, age in old:
        typer.echo(f"{'/'.join(key)}: {age} days old ({source})")
    typer.echo(f"{len(old)} price rows older than {max_age_days} days")
    raise typer.Exit(1 if old else 0)
