"""The GPU catalog: facts as data, one loader, shared lookups.

Components, policies, the cost model and the simulator all read GPU, instance, region, price,
notice-window, storage-bandwidth, egress and engine-start facts from here and nowhere else. The facts live in CSV files under
``data/``; every price row carries ``source`` and ``fetched_at``.

The loader is strict, because catalogs in the wild carry placeholder prices (700.0), duplicate
rows and blank cells: a bad row raises ``CatalogError`` naming the file, the line, the column
and the fix. Checked on load: types and required cells, positive prices below a sentinel
ceiling, no duplicate keys, spot no dearer than on-demand for the same offering, every
accelerator, instance type, region and zone known.

Prices are USD per hour. GCP machine rows price only the host; the price of a GCP offering is
host + GPUs (``Catalog.price``). Nothing here reaches the network.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

from components.catalog.records import (
    CAPACITIES,
    DATA_DIR,
    EGRESS_SCOPES,
    HOURS_PER_MONTH,
    MAX_PLAUSIBLE_GIB_PER_SECOND,
    MAX_PLAUSIBLE_USD_PER_HOUR,
    SENTINEL_PRICES,
    SERVING_RUNTIMES,
    Accelerator,
    BatchLimit,
    Capacity,
    CatalogError,
    Cloud,
    CloudFacts,
    EdgeGpu,
    Egress,
    EngineStart,
    InstanceType,
    Offering,
    PriceRow,
    Region,
    ServerlessRate,
    StorageBandwidth,
)

# ---------------------------------------------------------------------------------------------
# Row parsing


class _Rows:
    """Iterates a CSV file's rows with their line numbers and turns cells into typed values."""

    def __init__(self, path: Path, required: Iterable[str]):
        self.path = path
        self.required = tuple(required)

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        with self.path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in self.required if c not in (reader.fieldnames or [])]
            if missing:
                raise CatalogError(f"{self.path.name}:1: missing columns {missing}. Add them to the header row.")
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise CatalogError(f"{self.path.name}:{line}: more cells than header columns. Remove the extra cells.")
                yield line, {k: (v or "").strip() for k, v in row.items()}

    def fail(self, line: int, msg: str) -> CatalogError:
        return CatalogError(f"{self.path.name}:{line}: {msg}")

    def text(self, line: int, row: dict[str, str], col: str) -> str:
        value = row.get(col, "")
        if not value:
            raise self.fail(line, f"column '{col}' is blank. Fill it in or delete the row.")
        return value

    def number(self, line: int, row: dict[str, str], col: str, *, positive: bool = True) -> float:
        raw = self.text(line, row, col)
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(line, f"column '{col}' = {raw!r} is not a number.") from None
        if positive and not value > 0:
            raise self.fail(line, f"column '{col}' = {raw} must be positive.")
        return value

    def integer(self, line: int, row: dict[str, str], col: str, *, minimum: int = 0) -> int:
        raw = self.text(line, row, col)
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(line, f"column '{col}' = {raw!r} is not a whole number.") from None
        if value < minimum:
            raise self.fail(line, f"column '{col}' = {value} must be at least {minimum}.")
        return value

    def price(self, line: int, row: dict[str, str], col: str) -> float:
        value = self.number(line, row, col)
        if value in SENTINEL_PRICES or value > MAX_PLAUSIBLE_USD_PER_HOUR:
            raise self.fail(
                line,
                f"column '{col}' = {value} looks like a placeholder price (sentinel or above "
                f"{MAX_PLAUSIBLE_USD_PER_HOUR} $/h). Replace it with the real price or delete the row.",
            )
        return value

    def choice(self, line: int, row: dict[str, str], col: str, allowed: Iterable[str]) -> str:
        value = self.text(line, row, col)
        allowed = tuple(allowed)
        if value not in allowed:
            raise self.fail(line, f"column '{col}' = {value!r} is not one of {list(allowed)}.")
        return value


def _unique(seen: dict[tuple[str, ...], int], key: tuple[str, ...], rows: _Rows, line: int) -> None:
    if key in seen:
        raise rows.fail(line, f"duplicate key {key} (first on line {seen[key]}). Keep one row.")
    seen[key] = line


# ---------------------------------------------------------------------------------------------
# The catalog


class Catalog:
    """All catalog facts, loaded and cross-checked. Build with ``load_catalog()``."""

    def __init__(self, data_dir: Path = DATA_DIR):
        self.data_dir = Path(data_dir)
        self.accelerators: dict[str, Accelerator] = {}
        self.clouds: dict[str, CloudFacts] = {}
        self.regions: dict[tuple[str, str], Region] = {}
        self.instance_types: dict[tuple[str, str], InstanceType] = {}
        self.offerings: dict[tuple[str, str, str], Offering] = {}
        self.serverless: dict[tuple[str, str, str, str], ServerlessRate] = {}
        self.storage: dict[str, StorageBandwidth] = {}
        self.engine_starts: dict[str, EngineStart] = {}
        self.batch_limits: dict[tuple[str, str], BatchLimit] = {}
        self.egress_rows: dict[tuple[str, str], Egress] = {}
        self.edge_gpus: dict[str, EdgeGpu] = {}
        # price rows exactly as shipped, for the cost model's "basis" text
        self.price_rows: dict[tuple[str, ...], PriceRow] = {}
        self._load()

    # -- loading -------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        path = self.data_dir / name
        if not path.exists():
            raise CatalogError(f"{name}: file not found in {self.data_dir}.")
        return path

    def _load(self) -> None:
        self._load_accelerators()
        self._load_clouds()
        self._load_regions()
        self._load_aws_types()
        self._load_gcp_types()
        self._load_aws_offerings()
        self._load_gcp_offerings()
        self._load_serverless()
        self._load_storage()
        self._load_engine_starts()
        self._load_batch_limits()
        self._load_egress()
        self._load_edge_gpus()

    def _load_accelerators(self) -> None:
        rows = _Rows(self._path("accelerators.csv"), ["name", "memory_gib", "bf16_dense_tflops", "interconnect"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            name = rows.text(line, r, "name")
            _unique(seen, (name,), rows, line)
            self.accelerators[name] = Accelerator(
                name=name,
                vendor=rows.text(line, r, "vendor"),
                memory_gib=rows.number(line, r, "memory_gib"),
                bf16_dense_tflops=rows.number(line, r, "bf16_dense_tflops"),
                interconnect=rows.choice(line, r, "interconnect", ("nvlink", "pcie")),
                mig_profiles=tuple(p for p in r.get("mig_profiles", "").split(";") if p),
                gcp_accelerator_type=r.get("gcp_accelerator_type") or None,
            )
            rows.text(line, r, "source")
            rows.text(line, r, "fetched_at")

    def _load_clouds(self) -> None:
        rows = _Rows(self._path("clouds.csv"), ["cloud", "spot_notice_seconds", "node_provision_seconds"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            cloud = rows.choice(line, r, "cloud", ("aws", "gcp", "kubernetes"))
            _unique(seen, (cloud,), rows, line)
            self.clouds[cloud] = CloudFacts(
                cloud=cloud,  # type: ignore[arg-type]
                spot_notice_seconds=rows.integer(line, r, "spot_notice_seconds", minimum=1),
                notice_poll_seconds=rows.integer(line, r, "notice_poll_seconds", minimum=1),
                notice_mechanism=rows.text(line, r, "notice_mechanism"),
                node_provision_seconds=rows.integer(line, r, "node_provision_seconds"),
            )
            rows.text(line, r, "source")

    def _load_regions(self) -> None:
        rows = _Rows(self._path("regions.csv"), ["cloud", "region", "zones", "jurisdiction"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            cloud = rows.choice(line, r, "cloud", ("aws", "gcp"))
            name = rows.text(line, r, "region")
            _unique(seen, (cloud, name), rows, line)
            self.regions[(cloud, name)] = Region(
                cloud=cloud,  # type: ignore[arg-type]
                name=name,
                zones=tuple(rows.text(line, r, "zones").split(";")),
                jurisdiction=rows.choice(line, r, "jurisdiction", ("us", "eu", "apac")),
                latitude=rows.number(line, r, "latitude", positive=False),
                longitude=rows.number(line, r, "longitude", positive=False),
            )

    def _check_accelerator(self, rows: _Rows, line: int, name: str) -> None:
        if name not in self.accelerators:
            raise rows.fail(line, f"unknown accelerator {name!r}. Add it to accelerators.csv or use one of {sorted(self.accelerators)}.")

    def _load_aws_types(self) -> None:
        rows = _Rows(self._path("aws_instance_types.csv"), ["instance_type", "accelerator", "gpus", "vcpus", "memory_gib"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            name = rows.text(line, r, "instance_type")
            _unique(seen, (name,), rows, line)
            service = rows.choice(line, r, "service", ("ec2", "sagemaker"))
            # A blank accelerator marks a CPU-only EC2 type (system nodes), which must say gpus=0.
            cpu_only = service == "ec2" and not r.get("accelerator")
            acc = "" if cpu_only else rows.text(line, r, "accelerator")
            if not cpu_only:
                self._check_accelerator(rows, line, acc)
            gpus = rows.integer(line, r, "gpus", minimum=0 if cpu_only else 1)
            if cpu_only and gpus != 0:
                raise rows.fail(line, f"column 'gpus' = {gpus} on a row with no accelerator. Name the accelerator, or set gpus to 0 for a CPU-only type.")
            self.instance_types[("aws", name)] = InstanceType(
                cloud="aws",
                name=name,
                accelerator=acc,
                gpus=gpus,
                vcpus=rows.integer(line, r, "vcpus", minimum=1),
                memory_gib=rows.number(line, r, "memory_gib"),
                efa_interfaces=rows.integer(line, r, "efa_interfaces"),
                service=service,
            )

    def _load_gcp_types(self) -> None:
        rows = _Rows(self._path("gcp_machine_types.csv"), ["machine_type", "accelerator", "gpus", "vcpus", "memory_gib"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            name = rows.text(line, r, "machine_type")
            _unique(seen, (name,), rows, line)
            acc = rows.text(line, r, "accelerator")
            self._check_accelerator(rows, line, acc)
            if not self.accelerators[acc].gcp_accelerator_type:
                raise rows.fail(line, f"accelerator {acc!r} has no gcp_accelerator_type in accelerators.csv. Add it.")
            self.instance_types[("gcp", name)] = InstanceType(
                cloud="gcp",
                name=name,
                accelerator=acc,
                gpus=rows.integer(line, r, "gpus", minimum=1),
                vcpus=rows.integer(line, r, "vcpus", minimum=1),
                memory_gib=rows.number(line, r, "memory_gib"),
                efa_interfaces=1 if rows.choice(line, r, "rdma", ("true", "false")) == "true" else 0,
                service="compute",
            )

    def _zones(self, rows: _Rows, line: int, cloud: str, region: str, raw: str) -> tuple[str, ...]:
        known = self.regions.get((cloud, region))
        if known is None:
            raise rows.fail(line, f"unknown {cloud} region {region!r}. Add it to regions.csv.")
        zones = tuple(z for z in raw.split(";") if z)
        bad = [z for z in zones if z not in known.zones]
        if bad or not zones:
            raise rows.fail(line, f"zones {bad or raw!r} are not zones of {region} ({list(known.zones)}).")
        return zones

    def _read_offering_zones(self, cloud: str, file: str, type_col: str) -> dict[tuple[str, str], tuple[str, ...]]:
        rows = _Rows(self._path(file), [type_col, "region", "zones"])
        seen: dict[tuple[str, ...], int] = {}
        out: dict[tuple[str, str], tuple[str, ...]] = {}
        for line, r in rows:
            name = rows.text(line, r, type_col)
            if (cloud, name) not in self.instance_types:
                raise rows.fail(line, f"unknown {cloud} type {name!r}. Add it to the {cloud} types file first.")
            region = rows.text(line, r, "region")
            _unique(seen, (name, region), rows, line)
            out[(name, region)] = self._zones(rows, line, cloud, region, rows.text(line, r, "zones"))
        return out

    def _load_aws_offerings(self) -> None:
        zones = self._read_offering_zones("aws", "aws_offerings.csv", "instance_type")
        rows = _Rows(self._path("aws_prices.csv"), ["instance_type", "region", "capacity", "usd_per_hour", "source", "fetched_at"])
        prices: dict[tuple[str, str], dict[Capacity, float]] = {}
        lines: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            name, region = rows.text(line, r, "instance_type"), rows.text(line, r, "region")
            cap = rows.choice(line, r, "capacity", CAPACITIES)
            _unique(lines, (name, region, cap), rows, line)
            if (name, region) not in zones:
                raise rows.fail(line, f"{name} in {region} has a price but no row in aws_offerings.csv. Add the offering or delete the price.")
            usd = rows.price(line, r, "usd_per_hour")
            prices.setdefault((name, region), {})[cap] = usd  # type: ignore[index]
            self.price_rows[("aws", name, region, cap)] = PriceRow(usd, rows.text(line, r, "source"), rows.text(line, r, "fetched_at"))
            self._check_spot(rows, line, prices[(name, region)], f"{name} in {region}")
        for (name, region), zs in zones.items():
            p = prices.get((name, region), {})
            if "on_demand" not in p:
                raise CatalogError(f"aws_prices.csv: no on_demand price for {name} in {region}. Add one.")
            it = self.instance_types[("aws", name)]
            self.offerings[("aws", name, region)] = Offering("aws", it, region, zs, dict(p))

    def _check_spot(self, rows: _Rows, line: int, p: dict[Capacity, float], what: str) -> None:
        if "spot" in p and "on_demand" in p and p["spot"] > p["on_demand"]:
            raise rows.fail(
                line,
                f"spot price {p['spot']} for {what} is above its on-demand price {p['on_demand']}. "
                "Spot is never dearer than on-demand: fix the price.",
            )

    def _load_gcp_offerings(self) -> None:
        zones = self._read_offering_zones("gcp", "gcp_offerings.csv", "machine_type")
        rows = _Rows(self._path("gcp_prices.csv"), ["sku_kind", "name", "region", "capacity", "usd_per_hour", "source", "fetched_at"])
        host: dict[tuple[str, str], dict[Capacity, float]] = {}
        gpu: dict[tuple[str, str], dict[Capacity, float]] = {}
        lines: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            kind = rows.choice(line, r, "sku_kind", ("machine", "accelerator"))
            name, region = rows.text(line, r, "name"), rows.text(line, r, "region")
            cap = rows.choice(line, r, "capacity", ("on_demand", "spot"))
            _unique(lines, (kind, name, region, cap), rows, line)
            if ("gcp", region) not in self.regions:
                raise rows.fail(line, f"unknown gcp region {region!r}. Add it to regions.csv.")
            usd = rows.price(line, r, "usd_per_hour")
            if kind == "machine":
                if ("gcp", name) not in self.instance_types:
                    raise rows.fail(line, f"unknown machine type {name!r}. Add it to gcp_machine_types.csv.")
                table = host
            else:
                self._check_accelerator(rows, line, name)
                table = gpu
            table.setdefault((name, region), {})[cap] = usd  # type: ignore[index]
            self.price_rows[("gcp", kind, name, region, cap)] = PriceRow(usd, rows.text(line, r, "source"), rows.text(line, r, "fetched_at"))
            self._check_spot(rows, line, table[(name, region)], f"{kind} {name} in {region}")
        for (name, region), zs in zones.items():
            it = self.instance_types[("gcp", name)]
            h, g = host.get((name, region), {}), gpu.get((it.accelerator, region), {})
            total = {cap: h[cap] + it.gpus * g[cap] for cap in ("on_demand", "spot") if cap in h and cap in g}
            if "on_demand" not in total:
                raise CatalogError(f"gcp_prices.csv: no on_demand host and GPU price for {name} in {region}. Add both rows.")
            self.offerings[("gcp", name, region)] = Offering("gcp", it, region, zs, total)  # type: ignore[arg-type]

    def _load_serverless(self) -> None:
        rows = _Rows(self._path("serverless_prices.csv"), ["cloud", "service", "unit", "region", "usd", "source", "fetched_at"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            key = (rows.choice(line, r, "cloud", ("aws", "gcp")), rows.text(line, r, "service"), rows.text(line, r, "unit"), rows.text(line, r, "region"))
            _unique(seen, key, rows, line)
            if (key[0], key[3]) not in self.regions:
                raise rows.fail(line, f"unknown {key[0]} region {key[3]!r}. Add it to regions.csv.")
            self.serverless[key] = ServerlessRate(
                key[0], key[1], key[2], key[3], rows.price(line, r, "usd"), rows.text(line, r, "source"), rows.text(line, r, "fetched_at")  # type: ignore[arg-type]
            )

    def _date(self, rows: _Rows, line: int, r: dict[str, str]) -> str:
        raw = rows.text(line, r, "fetched_at")
        try:
            date.fromisoformat(raw)
        except ValueError:
            raise rows.fail(line, f"column 'fetched_at' = {raw!r} is not a YYYY-MM-DD date. Write the day the fact was read.") from None
        return raw

    def _load_storage(self) -> None:
        rows = _Rows(self._path("storage_bandwidth.csv"), ["path", "medium", "gib_per_second", "source", "fetched_at"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            path = rows.text(line, r, "path")
            _unique(seen, (path,), rows, line)
            rate = rows.number(line, r, "gib_per_second")
            if rate > MAX_PLAUSIBLE_GIB_PER_SECOND:
                raise rows.fail(line, f"column 'gib_per_second' = {rate:g} is above {MAX_PLAUSIBLE_GIB_PER_SECOND:g} GiB/s (faster than PCIe 5.0 x16). Check the unit: GiB per second.")
            self.storage[path] = StorageBandwidth(path, rows.text(line, r, "medium"), rate, rows.text(line, r, "source"), self._date(rows, line, r))

    def _load_engine_starts(self) -> None:
        rows = _Rows(self._path("serving_runtimes.csv"), ["runtime", "engine_start_seconds", "source", "fetched_at"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            runtime = rows.choice(line, r, "runtime", SERVING_RUNTIMES)
            seconds = rows.integer(line, r, "engine_start_seconds", minimum=1)
            _unique(seen, (runtime,), rows, line)
            self.engine_starts[runtime] = EngineStart(runtime, seconds, rows.text(line, r, "source"), self._date(rows, line, r))
        missing = [k for k in SERVING_RUNTIMES if k not in self.engine_starts]
        if missing:
            raise CatalogError(f"serving_runtimes.csv: no row for {missing}. Add one per runtime.")

    def _load_batch_limits(self) -> None:
        rows = _Rows(self._path("batch_limits.csv"), ["platform", "limit", "value", "unit", "source", "fetched_at"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            platform, limit = rows.text(line, r, "platform"), rows.text(line, r, "limit")
            _unique(seen, (platform, limit), rows, line)
            unit = rows.choice(line, r, "unit", ("seconds", "tasks", "attempts", "instances", "megabytes", "gpus"))
            value = rows.number(line, r, "value", positive=unit != "gpus")
            self.batch_limits[(platform, limit)] = BatchLimit(platform, limit, value, unit, rows.text(line, r, "source"), self._date(rows, line, r))

    def _load_egress(self) -> None:
        rows = _Rows(self._path("egress.csv"), ["cloud", "scope", "usd_per_gib", "gib_per_second", "source", "fetched_at"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            cloud = rows.choice(line, r, "cloud", ("aws", "gcp", "kubernetes"))
            scope = rows.choice(line, r, "scope", EGRESS_SCOPES)
            _unique(seen, (cloud, scope), rows, line)
            usd = rows.number(line, r, "usd_per_gib", positive=False)
            if not 0.0 <= usd < 1.0:
                raise rows.fail(line, f"column 'usd_per_gib' = {usd:g} is not a plausible egress price (clouds charge cents per GiB). Check the unit: USD per GiB.")
            rate = rows.number(line, r, "gib_per_second")
            if rate > MAX_PLAUSIBLE_GIB_PER_SECOND:
                raise rows.fail(line, f"column 'gib_per_second' = {rate:g} is above {MAX_PLAUSIBLE_GIB_PER_SECOND:g} GiB/s. Check the unit: GiB per second.")
            self.egress_rows[(cloud, scope)] = Egress(cloud, scope, usd, rate, rows.text(line, r, "source"), self._date(rows, line, r))  # type: ignore[arg-type]
        missing = [(c, s) for c in ("aws", "gcp", "kubernetes") for s in EGRESS_SCOPES if (c, s) not in self.egress_rows]
        if missing:
            raise CatalogError(f"egress.csv: no row for {missing}. Add one per (cloud, scope).")

    def _load_edge_gpus(self) -> None:
        rows = _Rows(self._path("edge_gpus.csv"), ["name", "architecture", "compute_capability", "tensorrt", "source", "fetched_at"])
        seen: dict[tuple[str, ...], int] = {}
        for line, r in rows:
            name = rows.text(line, r, "name")
            _unique(seen, (name,), rows, line)
            tensorrt = rows.choice(line, r, "tensorrt", ("true", "false")) == "true"
            note = r.get("note", "")
            if not tensorrt and not note:
                raise rows.fail(line, "column 'note' is blank on a GPU without TensorRT. Say why TensorRT does not run on it.")
            self.edge_gpus[name] = EdgeGpu(name, rows.text(line, r, "architecture"), rows.text(line, r, "compute_capability"), tensorrt, note,
                                           rows.text(line, r, "source"), self._date(rows, line, r))

    # -- lookups -------------------------------------------------------------------------------
    def accelerator(self, name: str) -> Accelerator:
        """The accelerator by canonical name; KeyError lists the known names."""
        try:
            return self.accelerators[name]
        except KeyError:
            raise KeyError(f"unknown accelerator {name!r}; known: {', '.join(sorted(self.accelerators))}") from None

    def cloud(self, cloud: str) -> CloudFacts:
        return self.clouds[cloud]

    def notice_seconds(self, cloud: str) -> int:
        """The spot/preemption notice window of a cloud, in seconds."""
        return self.clouds[cloud].spot_notice_seconds

    def region(self, cloud: str, name: str) -> Region | None:
        return self.regions.get((cloud, name))

    def region_names(self, cloud: str) -> list[str]:
        return sorted(r for (c, r) in self.regions if c == cloud)

    def instance_type(self, cloud: str, name: str) -> InstanceType | None:
        return self.instance_types.get((cloud, name))

    def find_offerings(
        self,
        cloud: str | None = None,
        accelerator: str | None = None,
        count: int | None = None,
        region: str | None = None,
        capacity: Capacity | None = None,
        service: str | None = None,
    ) -> list[Offering]:
        """Offerings matching every given filter, cheapest first (by on-demand, or by ``capacity``).

        GPU offerings only, unless ``count=0`` asks for CPU-only types (system nodes)."""
        found = [
            o
            for (c, _, r), o in self.offerings.items()
            if (cloud is None or c == cloud)
            and (accelerator is None or o.instance_type.accelerator == accelerator)
            and (o.instance_type.gpus == count if count is not None else o.instance_type.gpus > 0)
            and (region is None or r == region)
            and (capacity is None or capacity in o.usd_per_hour)
            and (service is None or o.instance_type.service == service)
        ]
        return sorted(found, key=lambda o: (o.usd_per_hour.get(capacity or "on_demand", math.inf), o.instance_type.name, o.region))

    def offering(self, cloud: str, instance_type: str, region: str) -> Offering | None:
        return self.offerings.get((cloud, instance_type, region))

    def price(self, cloud: str, instance_type: str, region: str, capacity: Capacity = "on_demand") -> float | None:
        """Whole-node $/h of an instance type in a region, or None when not offered/priced."""
        o = self.offerings.get((cloud, instance_type, region))
        return None if o is None else o.price(capacity)

    def gpu_counts(self, cloud: str, accelerator: str, service: str | None = None) -> list[int]:
        """GPU counts per node that a cloud offers for an accelerator (any region)."""
        return sorted(
            {it.gpus for (c, _), it in self.instance_types.items() if c == cloud and it.accelerator == accelerator and (service is None or it.service == service)}
        )

    def serverless_rate(self, cloud: str, service: str, unit: str, region: str) -> ServerlessRate | None:
        return self.serverless.get((cloud, service, unit, region))

    def bandwidth(self, path: str) -> StorageBandwidth:
        """Throughput of a weight/image path (storage_bandwidth.csv); KeyError lists the known paths."""
        try:
            return self.storage[path]
        except KeyError:
            raise KeyError(f"unknown storage path {path!r}; known: {', '.join(sorted(self.storage))}") from None

    def batch_limit(self, platform: str, limit: str) -> BatchLimit:
        """A batch platform's hard limit (batch_limits.csv); KeyError lists the known ones."""
        try:
            return self.batch_limits[(platform, limit)]
        except KeyError:
            raise KeyError(f"no batch limit {limit!r} for {platform!r}; known: {sorted(self.batch_limits)}") from None

    def egress_scope(self, src_cloud: str, src_region: str | None, dst_cloud: str, dst_region: str | None) -> str:
        """How far data goes from (cloud, region) to (cloud, region): one of ``EGRESS_SCOPES``."""
        if src_cloud != dst_cloud:
            return "other-cloud"
        if src_region == dst_region:
            return "same-region"
        a, b = self.regions.get((src_cloud, src_region or "")), self.regions.get((dst_cloud, dst_region or ""))
        if a is not None and b is not None and a.jurisdiction == b.jurisdiction:
            return "same-jurisdiction"
        return "other-jurisdiction"

    def egress(self, src_cloud: str, src_region: str | None, dst_cloud: str, dst_region: str | None) -> Egress:
        """Price and throughput of moving data from a source region to a destination region (egress.csv)."""
        cloud = src_cloud if src_cloud in ("aws", "gcp") else "kubernetes"
        return self.egress_rows[(cloud, self.egress_scope(src_cloud, src_region, dst_cloud, dst_region))]

    def engine_start(self, runtime: str) -> EngineStart:
        """Engine start of a serving runtime (serving_runtimes.csv)."""
        return self.engine_starts[runtime]

    def edge_gpu(self, name: str) -> EdgeGpu | None:
        """An edge GPU by the name a site declares (edge_gpus.csv), or None when unknown."""
        return self.edge_gpus.get(name)

    def gpu_memory_gib(self, accelerator: str) -> float:
        return self.accelerator(accelerator).memory_gib

    def gpu_peak_tflops(self, accelerator: str) -> float:
        """bf16 dense peak, the MFU denominator."""
        return self.accelerator(accelerator).bf16_dense_tflops


@functools.lru_cache(maxsize=4)
def load_catalog(data_dir: str | None = None) -> Catalog:
    """The catalog from ``data_dir`` (default: the shipped files), loaded once per process."""
    return Catalog(Path(data_dir) if data_dir else DATA_DIR)


__all__ = [
    "CAPACITIES",
    "HOURS_PER_MONTH",
    "Accelerator",
    "BatchLimit",
    "Capacity",
    "Catalog",
    "CatalogError",
    "Cloud",
    "CloudFacts",
    "EdgeGpu",
    "EngineStart",
    "InstanceType",
    "Offering",
    "PriceRow",
    "Region",
    "ServerlessRate",
    "StorageBandwidth",
    "load_catalog",
]
