"""InferenceEndpoint's planner: ``plan_endpoint`` (args + catalog -> a frozen ``EndpointPlan``),
``plan_runtime`` (the serving runtime) and the server command lines backends run.

Pure and table-tested: every problem is collected and raised once, before any child exists;
asking a platform for a feature it lacks fails with its declared reason. Creates nothing.
"""

from __future__ import annotations

import math
from typing import Any

from components.catalog import Catalog, load_catalog
from components.cluster import KubernetesCluster
from components.errors import Problems
from components.features import Feature
from components.inference.canary import plan_endpoint_canary
from components.inference.spec import (
    CLOUD_RUN_GPUS,
    CLOUD_RUN_INSTANCE_START_SECONDS,
    CLOUD_RUN_MAX_REQUEST_BYTES,
    CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS,
    FEATURES,
    KNATIVE_RESERVED_PORTS,
    PROTOCOLS,
    REFERENCE_RUNTIME,
    RUNTIMES,
    SAGEMAKER_INSTANCE_START_SECONDS,
    SAGEMAKER_MAX_PAYLOAD_BYTES,
    SAGEMAKER_PING_PATH,
    SAGEMAKER_PORT,
    SERVING_PORT,
    VLLM_COMMAND,
    VLLM_HEALTH_PATH,
    VLLM_IMAGE,
    VLLM_PORT,
    EndpointPlan,
    InferenceEndpointArgs,
    RuntimePlan,
    ServingRuntimeArgs,
    Timeouts,
    plan_cold_start,
)
from components.node_pool import GpuNodePool

_KNOWN_KEYS = set(InferenceEndpointArgs.__annotations__)


_RUNTIME_KEYS = set(ServingRuntimeArgs.__annotations__)
_VLLM_ONLY = ("served_model_name", "gpu_memory_utilization", "max_model_len", "weights_loader", "extra_args")
_CUSTOM_ONLY = ("command", "args", "port", "readiness_path", "liveness_path", "protocol")

KNATIVE_SERVING_VERSION = "1.23"
# The oldest Kubernetes each Serving minor runs on: knative.dev/pkg version/version.go (defaultMinimumVersion /
# DefaultKubernetesMinVersion) at the pkg commit each serving release's go.mod requires; below it the controller
# exits with "Version check failed" (found by running knative.dev/serving v0.50.0's controller on the sandbox's
# Kubernetes 1.33). Operator 1.23 bundles Serving 1.20-1.23 (it installs `spec.version` major.minor).
KNATIVE_SERVING_MIN_KUBERNETES = {"1.21": (1, 33), "1.22": (1, 34), "1.23": (1, 34)}


def knative_serving_version(kubernetes_version: str | None) -> str:
    """The newest Serving minor the operator bundles that runs on ``kubernetes_version`` (``1.33`` -> ``1.21``);
    ``KNATIVE_SERVING_VERSION`` when the version is unknown or new enough. ``ValueError`` below every minor."""
    if not kubernetes_version:
        return KNATIVE_SERVING_VERSION
    try:
        have = tuple(int(x) for x in kubernetes_version.removeprefix("v").split(".")[:2])
    except ValueError:
        return KNATIVE_SERVING_VERSION
    fits = [v for v, need in KNATIVE_SERVING_MIN_KUBERNETES.items() if have >= need]
    if not fits:
        oldest = min(KNATIVE_SERVING_MIN_KUBERNETES.values())
        raise ValueError(f"Knative Serving {min(KNATIVE_SERVING_MIN_KUBERNETES)} and newer need Kubernetes "
                         f"{oldest[0]}.{oldest[1]} or newer; the cluster runs {kubernetes_version}")
    return max(fits, key=lambda v: tuple(int(x) for x in v.split(".")))


def _str_list(p: Problems, path: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        p.add(path, value, "must be a list of strings.", 'give each argument as its own string, e.g. ["--port", "8080"].')
        return ()
    return tuple(value)


def plan_runtime(p: Problems, runtime: ServingRuntimeArgs | dict[str, Any] | None, *, platform: str, gpus: int, model_name: str, model_uri: str | None) -> RuntimePlan:
    """Validate ``runtime`` for the platform and return the server's contract (pure)."""
    if runtime is None:
        runtime = {}
    if not isinstance(runtime, dict):
        p.add("runtime", runtime, "must be a mapping.", "pass {'kind': 'reference' | 'vllm' | 'custom', ...}.")
        return REFERENCE_RUNTIME
    for key in sorted(set(runtime) - _RUNTIME_KEYS):
        p.add(f"runtime.{key}", runtime[key], "is not a runtime field.", f"use one of {sorted(_RUNTIME_KEYS)}.")  # type: ignore[literal-required]
    kind = runtime.get("kind", "reference")
    if kind not in RUNTIMES:
        p.add("runtime.kind", kind, "is not a serving runtime.", f"use one of {list(RUNTIMES)}.")
        return REFERENCE_RUNTIME
    foreign = [k for k in (_CUSTOM_ONLY if kind != "custom" else ()) + (_VLLM_ONLY if kind != "vllm" else ()) if k in runtime]
    for key in foreign:
        owner = "custom" if key in _CUSTOM_ONLY else "vllm"
        p.add(f"runtime.{key}", runtime[key], f"applies to runtime kind '{owner}', not '{kind}'.", f"drop it, or set runtime.kind to '{owner}'.")  # type: ignore[literal-required]
    sagemaker = platform == "sagemaker"
    if kind == "reference":
        return REFERENCE_RUNTIME
    if kind == "vllm":
        util = runtime.get("gpu_memory_utilization", 0.9)
        if not isinstance(util, (int, float)) or isinstance(util, bool) or not 0 < util <= 1:
            p.add("runtime.gpu_memory_utilization", util, "must be a fraction in (0, 1].", "use e.g. 0.9 (vLLM's default).")
            util = 0.9
        max_len = runtime.get("max_model_len")
        if max_len is not None and (not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 1):
            p.add("runtime.max_model_len", max_len, "must be a whole number of tokens.", "give the context length, or drop it for the model's own.")
            max_len = None
        loader = runtime.get("weights_loader", "download")
        if loader not in ("download", "stream"):
            p.add("runtime.weights_loader", loader, "is not a weights loader.", "use 'download' or 'stream'.")
            loader = "download"
        if not model_uri:
            p.add("model_uri", None, "is required with runtime.kind='vllm' (gpuplane does not fetch from the Hugging Face Hub at cold start).", "put the weights in s3://, gs:// or pvc:// and name them here.")
        elif loader == "stream" and not model_uri.startswith(("s3://", "gs://")):
            p.add("runtime.weights_loader", loader, f"streams only from s3:// or gs://, not {model_uri.split('://', 1)[0]}://.", "use weights_loader='download' for a volume, or keep the weights in a bucket.")
        if gpus < 1:
            p.add("runtime.kind", kind, "vLLM serves on GPUs and this endpoint has none.", "pass pool=<GpuNodePool> (knative), or use runtime.kind='reference' on CPU.")
        extra = _str_list(p, "runtime.extra_args", runtime.get("extra_args"))
        for flag in extra:
            if flag.split("=", 1)[0] in ("--port", "--tensor-parallel-size", "-tp", "--served-model-name", "--load-format", "--gpu-memory-utilization", "--max-model-len"):
                p.add("runtime.extra_args", flag, "is set by gpuplane from the endpoint's fields.", "drop it and use the runtime field (port is fixed by the platform; tensor parallel size = gpus).")
        return RuntimePlan(
            kind="vllm",
            protocol="openai",
            port=SAGEMAKER_PORT if sagemaker else VLLM_PORT,
            readiness_path=SAGEMAKER_PING_PATH if sagemaker else VLLM_HEALTH_PATH,
            liveness_path=SAGEMAKER_PING_PATH if sagemaker else VLLM_HEALTH_PATH,
            command=None if sagemaker else VLLM_COMMAND,
            args=extra,
            served_model_name=str(runtime.get("served_model_name") or model_name),
            gpu_memory_utilization=float(util),
            max_model_len=max_len,
            weights_loader=str(loader),
            tensor_parallel_size=max(1, gpus),
        )
    # custom
    command = _str_list(p, "runtime.command", runtime.get("command")) or None
    args = _str_list(p, "runtime.args", runtime.get("args"))
    port = runtime.get("port", SAGEMAKER_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        p.add("runtime.port", port, "is not a TCP port.", "give the port the server listens on (1-65535).")
        port = SAGEMAKER_PORT
    elif platform == "knative" and port in KNATIVE_RESERVED_PORTS:
        p.add("runtime.port", port, f"is reserved by Knative's queue-proxy ({sorted(KNATIVE_RESERVED_PORTS)}).", "listen on another port, e.g. 8080.")
    readiness = runtime.get("readiness_path")
    if not isinstance(readiness, str) or not readiness.startswith("/"):
        p.add("runtime.readiness_path", readiness, "is required for a custom runtime and must start with '/'.", "give the path that answers 200 once the model is loaded, e.g. '/health'.")
        readiness = "/"
    liveness = runtime.get("liveness_path", readiness)
    if not isinstance(liveness, str) or not liveness.startswith("/"):
        p.add("runtime.liveness_path", liveness, "must start with '/'.", "give the path that answers 200 while the process is healthy.")
        liveness = readiness
    protocol = runtime.get("protocol")
    if protocol not in PROTOCOLS:
        p.add("runtime.protocol", protocol, "is required for a custom runtime.", f"name the API the server speaks: one of {list(PROTOCOLS)}.")
        protocol = "other"
    return RuntimePlan("custom", str(protocol), port, readiness, liveness, command, args)


def runtime_features(runtime: RuntimePlan, args: InferenceEndpointArgs) -> list[tuple[Feature, str, object]]:
    """The bring-your-own-server and cold-start-aid features the args ask for."""
    out: list[tuple[Feature, str, object]] = []
    if runtime.kind == "custom":
        if runtime.command or runtime.args:
            out.append((Feature.CUSTOM_COMMAND, "runtime.command" if runtime.command else "runtime.args", list(runtime.command or runtime.args)))
        if runtime.port != SAGEMAKER_PORT:
            out.append((Feature.CUSTOM_PORT, "runtime.port", runtime.port))
        if runtime.readiness_path != SAGEMAKER_PING_PATH:
            out.append((Feature.CUSTOM_PROBES, "runtime.readiness_path", runtime.readiness_path))
        elif runtime.liveness_path != SAGEMAKER_PING_PATH:
            out.append((Feature.CUSTOM_PROBES, "runtime.liveness_path", runtime.liveness_path))
    if args.get("prepull_image", False):
        out.append((Feature.IMAGE_PREPULL, "prepull_image", True))
    uri = args.get("model_uri") or ""
    if uri.startswith("pvc://") or (args.get("platform") == "cloud-run" and uri.startswith("gs://") and runtime.weights_loader != "stream"):
        out.append((Feature.WEIGHTS_VOLUME, "model_uri", uri))
    if runtime.weights_loader == "stream":
        out.append((Feature.STREAMING_WEIGHT_LOADER, "runtime.weights_loader", "stream"))
    return out


def _int(p: Problems, args: InferenceEndpointArgs, key: str, default: int, minimum: int, fix: str) -> int:
    value = args.get(key, default)  # type: ignore[misc]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        p.add(key, value, f"must be a whole number of at least {minimum}.", fix)
        return default
    return value


def plan_endpoint(name: str, args: InferenceEndpointArgs, catalog: Catalog | None = None) -> EndpointPlan:
    """Validate the args and derive the endpoint plan, or raise one ``ComponentInputError``."""
    catalog = catalog or load_catalog()
    p = Problems("InferenceEndpoint", name)
    for key in sorted(set(args) - _KNOWN_KEYS):
        p.add(key, args[key], "is not an argument of InferenceEndpoint.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    platform = args.get("platform")
    if platform not in ("knative", "cloud-run", "sagemaker"):
        p.add("platform", platform, "is not a supported platform.", "use 'knative', 'cloud-run' or 'sagemaker'.")
        p.raise_if_any()

    min_scale = _int(p, args, "min_scale", 0, 0, "set it to 0 to scale to zero, or the replicas to keep warm.")
    max_scale = _int(p, args, "max_scale", 4, 1, "set the most replicas the endpoint may grow to.")
    if max_scale < min_scale:
        p.add("max_scale", max_scale, f"is below min_scale={min_scale}.", "raise max_scale or lower min_scale.")
    target = _int(p, args, "target_concurrency", 8, 1, "set how many in-flight requests one replica handles.")
    delay = _int(p, args, "scale_down_delay_seconds", 300, 0, "set the keep-alive after the last request, in seconds.")
    request_timeout = _int(p, args, "request_timeout_seconds", 60, 1, "set the longest a warm request may run, in seconds.")
    max_request = _int(p, args, "max_request_bytes", 1024 * 1024, 1, "set the largest request body, in bytes.")
    sizes: dict[str, float] = {}
    for key, default in (("model_size_gib", 1.0), ("image_size_gib", 8.0), ("cpu", 4.0), ("memory_gib", 16.0)):
        v = args.get(key, default)  # type: ignore[misc]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            p.add(key, v, "must be a positive number.", "give a size greater than zero.")
            v = default
        sizes[key] = float(v)

    model_uri = args.get("model_uri")
    if model_uri is not None and not str(model_uri).startswith(("s3://", "gs://", "pvc://")):
        p.add("model_uri", model_uri, "must be an s3://, gs:// or pvc://claim/path URI.", "give the weights' location, or drop model_uri to use weights baked into the image.")

    cloud, region, accelerator, instance_type, impl = "kubernetes", None, None, None, str(platform)
    gpus = 1
    node_seconds = 0
    namespace = args.get("namespace", "inference")
    mode = None
    cluster, pool = args.get("cluster"), args.get("pool")
    tags = dict(args.get("tags") or {})
    if platform == "knative":
        if not isinstance(cluster, KubernetesCluster):
            p.add("cluster", cluster, "is required for knative and must be a KubernetesCluster.", "pass the cluster to run on.")
        else:
            cloud, region = cluster.facts.cloud, cluster.facts.region
            tags = {**cluster.facts.tags, **tags}
            version = getattr(getattr(cluster, "plan", None), "kubernetes_version", None)
            if args.get("knative", "install") == "install":
                try:
                    knative_serving_version(version)
                except ValueError as e:
                    p.add("cluster.kubernetes_version", version, f"is too old for Knative Serving: {e}.",
                          "raise the cluster's kubernetes_version to 1.33 or newer, or install Knative yourself "
                          "and set knative='existing'.")
        if pool is not None and not isinstance(pool, GpuNodePool):
            p.add("pool", pool, "is not a GpuNodePool.", "pass a GpuNodePool of the same cluster, or drop it for CPU.")
            pool = None
        if isinstance(pool, GpuNodePool):
            if isinstance(cluster, KubernetesCluster) and pool.cluster is not cluster:
                p.add("pool", pool.plan.name, "belongs to another cluster.", "pass a pool of the endpoint's cluster.")
            accelerator = pool.plan.accelerator.name
            instance_type = pool.plan.instance_type.name if pool.plan.instance_type else None
            gpus = args.get("gpus", 1)
            if not isinstance(gpus, int) or gpus < 1 or gpus > pool.scheduling.allocatable_per_node:
                p.add("gpus", gpus, f"does not fit pool '{pool.plan.name}' ({pool.scheduling.allocatable_per_node} x {pool.scheduling.resource_name} per node).", "request at most what one node offers.")
            if pool.plan.sharing in ("time-slicing", "mps") and isinstance(gpus, int) and gpus > 1:
                p.add("gpus", gpus, f"pool '{pool.plan.name}' shares GPUs ({pool.plan.sharing}); a container may request only one shared GPU.", "set gpus to 1 or use an unshared pool.")
            cpu_cap, mem_cap = pool.scheduling.vcpus_per_node, pool.scheduling.memory_gib_per_node
            # Sizes left to their defaults fit the pool's node (the catalog's vCPU and memory, less what
            # the system keeps); sizes given explicitly are checked as given.
            if cpu_cap and "cpu" not in args:
                sizes["cpu"] = min(sizes["cpu"], cpu_cap - 0.5)
            if mem_cap and "memory_gib" not in args:
                sizes["memory_gib"] = min(sizes["memory_gib"], math.floor(mem_cap * 0.9 * 4) / 4)
            if cpu_cap and sizes["cpu"] > cpu_cap - 0.5:
                p.add("cpu", sizes["cpu"], f"does not fit a {instance_type} node ({cpu_cap} vCPU, some reserved for the system).", f"request at most {cpu_cap - 0.5:g}.")
            if mem_cap and sizes["memory_gib"] > mem_cap * 0.9:
                p.add("memory_gib", sizes["memory_gib"], f"does not fit a {instance_type} node ({mem_cap:g} GiB).", f"request at most {mem_cap * 0.9:g}.")
            keeps_node = pool.plan.min_nodes > 0
            node_seconds = 0 if keeps_node or not pool.plan.summary()["createsNodes"] else catalog.cloud(cloud).node_provision_seconds
        else:
            gpus = 0
            if args.get("gpus"):
                p.add("gpus", args.get("gpus"), "needs a GPU pool.", "pass pool=<GpuNodePool>, or drop gpus for a CPU endpoint.")
        if args.get("model_uri", "").startswith("s3://") and cloud not in ("aws", "kubernetes"):
            p.add("model_uri", model_uri, f"is an S3 URI but the cluster is on {cloud}.", "keep weights in the cluster's cloud (data gravity): use gs:// or pvc://.")
        if args.get("model_uri", "").startswith("gs://") and cloud not in ("gcp", "kubernetes"):
            p.add("model_uri", model_uri, f"is a GCS URI but the cluster is on {cloud}.", "use s3:// or pvc://.")
    elif platform == "cloud-run":
        cloud, region = "gcp", args.get("region")
        accelerator = args.get("accelerator", "L4")
        if accelerator not in CLOUD_RUN_GPUS:
            p.add("accelerator", accelerator, "is not offered by Cloud Run.", f"use one of {sorted(CLOUD_RUN_GPUS)}.")
        if not args.get("project"):
            p.add("project", args.get("project"), "is required for cloud-run.", "set the GCP project id.")
        rate = catalog.serverless_rate("gcp", "cloud-run", "l4-gpu-second", region or "")
        if rate is None:
            where = sorted({k[3] for k in catalog.serverless if k[1] == "cloud-run" and k[2] == "l4-gpu-second"})
            p.add("region", region, "does not offer Cloud Run with L4 in the catalog.", f"use one of {where}.")
        gpus = args.get("gpus", 1)
        if gpus != 1:
            p.add("gpus", gpus, "Cloud Run attaches exactly one GPU per instance.", "set gpus to 1.")
        if sizes["cpu"] < 4 or sizes["memory_gib"] < 16:
            p.add("cpu", sizes["cpu"], f"with memory_gib={sizes['memory_gib']:g} is below Cloud Run's L4 minimum of 4 vCPU and 16 GiB.", "request at least 4 vCPU and 16 GiB.")
        if model_uri and not str(model_uri).startswith("gs://"):
            p.add("model_uri", model_uri, "Cloud Run mounts weights from Cloud Storage only.", "use a gs:// URI.")
        node_seconds = CLOUD_RUN_INSTANCE_START_SECONDS
    else:  # sagemaker
        cloud, region = "aws", args.get("region")
        mode = args.get("sagemaker_mode", "async")
        if mode not in ("inference-components", "async"):
            p.add("sagemaker_mode", mode, "is not a SageMaker mode.", "use 'inference-components' or 'async'.")
            mode = "async"
        impl = f"sagemaker-{mode}"
        accelerator = args.get("accelerator", "L4")
        wanted = args.get("instance_type")
        offers = [o for o in catalog.find_offerings("aws", accelerator, None, region, "on_demand", "sagemaker") if not wanted or o.instance_type.name == wanted]
        if wanted and not str(wanted).startswith("ml."):
            p.add("instance_type", wanted, "is not a SageMaker instance type.", "use an ml.* type, e.g. ml.g6.xlarge.")
        elif not offers:
            where = sorted({o.instance_type.name for o in catalog.find_offerings("aws", accelerator, None, None, "on_demand", "sagemaker")})
            p.add("instance_type" if wanted else "accelerator", wanted or accelerator, f"no SageMaker offering in {region} in the catalog.", f"use a region that offers it, or one of {where}.")
        else:
            instance_type = offers[0].instance_type.name
        gpus = offers[0].instance_type.gpus if offers else 1
        if model_uri and not str(model_uri).startswith("s3://"):
            p.add("model_uri", model_uri, "SageMaker reads model data from S3 only.", "use an s3:// URI.")
        node_seconds = SAGEMAKER_INSTANCE_START_SECONDS
    if platform in ("cloud-run", "sagemaker") and (region is None or catalog.region(cloud, region) is None):
        p.add("region", region, f"is not a {cloud} region in the catalog.", f"use one of {catalog.region_names(cloud)}.")

    model_name = args.get("model_name", "recommender")
    runtime = plan_runtime(p, args.get("runtime"), platform=str(platform), gpus=gpus if isinstance(gpus, int) else 1, model_name=model_name, model_uri=model_uri)
    image = args.get("image")
    if not image and runtime.kind == "vllm" and platform != "sagemaker":
        image = VLLM_IMAGE
    if not image:
        why = {
            "vllm": f"is required for vllm on SageMaker: {VLLM_IMAGE.split(':')[0]}'s entrypoint is `vllm serve` on port {VLLM_PORT}, "
            f"but SageMaker starts containers as `docker run IMAGE serve` and calls {SAGEMAKER_PING_PATH} and /invocations on {SAGEMAKER_PORT}.",
            "custom": "is required for a custom runtime.",
        }.get(runtime.kind, "is required for the reference runtime.")
        fix = {
            "vllm": "give a SageMaker build of vLLM (vLLM's docker/Dockerfile target vllm-sagemaker, whose entrypoint maps SM_VLLM_* variables to flags and listens on 8080).",
            "custom": "give your model server's container image.",
        }.get(runtime.kind, "give the model server's container image (workloads/serving/Dockerfile).")
        p.add("image", image, why, fix)
    elif platform == "sagemaker" and runtime.kind == "vllm" and isinstance(image, str) and image.startswith(VLLM_IMAGE.split(":")[0] + ":"):
        p.add("image", image, f"is vLLM's plain OpenAI image: it serves on {VLLM_PORT} with entrypoint `vllm serve`, and SageMaker runs `docker run IMAGE serve` against {SAGEMAKER_PING_PATH} on {SAGEMAKER_PORT}.", "build vLLM's docker/Dockerfile target vllm-sagemaker (or use AWS's vLLM SageMaker container) and give that image.")
    if runtime.kind == "vllm" and runtime.weights_loader == "stream" and image == VLLM_IMAGE \
            and str(model_uri or "").startswith("gs://"):
        # vLLM 0.11.0's image installs runai-model-streamer[s3] only; [gcs] came with vLLM PR #26464
        # (docker/Dockerfile, after v0.11.0), so `--load-format runai_streamer` cannot read gs:// there.
        p.add("runtime.weights_loader", "stream", f"reads gs:// through runai-model-streamer[gcs], which {VLLM_IMAGE} does not carry.",
              "use weights_loader='download' (the weights are copied to a volume first), or give an image with runai-model-streamer[gcs] installed.")
    if runtime.kind != "reference" and args.get("feature_server_url") is not None:
        p.add("feature_server_url", "...", f"is read by the reference server only; a {runtime.kind} server does not take --feature-server-url.", "drop it, or fetch features in the client.")

    features = FEATURES[impl]
    requested: list[tuple[Feature, str, object]] = []
    if min_scale == 0:
        requested.append((Feature.SCALE_TO_ZERO, "min_scale", 0))
        if args.get("hold_requests", True):
            requested.append((Feature.REQUEST_HOLDING, "hold_requests", True))
    if args.get("streaming", False):
        requested.append((Feature.STREAMING, "streaming", True))
    limit = CLOUD_RUN_MAX_REQUEST_BYTES if impl == "cloud-run" else SAGEMAKER_MAX_PAYLOAD_BYTES if impl == "sagemaker-inference-components" else None
    if limit is not None and max_request > limit:
        requested.append((Feature.LARGE_REQUESTS, "max_request_bytes", max_request))
    if isinstance(pool, GpuNodePool) and pool.plan.sharing:
        requested.append((Feature.GPU_SHARING, "pool", pool.plan.name))
    requested += runtime_features(runtime, args)
    p.extend(features.check(requested))

    if args.get("feature_server_url") is not None and platform != "knative":
        p.add("feature_server_url", "...", f"{platform} cannot reach an in-cluster feature server.", "drop it, or serve on knative in the feature store's cluster.")
    default_auth = "iam" if platform in ("cloud-run", "sagemaker") else "none"
    auth = args.get("auth", default_auth)
    public = bool(args.get("public", False))
    if auth not in ("none", "iam", "bearer-token"):
        p.add("auth", auth, "is not an authentication mechanism.", "use 'iam', 'bearer-token' or 'none'.")
    if public and auth == "none":
        p.add("public", True, "a public endpoint needs authentication.", "set auth to 'iam' or 'bearer-token', or keep the endpoint private.")
    if platform == "knative" and auth == "iam":
        p.add("auth", auth, "knative has no IAM authentication.", "use 'bearer-token' with auth_token_secret.")
    if auth == "bearer-token" and platform == "knative" and not args.get("auth_token_secret"):
        p.add("auth_token_secret", None, "is required with auth='bearer-token'.", "name a Secret with key 'token' in the namespace.")
    if public and platform == "sagemaker":
        p.add("public", True, "SageMaker endpoints are reached through the AWS API with SigV4, not a public URL.", "drop public; grant sagemaker:InvokeEndpoint to callers.")

    budget = plan_cold_start(
        p,
        platform=str(platform),
        cloud=cloud,
        runtime=runtime.kind,
        model_uri=model_uri,
        loader=runtime.weights_loader,
        model_size_gib=sizes["model_size_gib"],
        image_size_gib=sizes["image_size_gib"],
        node_provision_seconds=node_seconds,
        overrides=args.get("cold_start_budget") or {},
        catalog=catalog,
    )
    if platform == "cloud-run" and budget.startup_seconds > CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS:
        fix = "stream the weights (runtime.weights_loader='stream'), shrink the image or the weights, or use knative." if runtime.kind == "vllm" else "shrink the image or the weights, or use knative."
        p.add("cold_start_budget", budget.phases_text(), f"Cloud Run startup probes give up after {CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS} s.", fix)
    canary = plan_endpoint_canary(p, name, impl, args.get("canary"))
    rollout_owner = args.get("rollout_managed_by", "iac")
    if rollout_owner not in ("iac", "pipeline"):
        p.add("rollout_managed_by", rollout_owner, "is not an owner of the served revision.", "use 'iac' or 'pipeline'.")
    elif rollout_owner == "pipeline" and platform != "knative":
        p.add("rollout_managed_by", rollout_owner, f"applies to knative endpoints; a ModelPipeline rolls out only there, not on {platform}.",
              "drop it (set the canary on the endpoint itself).")
    elif rollout_owner == "pipeline" and args.get("canary") is not None:
        p.add("canary", "...", "pins spec.traffic in the program, but rollout_managed_by='pipeline' gives spec.traffic to the pipeline.",
              "drop canary (the pipeline's canary splits the traffic), or set rollout_managed_by='iac'.")
    p.raise_if_any()

    startup = budget.startup_seconds
    timeouts = Timeouts(
        startup_probe_seconds=min(startup, CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS) if platform == "cloud-run" else startup,
        progress_deadline_seconds=max(600, math.ceil(budget.total_seconds * 1.5)),
        request_timeout_seconds=budget.total_seconds + request_timeout,
    )
    return EndpointPlan(
        name=name,
        platform=str(platform),
        implementation=impl,
        cloud=cloud,
        region=region,
        model_name=model_name,
        model_uri=model_uri,
        accelerator=accelerator,
        instance_type=instance_type,
        gpus=gpus,
        cpu=sizes["cpu"],
        memory_gib=sizes["memory_gib"],
        min_scale=min_scale,
        max_scale=max_scale,
        target_concurrency=target,
        scale_down_delay_seconds=delay,
        budget=budget,
        timeouts=timeouts,
        public=public,
        auth=auth,
        namespace=namespace,
        knative=args.get("knative", "install"),
        sagemaker_mode=mode,
        prepull_image=bool(args.get("prepull_image", False)),
        zonal_redundancy=bool(args.get("zonal_redundancy", False)),
        deletion_protection=bool(args.get("deletion_protection", False)),
        max_request_bytes=max_request,
        env=dict(args.get("env") or {}),
        tags=tags,
        features=features,
        runtime=runtime,
        rollout_managed_by=str(rollout_owner),
        image=image,
        extra={"pool": pool.plan.name if isinstance(pool, GpuNodePool) else None, "canary": canary},
    )


def server_args(plan: EndpointPlan, model_dir: str) -> list[str]:
    """The reference serving workload's command line (workloads/serving)."""
    return ["--model-dir", model_dir, "--model-name", plan.model_name, "--port", str(SERVING_PORT), "--max-body-bytes", str(plan.max_request_bytes)]


def vllm_args(plan: EndpointPlan, model: str) -> list[str]:
    """``vllm serve`` arguments: ``model`` is a local path, or an s3:// / gs:// URI when streaming."""
    rt = plan.runtime
    out = [
        model,
        "--served-model-name",
        rt.served_model_name or plan.model_name,
        "--port",
        str(rt.port),
        "--tensor-parallel-size",
        str(rt.tensor_parallel_size),
        "--gpu-memory-utilization",
        f"{rt.gpu_memory_utilization or 0.9:g}",
    ]
    if rt.max_model_len:
        out += ["--max-model-len", str(rt.max_model_len)]
    if rt.weights_loader == "stream":
        out += ["--load-format", "runai_streamer"]
    return out + list(rt.args)


def server_command(plan: EndpointPlan, model_dir: str) -> tuple[list[str] | None, list[str]]:
    """(command, args) of the model server container; command None keeps the image's entrypoint.

    ``model_dir`` is where the platform puts the weights (a mount or a synced volume); a vLLM
    endpoint that streams reads the bucket URI instead.
    """
    rt = plan.runtime
    if rt.kind == "vllm":
        model = plan.model_uri if rt.weights_loader == "stream" and plan.model_uri else model_dir
        return list(rt.command or VLLM_COMMAND), vllm_args(plan, model)
    if rt.kind == "custom":
        return (list(rt.command) if rt.command else None), [a.replace("{model_dir}", model_dir) for a in rt.args]
    return None, server_args(plan, model_dir)


