"""EdgeDeployment's planner: args + catalog -> a frozen ``EdgePlan``, or one error listing every problem.

Checks every input (digests, URIs, waves, runtimes, bandwidths, what each site kind needs and what
its backend lacks), assigns sites to waves, resolves each site's runtime, and plans per site and
per wave: bytes to transfer (model plus image layers the site has not cached, times its devices),
time at the declared bandwidth, egress cost at the catalog's price, the good-link window the
pre-stage fits in, and the disconnect contract (cache, store-and-forward buffer, credentials)
against the maximum outage. Pure: reads only the catalog.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

from components.catalog import Catalog, load_catalog
from components.edge.spec import (
    DEFAULT_CACHE_GIB,
    DEFAULT_GATE_MIN_EXAMPLES,
    DEFAULT_GATE_TOP_K,
    DEFAULT_MAX_OUTAGE_HOURS,
    DEFAULT_NAMESPACE,
    DEFAULT_PORT,
    DEFAULT_RESULTS_BUFFER_MIB,
    DEFAULT_RESULTS_KIB_PER_SECOND,
    FEATURES,
    MODEL_SCHEMES,
    SITE_KINDS,
    EdgeDeploymentArgs,
    EdgePlan,
    GatePlan,
    ImagePlan,
    ModelPlan,
    OfflinePlan,
    SitePlan,
    TransferPlan,
    WavePlan,
)
from components.errors import Problems
from components.features import Feature

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
_ECR = re.compile(r"\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com")
_AR = re.compile(r"^(?:oci://)?([a-z0-9-]+)-docker\.pkg\.dev/")
_KEYS = set(EdgeDeploymentArgs.__annotations__)
MIB = 1024 * 1024


def _num(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _model(p: Problems, path: str, m: Any) -> ModelPlan | None:
    if not isinstance(m, dict):
        p.add(path, m, "must be a model: uri, digest and size_mib.", "give {'uri': 'oci://...', 'digest': 'sha256:...', 'size_mib': 12}.")
        return None
    uri, digest, size = m.get("uri"), m.get("digest"), m.get("size_mib")
    ok = True
    if not isinstance(uri, str) or not uri.startswith(MODEL_SCHEMES):
        p.add(f"{path}.uri", uri, f"is not a URI gpuplane can ship ({', '.join(MODEL_SCHEMES)}).", "give the ONNX file's OCI artifact or object-store URI.")
        ok = False
    if digest is None:
        p.add(f"{path}.digest", None, "is missing: an unpinned model can change between waves, and a site cannot check what it loaded.",
              "give the file's sha256 (sha256sum model.onnx, or the OCI artifact's layer digest) as 'sha256:<64 hex>'.")
        ok = False
    elif not isinstance(digest, str) or not _DIGEST.match(digest):
        p.add(f"{path}.digest", digest, "is not 'sha256:' followed by 64 lowercase hex digits.", "give the file's sha256 digest.")
        ok = False
    elif isinstance(uri, str) and "@sha256:" in uri and not uri.endswith(digest):
        p.add(f"{path}.uri", uri, f"pins another digest than {path}.digest ({digest}).", "make them the same build.")
        ok = False
    if not _num(size) or size <= 0:
        p.add(f"{path}.size_mib", size, "must be a positive number of MiB.", "give the ONNX file's size (ls -l model.onnx / 1048576).")
        ok = False
    quant = m.get("quantization", "none")
    if quant not in ("none", "int8"):
        p.add(f"{path}.quantization", quant, "is not 'none' or 'int8'.", "use one of them.")
        ok = False
    name = m.get("name", "recommender")
    if not isinstance(name, str) or not _DNS.match(name):
        p.add(f"{path}.name", name, "must be a DNS label.", "give e.g. 'recommender'.")
        ok = False
    return ModelPlan(uri, digest, float(size), quant, name) if ok else None  # type: ignore[arg-type]


def _image(p: Problems, path: str, im: Any) -> ImagePlan | None:
    if not isinstance(im, dict) or not isinstance(im.get("ref"), str):
        p.add(path, im, "must be an image: ref (and layers or size_mib).", "give {'ref': 'registry/repo@sha256:...', 'size_mib': 180}.")
        return None
    ref = im["ref"]
    if "@sha256:" not in ref or not _DIGEST.match(ref.split("@", 1)[1]):
        p.add(f"{path}.ref", ref, "is not pinned by digest; a tag can move between waves.", "give 'registry/repo@sha256:<64 hex>' (crane digest IMAGE).")
        return None
    layers = im.get("layers")
    if layers is not None:
        out = []
        for i, layer in enumerate(layers if isinstance(layers, list) else [None]):
            d, s = (layer or {}).get("digest"), (layer or {}).get("size_mib")
            if not isinstance(d, str) or not _DIGEST.match(d) or not _num(s) or s <= 0:
                p.add(f"{path}.layers[{i}]", layer, "needs a 'sha256:' digest and a positive size_mib.", "copy them from the image manifest.")
                return None
            out.append((d, float(s)))
        return ImagePlan(ref, tuple(out))
    size = im.get("size_mib", 0.0)
    if not _num(size) or size < 0:
        p.add(f"{path}.size_mib", size, "must be a number of MiB, at least 0.", "give the compressed image size.")
        return None
    return ImagePlan(ref, ((ref.split("@", 1)[1], float(size)),) if size else ())


def _gate(p: Problems, path: str, g: Any, default: GatePlan | None, model: ModelPlan | None) -> GatePlan | None:
    if g is None:
        return default
    if not isinstance(g, dict):
        p.add(path, g, "must be a gate: p99_latency_ms and min_agreement.", "give {'p99_latency_ms': 50, 'min_agreement': 0.95}.")
        return None
    ok = True
    p99, agree = g.get("p99_latency_ms"), g.get("min_agreement")
    if not _num(p99) or p99 <= 0:
        p.add(f"{path}.p99_latency_ms", p99, "must be a positive number of milliseconds.", "give the on-device p99 bound, e.g. 50.")
        ok = False
    if not _num(agree) or not 0 < agree <= 1:
        p.add(f"{path}.min_agreement", agree, "must be a fraction in (0, 1].", "give e.g. 0.95 (95% top-k agreement with the cloud model).")
        ok = False
    top_k, n = g.get("top_k", DEFAULT_GATE_TOP_K), g.get("min_examples", DEFAULT_GATE_MIN_EXAMPLES)
    if not _int(top_k) or top_k < 1:
        p.add(f"{path}.top_k", top_k, "must be a whole number of at least 1.", f"leave it unset for {DEFAULT_GATE_TOP_K}.")
        ok = False
    if not _int(n) or n < 1:
        p.add(f"{path}.min_examples", n, "must be a whole number of at least 1.", f"leave it unset for {DEFAULT_GATE_MIN_EXAMPLES}.")
        ok = False
    sample = g.get("sample_uri") or (f"{model.uri.split('@', 1)[0]}.gate-sample" if model else "")
    if not ok:
        return None
    return GatePlan(float(p99), float(agree), sample, top_k, n)  # type: ignore[arg-type]  # both checked by _num above


def _source(args: EdgeDeploymentArgs, model: ModelPlan | None) -> tuple[str, str] | None:
    cloud, region = args.get("source_cloud"), args.get("source_region")
    uri = model.uri if model else ""
    if cloud is None:
        cloud = "aws" if uri.startswith("s3://") or _ECR.search(uri) else "gcp" if uri.startswith("gs://") or _AR.match(uri) else None
    if region is None:
        m = _ECR.search(uri) or _AR.match(uri)
        region = m.group(1) if m else None
    return (cloud, region) if cloud and region else None


def _window(v: Any) -> float | None:
    m = _WINDOW.match(v) if isinstance(v, str) else None
    if m is None:
        return None
    start, end = int(m.group(1)) * 60 + int(m.group(2)), int(m.group(3)) * 60 + int(m.group(4))
    minutes = (end - start) % (24 * 60) or 24 * 60
    return minutes / 60


def _check_site(p: Problems, path: str, s: dict[str, Any], catalog: Catalog, preferred: str, names: set[str]) -> tuple[str, str] | None:
    """Validate one site; return (runtime, reason) or None when it has problems that stop planning it."""
    ok = True
    name, kind = s.get("name"), s.get("kind")
    if not isinstance(name, str) or not _DNS.match(name):
        p.add(f"{path}.name", name, "must be a DNS label of at most 40 characters.", "give e.g. 'plant-a-line-1'.")
        ok = False
    elif name in names:
        p.add(f"{path}.name", name, "is used by another site.", "give every site its own name.")
        ok = False
    else:
        names.add(name)
    if kind not in SITE_KINDS:
        p.add(f"{path}.kind", kind, f"is not one of {list(SITE_KINDS)}.", "say how the site is reached.")
        return None
    needs = {"kubernetes": ("kubeconfig",), "fleet": ("kubeconfig", "cluster"), "kubeedge": ("kubeconfig", "node_group"),
             "openyurt": ("kubeconfig", "node_group"), "greengrass": ("thing_group_arn",)}[kind]
    for key in needs:
        if not s.get(key):
            p.add(f"{path}.{key}", None, f"is required for a {kind} site.", f"give the site's {key.replace('_', ' ')}.")
            ok = False
    for key in ("kubeconfig", "cluster", "node_group", "thing_group_arn"):
        if s.get(key) and key not in needs:
            p.add(f"{path}.{key}", "(set)", f"is not used by a {kind} site.", "remove it, or change the site's kind.")
            ok = False
    bw = s.get("bandwidth_mbps")
    if not _num(bw) or bw <= 0:
        p.add(f"{path}.bandwidth_mbps", bw, "must be a positive number of Mbit/s: a site with no bandwidth can never receive the model.",
              "give the site's sustained downlink, e.g. 20; for a site that is offline now, keep its bandwidth and let max_outage_hours cover the outage.")
        ok = False
    window = s.get("link_window_utc")
    if window is not None and _window(window) is None:
        p.add(f"{path}.link_window_utc", window, "is not 'HH:MM-HH:MM' (UTC).", "give e.g. '01:00-05:00'.")
        ok = False
    wbw = s.get("window_bandwidth_mbps")
    if wbw is not None and (not _num(wbw) or wbw <= 0 or window is None):
        p.add(f"{path}.window_bandwidth_mbps", wbw, "must be a positive number of Mbit/s and needs link_window_utc.", "give both, or neither.")
        ok = False
    for key, minimum in (("devices", 1), ("replicas", 1), ("memory_mib", 64)):
        v = s.get(key)
        if v is not None and (not _int(v) or v < minimum):
            p.add(f"{path}.{key}", v, f"must be a whole number of at least {minimum}.", "leave it unset for the default.")
            ok = False
    for key in ("cpu", "cache_gib", "results_buffer_mib", "results_kib_per_second", "credential_validity_hours", "max_outage_hours"):
        v = s.get(key)
        if v is not None and (not _num(v) or v <= 0):
            p.add(f"{path}.{key}", v, "must be a positive number.", "leave it unset for the default.")
            ok = False
    gpu_name, runtime = s.get("gpu"), s.get("runtime", "auto")
    gpu = catalog.edge_gpu(gpu_name) if gpu_name else None
    if gpu_name and gpu is None:
        p.add(f"{path}.gpu", gpu_name, "is not a GPU in the catalog (components/catalog/data/edge_gpus.csv).",
              f"use one of {sorted(catalog.edge_gpus)}, or add a row with its architecture and source.")
        ok = False
    if runtime not in ("auto", "onnxruntime", "tensorrt"):
        p.add(f"{path}.runtime", runtime, "is not 'auto', 'onnxruntime' or 'tensorrt'.", "use one of them.")
        return None
    support = FEATURES[kind]
    if runtime == "tensorrt":
        if not gpu_name:
            p.add(f"{path}.runtime", "tensorrt", f"needs an NVIDIA GPU, and site {name!r} declares none.",
                  "set the site's gpu (e.g. 'jetson-orin-nano'), or use runtime 'onnxruntime' / 'auto' (ONNX Runtime on the CPU).")
            ok = False
        elif gpu is not None and not gpu.tensorrt:
            p.add(f"{path}.runtime", "tensorrt", f"does not run on {gpu.name} ({gpu.architecture}): {gpu.note}.", "use runtime 'onnxruntime' or 'auto'.")
            ok = False
        p.extend(support.check([(Feature.EDGE_TENSORRT, f"{path}.runtime", "tensorrt")]))
    if not ok:
        return None
    if runtime == "onnxruntime" or (runtime == "auto" and preferred == "onnxruntime"):
        return "onnxruntime", "ONNX Runtime on the CPU" + (" (asked for)" if runtime == "onnxruntime" else " (the deployment's runtime)")
    if runtime == "tensorrt":
        return "tensorrt", f"TensorRT on {gpu_name} (asked for)"
    if gpu is None:
        return "onnxruntime", "ONNX Runtime on the CPU: fallback from TensorRT, the site declares no NVIDIA GPU"
    if not gpu.tensorrt:
        return "onnxruntime", f"ONNX Runtime on the CPU: fallback from TensorRT, {gpu.name} ({gpu.architecture}) cannot run it: {gpu.note}"
    if not support.supports(Feature.EDGE_TENSORRT):
        return "onnxruntime", f"ONNX Runtime on the CPU: fallback from TensorRT, {support.implementation}: {support.missing[Feature.EDGE_TENSORRT]}"
    return "tensorrt", f"TensorRT on {gpu.name} ({gpu.architecture}, compute capability {gpu.compute_capability})"


def plan_edge_deployment(name: str, args: EdgeDeploymentArgs, catalog: Catalog | None = None) -> EdgePlan:
    """Validate everything and plan the rollout; raise ``ComponentInputError`` listing every problem."""
    catalog = catalog or load_catalog()
    p = Problems("EdgeDeployment", name)
    for key in sorted(set(args) - _KEYS):
        p.add(key, args[key], "is not an argument of EdgeDeployment.", f"use one of {sorted(_KEYS)}.")  # type: ignore[literal-required]
    if not isinstance(name, str) or not _DNS.match(name):
        p.add("name", name, "must be a DNS label of at most 40 characters (it names objects on every site).", "rename the resource.")
    model = _model(p, "model", args.get("model"))
    previous = _model(p, "previous_model", args["previous_model"]) if args.get("previous_model") is not None else None
    if model and previous and model.digest == previous.digest:
        p.add("previous_model.digest", previous.digest, "is the new model's digest: nothing would change and a rollback would keep the same model.", "give the model sites run now.")
    image = _image(p, "image", args.get("image"))
    trt_image = _image(p, "tensorrt_image", args["tensorrt_image"]) if args.get("tensorrt_image") is not None else None
    preferred = args.get("runtime", "onnxruntime")
    if preferred not in ("onnxruntime", "tensorrt"):
        p.add("runtime", preferred, "is not 'onnxruntime' or 'tensorrt'.", "use one of them.")
        preferred = "onnxruntime"
    max_outage = args.get("max_outage_hours", DEFAULT_MAX_OUTAGE_HOURS)
    if not _num(max_outage) or max_outage <= 0:
        p.add("max_outage_hours", max_outage, "must be a positive number of hours.", f"leave it unset for {DEFAULT_MAX_OUTAGE_HOURS:g}.")
        max_outage = DEFAULT_MAX_OUTAGE_HOURS
    namespace, port = args.get("namespace", DEFAULT_NAMESPACE), args.get("port", DEFAULT_PORT)
    if not isinstance(namespace, str) or not _DNS.match(namespace):
        p.add("namespace", namespace, "must be a DNS label.", f"leave it unset for {DEFAULT_NAMESPACE!r}.")
    if not _int(port) or not 1024 <= port <= 65535:
        p.add("port", port, "must be a port from 1024 to 65535.", f"leave it unset for {DEFAULT_PORT}.")

    # -- sites
    sites: list[tuple[str, str, dict[str, Any], float, tuple[str, str]]] = []  # (group, region, site, max outage, runtime)
    names: set[str] = set()
    groups: Any = args.get("groups")
    if not isinstance(groups, list) or not groups:
        p.add("groups", groups, "must list at least one group of sites.", "give [{'name': 'plant-a', 'sites': [...]}].")
        groups = []
    for gi, g in enumerate(groups):
        gpath = f"groups[{gi}]"
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not isinstance(g.get("sites"), list) or not g["sites"]:
            p.add(gpath, g, "must have a name and at least one site.", "give {'name': 'plant-a', 'sites': [...]}.")
            continue
        g_outage = g.get("max_outage_hours", max_outage)
        if not _num(g_outage) or g_outage <= 0:
            p.add(f"{gpath}.max_outage_hours", g_outage, "must be a positive number of hours.", "leave it unset for the deployment's.")
            g_outage = max_outage
        for si, s in enumerate(g["sites"]):
            spath = f"{gpath}.sites[{si}]"
            if not isinstance(s, dict):
                p.add(spath, s, "must be a site.", "give {'name': ..., 'kind': ..., 'bandwidth_mbps': ...}.")
                continue
            resolved = _check_site(p, spath, s, catalog, preferred, names)
            if s.get("kind") in SITE_KINDS and model is not None and model.uri.startswith("oci://"):
                p.extend(FEATURES[s["kind"]].check([(Feature.EDGE_OCI_MODEL, "model.uri", model.uri)]))
            elif s.get("kind") == "greengrass" and model is not None and not model.uri.startswith("s3://"):
                p.add("model.uri", model.uri, f"cannot reach greengrass site {s.get('name')!r}: Greengrass artifacts come from s3:// only.",
                      "publish the model to S3 as well, or move the site to another kind.")
            if resolved is not None:
                sites.append((str(g["name"]), str(g.get("region", g["name"])), s, float(s.get("max_outage_hours", g_outage)), resolved))
    if any(r[0] == "tensorrt" for *_, r in sites) and args.get("tensorrt_image") is None:
        trt_sites = [s["name"] for *_, s, _, r in sites if r[0] == "tensorrt"]
        p.add("tensorrt_image", None, f"is required: sites {trt_sites} run TensorRT.", "give the TensorRT edge server image, or set runtime 'onnxruntime'.")

    # -- waves
    rollout = args.get("rollout") or {}
    default_gate = _gate(p, "rollout.gate", rollout.get("gate"), None, model) if rollout.get("gate") is not None else None
    if rollout.get("gate") is None:
        p.add("rollout.gate", None, "is required: every wave is gated on the device.", "give {'p99_latency_ms': 50, 'min_agreement': 0.95}.")
    waves_in = rollout.get("waves")
    if not isinstance(waves_in, list) or not waves_in:
        p.add("rollout.waves", waves_in, "must list at least one wave.", "give e.g. [{'sites': ['canary']}, {'percent': 50}, {'percent': 100}].")
        waves_in = []
    # Every declared site name takes part in the waves, valid or not, so one bad site is one problem.
    order = [s["name"] for g in groups if isinstance(g, dict) and isinstance(g.get("sites"), list)
             for s in g["sites"] if isinstance(s, dict) and isinstance(s.get("name"), str)]
    order = list(dict.fromkeys(order))
    total = len(order)
    assigned: dict[str, int] = {}
    wave_sites: list[list[str]] = []
    cumulative = 0.0
    for wi, w in enumerate(waves_in):
        wpath = f"rollout.waves[{wi}]"
        members: list[str] = []
        valid = False
        w = w if isinstance(w, dict) else {}
        if ("sites" in w) == ("percent" in w):
            p.add(wpath, w, "must give either sites (a canary) or percent.", "give one of them.")
        elif "sites" in w:
            valid = True
            for name_ in w["sites"] if isinstance(w["sites"], list) else [w["sites"]]:
                if name_ not in order:
                    p.add(f"{wpath}.sites", name_, "is not a site of this deployment.", f"use one of {order}.")
                    valid = False
                elif name_ in assigned:
                    p.add(f"{wpath}.sites", name_, f"is already in wave {assigned[name_]}.", "put every site in one wave.")
                else:
                    members.append(name_)
        else:
            pct = w["percent"]
            if not _num(pct) or not 0 < pct <= 100:
                p.add(f"{wpath}.percent", pct, "must be a percentage in (0, 100] of the fleet's sites (cumulative).",
                      "give e.g. 25, then 50, then 100 for the last wave.")
            elif pct < cumulative:
                p.add(f"{wpath}.percent", pct, f"is below the previous wave's {cumulative:g}%: percentages are cumulative.", "give a larger percentage.")
            else:
                valid = True
                cumulative = float(pct)
                target = math.ceil(total * pct / 100 - 1e-9)
                members = [n for n in order if n not in assigned and not any(n in ws for ws in wave_sites)][: max(0, target - len(assigned))]
        if not members and valid and total:
            p.add(wpath, w, "adds no site (the earlier waves already cover its share).", "remove the wave or raise its percent.")
        for n in members:
            assigned[n] = wi + 1
        wave_sites.append(members)
    if total and waves_in and len(assigned) < total and not p:
        missing = [n for n in order if n not in assigned]
        p.add(f"rollout.waves[{len(waves_in) - 1}]", waves_in[-1], f"leaves sites {missing} out of every wave; they would never get the model.",
              "end with a wave of percent 100.")
    promoted = rollout.get("promoted_waves", len(waves_in))
    if not _int(promoted) or not 0 <= promoted <= len(waves_in):
        p.add("rollout.promoted_waves", promoted, f"must be a whole number from 0 to {len(waves_in)} (the number of waves).", "leave it unset to promote every wave.")
        promoted = len(waves_in)
    max_unavail = rollout.get("max_unavailable_percent", 25)
    if not _int(max_unavail) or not 0 <= max_unavail <= 100:
        p.add("rollout.max_unavailable_percent", max_unavail, "must be a whole percentage from 0 to 100.", "leave it unset for 25.")
        max_unavail = 25
    auto_rollback = rollout.get("auto_rollback", True)
    wave_gates = [_gate(p, f"rollout.waves[{i}].gate", (w or {}).get("gate") if isinstance(w, dict) else None, default_gate, model) for i, w in enumerate(waves_in)]
    source = _source(args, model)
    rate = catalog.serverless_rate(source[0], "internet-egress", "gib", source[1]) if source else None
    if source and rate is None:
        p.add("source_region", source[1], f"has no internet egress price for {source[0]} in the catalog.",
              "add a row (cloud, internet-egress, gib, region, usd, source, fetched_at) to components/catalog/data/serverless_prices.csv, or give a priced region.")
    notes: list[str] = []
    plans: list[SitePlan] = []
    if model is not None and image is not None:
        for group, region, site, outage, (runtime, reason) in sites:
            img = trt_image if runtime == "tensorrt" and trt_image else image
            wave = assigned.get(site["name"], 0)
            sp = _site_plan(site, group, region, wave, 0 < wave <= promoted, runtime, reason, img, model, previous, float(outage),
                            rate.usd if rate else None, notes)
            _check_offline(p, _site_path(groups, sp.name), sp, site)
            plans.append(sp)
    p.raise_if_any()
    assert model is not None and image is not None  # reported above otherwise
    if source is None:
        notes.append("transfer cost not priced: the model URI names no cloud region; set source_cloud and source_region")
    if previous is None and auto_rollback:
        notes.append("first rollout (no previous_model): a site whose gate fails has nothing to roll back to, so it serves nothing and reports gate=failed")
    if not image.layers:
        notes.append("image size not declared (image.layers or image.size_mib): transfers count the model only")
    waves: list[WavePlan] = []
    count = 0
    for i, members in enumerate(wave_sites):
        count += len(members)
        in_wave = [sp for sp in plans if sp.wave == i + 1]
        costs = [sp.transfer.cost_usd for sp in in_wave]
        w = waves_in[i] if isinstance(waves_in[i], dict) else {}
        waves.append(WavePlan(
            index=i + 1, name=w.get("name") or f"wave-{i + 1}", sites=tuple(members), percent=round(100 * count / total, 1),
            gate=wave_gates[i], promoted=i + 1 <= promoted,  # type: ignore[arg-type]
            bytes=sum(sp.transfer.bytes for sp in in_wave), seconds=max((sp.transfer.seconds for sp in in_wave), default=0.0),
            cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
            max_unavailable=max(1, len(members) * max_unavail // 100),
        ))
    return EdgePlan(
        name=name, model=model, previous_model=previous, image=image, tensorrt_image=trt_image, runtime=preferred, sites=tuple(plans),
        waves=tuple(waves), promoted_waves=promoted, auto_rollback=bool(auto_rollback), max_unavailable_percent=max_unavail,
        namespace=namespace, port=port, source=source, egress_usd_per_gib=rate.usd if rate else None,
        tags=dict(args.get("tags") or {}), notes=tuple(dict.fromkeys(notes)),
    )


def _check_offline(p: Problems, path: str, sp: SitePlan, site: dict[str, Any]) -> None:
    """The disconnect contract: the site must serve for its whole maximum outage."""
    o = sp.offline
    if o.ok:
        return
    if o.limited_by == "cache":
        p.add(f"{path}.cache_gib", o.cache_gib, f"cannot hold the model, the previous model and the image ({o.cache_needed_gib:.2f} GiB), so the site cannot serve offline.",
              f"give at least {math.ceil(o.cache_needed_gib * 10) / 10:g} GiB.")
    elif o.limited_by == "results-buffer":
        need = o.max_outage_hours * 3600 * _rate(site) / 1024
        p.add(f"{path}.results_buffer_mib", sp.results_buffer_mib,
              f"holds {o.results_buffer_hours:.1f} h of results at {_rate(site):g} KiB/s, less than the maximum outage of {o.max_outage_hours:g} h; results would be dropped.",
              f"give at least {math.ceil(need):d} MiB, or lower max_outage_hours.")
    else:
        p.add(f"{path}.credential_validity_hours", o.credential_hours,
              f"is shorter than the maximum outage of {o.max_outage_hours:g} h; the site cannot renew its certificate while offline.",
              f"issue certificates valid for at least {o.max_outage_hours:g} h, or lower max_outage_hours.")


def _rate(s: dict[str, Any]) -> float:
    return float(s.get("results_kib_per_second", DEFAULT_RESULTS_KIB_PER_SECOND))


def _site_path(groups: list[Any], site: str) -> str:
    for gi, g in enumerate(groups):
        for si, s in enumerate(g.get("sites", []) if isinstance(g, dict) else []):
            if isinstance(s, dict) and s.get("name") == site:
                return f"groups[{gi}].sites[{si}]"
    return site


def _site_plan(s: dict[str, Any], group: str, region: str, wave: int, promoted: bool, runtime: str, reason: str, image: ImagePlan,
               model: ModelPlan, previous: ModelPlan | None, max_outage: float, usd_per_gib: float | None, notes: list[str]) -> SitePlan:
    cached = set(s.get("cached") or ())
    devices = int(s.get("devices", 1))
    items, per_device = [], 0.0
    if model.digest not in cached:
        items.append(f"model {model.size_mib:g} MiB")
        per_device += model.size_mib
    for digest, mib in image.layers:
        if digest not in cached:
            items.append(f"layer {digest[:19]}.. {mib:g} MiB")
            per_device += mib
    total_bytes = int(per_device * MIB * devices)
    bw = float(s["bandwidth_mbps"])
    seconds = total_bytes * 8 / (bw * 1e6)
    window = s.get("link_window_utc")
    window_hours = _window(window) if window else None
    wbw = float(s.get("window_bandwidth_mbps", bw))
    window_seconds = total_bytes * 8 / (wbw * 1e6)
    if total_bytes == 0:
        windows = 0
    elif window_hours is None:
        windows = 1
    else:
        windows = max(1, math.ceil(window_seconds / (window_hours * 3600)))
    if s["kind"] == "greengrass" and window:
        notes.append(f"site {s['name']}: greengrass-v2 cannot pre-stage ({FEATURES['greengrass'].missing[Feature.EDGE_PRESTAGE]}); its transfer happens at promotion")
    cost = None if usd_per_gib is None else total_bytes / 1024**3 * usd_per_gib
    transfer = TransferPlan(total_bytes, tuple(items), seconds, cost, window, window_hours, window_seconds, windows)
    # Disconnect contract: the model, the fallback and the image must all sit in the local cache.
    cache_gib = float(s.get("cache_gib", DEFAULT_CACHE_GIB))
    need_gib = (model.size_mib + (previous.size_mib if previous else 0) + image.size_mib) / 1024
    buffer_mib = float(s.get("results_buffer_mib", DEFAULT_RESULTS_BUFFER_MIB))
    buffer_hours = buffer_mib * 1024 / _rate(s) / 3600
    cred = s.get("credential_validity_hours")
    limits = {"results-buffer": buffer_hours, **({"credentials": float(cred)} if cred is not None else {})}
    if need_gib > cache_gib:
        limits["cache"] = 0.0
    limited_by = min(limits, key=lambda k: limits[k])
    offline = OfflinePlan(limits[limited_by], limited_by, need_gib, cache_gib, buffer_hours, float(cred) if cred is not None else None,
                          max_outage, () if cred is not None else ("credentials (credential_validity_hours not declared)",))
    return SitePlan(
        name=s["name"], group=group, region=region, kind=s["kind"], wave=wave, promoted=promoted, runtime=runtime, runtime_reason=reason,
        image=image.ref, replicas=int(s.get("replicas", 1)), cpu=float(s.get("cpu", 1)), memory_mib=int(s.get("memory_mib", 1024)),
        devices=devices, bandwidth_mbps=bw, transfer=transfer, offline=offline, results_buffer_mib=buffer_mib,
        kubeconfig=s.get("kubeconfig"), cluster=s.get("cluster"), node_group=s.get("node_group"), thing_group_arn=s.get("thing_group_arn"),
        gpu=s.get("gpu"),
    )


__all__ = ["plan_edge_deployment"]
