"""The cold-start budget scales with the model: table tests of the pure planner, and its catalog facts.

Weight phases are the model's size over the bandwidth of the path the platform offers
(storage_bandwidth.csv); engine start is per runtime (serving_runtimes.csv). Expected seconds are
computed from the shipped rates, and the paths chosen are asserted row by row.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from components.catalog import DATA_DIR, Catalog, CatalogError, load_catalog
from components.errors import ComponentInputError, Problems
from components.inference import BUDGET_PHASES, plan_cold_start, plan_endpoint, weight_paths

CAT = load_catalog()
SM_VLLM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm-sagemaker:v0.11.0"

# (platform, cluster cloud, runtime, model_uri, loader) -> (fetch path, load path)
PATHS = [
    ("knative", "kubernetes", "reference", None, "download", None, "safetensors-load"),
    ("knative", "aws", "vllm", "s3://w/llama", "download", "s3-sync", "safetensors-load"),
    ("knative", "gcp", "vllm", "gs://w/llama", "download", "gcs-sync", "safetensors-load"),
    ("knative", "aws", "vllm", "s3://w/llama", "stream", None, "s3-stream"),
    ("knative", "gcp", "vllm", "gs://w/llama", "stream", None, "gcs-stream"),
    ("knative", "aws", "vllm", "pvc://models/llama", "download", None, "pvc-ebs-gp3"),
    ("knative", "gcp", "vllm", "pvc://models/llama", "download", None, "pvc-pd-balanced"),
    ("knative", "kubernetes", "vllm", "pvc://models/llama", "download", None, "pvc-unknown"),
    ("cloud-run", "gcp", "vllm", "gs://w/llama", "download", None, "cloud-run-gcs-mount"),
    ("cloud-run", "gcp", "vllm", "gs://w/llama", "stream", None, "gcs-stream"),
    ("sagemaker", "aws", "vllm", "s3://w/llama", "download", "sagemaker-s3-model-data", "safetensors-load"),
    ("sagemaker", "aws", "vllm", "s3://w/llama", "stream", None, "s3-stream"),
]


@pytest.mark.parametrize(("platform", "cloud", "runtime", "uri", "loader", "fetch", "load"), PATHS, ids=[f"{r[0]}-{r[3]}-{r[4]}" for r in PATHS])
@pytest.mark.parametrize("size_gib", [1.0, 70.0], ids=["1GiB", "70GiB"])
def test_weight_phases_are_size_over_the_platforms_bandwidth(platform, cloud, runtime, uri, loader, fetch, load, size_gib):
    assert weight_paths(platform, cloud, uri, loader) == (fetch, load)
    p = Problems("InferenceEndpoint", "e")
    b = plan_cold_start(p, platform=platform, cloud=cloud, runtime=runtime, model_uri=uri, loader=loader, model_size_gib=size_gib, image_size_gib=8, node_provision_seconds=90, overrides={}, catalog=CAT)
    assert not p
    rate = CAT.bandwidth(load).gib_per_second
    if load not in ("s3-stream", "gcs-stream"):
        rate = min(rate, CAT.bandwidth("safetensors-load").gib_per_second)
    assert b.weights_load_seconds == math.ceil(size_gib / rate)
    assert b.weights_fetch_seconds == (math.ceil(size_gib / CAT.bandwidth(fetch).gib_per_second) if fetch else 0)
    assert b.image_pull_seconds == math.ceil(8 / CAT.bandwidth("registry-pull").gib_per_second)
    assert b.engine_start_seconds == CAT.engine_start(runtime).seconds
    assert b.total_seconds == sum(getattr(b, k) for k in BUDGET_PHASES)
    j = b.to_json()
    assert j["basis"]["fetchPath"] == fetch and j["basis"]["loadPath"] == load and j["totalSeconds"] == b.total_seconds


def test_a_70_gib_model_budgets_its_weights_and_a_small_one_barely_does():
    def budget(size: float, loader: str = "download"):
        return plan_endpoint("e", {"platform": "sagemaker", "region": "us-east-1", "image": SM_VLLM, "runtime": {"kind": "vllm", "weights_loader": loader}, "model_uri": "s3://w/m", "model_size_gib": size, "accelerator": "H100"}).budget

    small, big, streamed = budget(1), budget(70), budget(70, "stream")
    # Shipped facts: SageMaker model download 0.5 GiB/s, loader 0.5 GiB/s, S3 streamer 1.0 GiB/s, vLLM engine 90 s.
    assert (small.weights_fetch_seconds, small.weights_load_seconds) == (2, 2)
    assert (big.weights_fetch_seconds, big.weights_load_seconds) == (140, 140)
    assert (streamed.weights_fetch_seconds, streamed.weights_load_seconds) == (0, 70)
    assert small.engine_start_seconds == big.engine_start_seconds == 90
    assert big.total_seconds - small.total_seconds == 276
    assert streamed.total_seconds < big.total_seconds, "a streaming loader is a cold-start aid"


def test_reference_server_budget_keeps_its_shape():
    plan = plan_endpoint("e", {"platform": "cloud-run", "region": "us-central1", "project": "p", "image": "x", "model_uri": "gs://m/recs", "model_size_gib": 0.5, "image_size_gib": 6})
    b = plan.budget
    assert (b.node_provision_seconds, b.image_pull_seconds, b.weights_fetch_seconds, b.engine_start_seconds) == (5, 60, 0, 15)
    assert b.weights_load_seconds == 2  # 0.5 GiB through the Cloud Storage mount at 0.25 GiB/s
    assert plan.timeouts.startup_probe_seconds == b.startup_seconds == 77


@pytest.mark.parametrize(
    ("endpoint", "gpus"),
    [
        ({"platform": "sagemaker", "region": "us-east-1", "image": SM_VLLM, "accelerator": "H100"}, 8),  # ml.p5.48xlarge
        ({"platform": "sagemaker", "region": "us-east-1", "image": SM_VLLM}, 1),  # ml.g6.xlarge
        ({"platform": "cloud-run", "region": "us-central1", "project": "p"}, 1),
    ],
    ids=["sagemaker-p5", "sagemaker-g6", "cloud-run"],
)
def test_tensor_parallel_size_is_the_replicas_gpus(endpoint, gpus):
    plan = plan_endpoint("e", {**endpoint, "runtime": {"kind": "vllm"}, "model_uri": "s3://w/m" if endpoint["platform"] == "sagemaker" else "gs://w/m"})
    assert plan.runtime.tensor_parallel_size == plan.gpus == gpus


BAD_BUDGETS = [
    ({"model_load_seconds": 30}, "cold_start_budget.model_load_seconds = 30: is not a cold-start phase"),
    ({"engine_start_seconds": -5}, "cold_start_budget.engine_start_seconds = -5: must be a whole number of seconds"),
    ({"weights_load_seconds": 1.5}, "cold_start_budget.weights_load_seconds = 1.5: must be a whole number of seconds"),
    ({"image_pull_seconds": True}, "cold_start_budget.image_pull_seconds = True"),
]


@pytest.mark.parametrize(("overrides", "fragment"), BAD_BUDGETS, ids=[f for _, f in BAD_BUDGETS])
def test_bad_budget_overrides_are_rejected(overrides, fragment):
    with pytest.raises(ComponentInputError) as exc:
        plan_endpoint("e", {"platform": "cloud-run", "region": "us-central1", "project": "p", "image": "x", "cold_start_budget": overrides})  # type: ignore[typeddict-item]
    assert fragment in str(exc.value)


def test_overrides_replace_derived_phases():
    plan = plan_endpoint("e", {"platform": "cloud-run", "region": "us-central1", "project": "p", "runtime": {"kind": "vllm"}, "model_uri": "gs://w/m", "model_size_gib": 40, "cold_start_budget": {"weights_load_seconds": 20, "engine_start_seconds": 30}})
    assert (plan.budget.weights_load_seconds, plan.budget.engine_start_seconds) == (20, 30)


# -- the catalog facts ------------------------------------------------------------------------------


def test_every_weight_path_the_planner_uses_is_in_the_catalog_with_a_source():
    used = {"registry-pull", "safetensors-load"} | {r[5] for r in PATHS if r[5]} | {r[6] for r in PATHS}
    assert used <= set(CAT.storage), used - set(CAT.storage)
    for row in CAT.storage.values():
        assert row.source and row.fetched_at and 0 < row.gib_per_second <= 60, row
    assert set(CAT.engine_starts) == {"reference", "vllm", "custom"}


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


BAD_ROWS = [
    ("storage_bandwidth.csv", "s3-sync,again,1.0,x,2026-12-04", "duplicate key"),
    ("storage_bandwidth.csv", "nvme-raid,local,120,x,2026-12-04", "is above 60 GiB/s"),
    ("storage_bandwidth.csv", "efs,nfs,0.1,x,last week", "is not a YYYY-MM-DD date"),
    ("storage_bandwidth.csv", "efs,nfs,0.1,,2026-12-04", "column 'source' is blank"),
    ("serving_runtimes.csv", "sglang,60,x,2026-12-04", "column 'runtime' = 'sglang' is not one of"),
    ("serving_runtimes.csv", "vllm,0,x,2026-12-04", "must be at least 1"),
]


@pytest.mark.parametrize(("file", "row", "message"), BAD_ROWS, ids=[m for _, _, m in BAD_ROWS])
def test_bad_storage_or_engine_row_is_rejected_naming_file_and_line(tmp_path, file, row, message):
    data = _copy(tmp_path)
    path = data / file
    text = path.read_text()
    path.write_text(text + row + "\n")
    with pytest.raises(CatalogError) as exc:
        Catalog(data)
    assert f"{file}:{text.count(chr(10)) + 1}:" in str(exc.value), str(exc.value)
    assert message in str(exc.value), str(exc.value)


def test_a_runtime_without_an_engine_start_row_is_rejected(tmp_path):
    data = _copy(tmp_path)
    path = data / "serving_runtimes.csv"
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True) if not line.startswith("custom,")))
    with pytest.raises(CatalogError, match=r"serving_runtimes.csv: no row for \['custom'\]"):
        Catalog(data)


def test_the_plan_tree_shows_the_runtime_and_every_cold_start_phase():
    from gpuplane.render import _label
    from tests.helpers import run

    args = {"platform": "cloud-run", "region": "us-central1", "project": "p", "runtime": {"kind": "vllm"}, "model_uri": "gs://w/gemma", "model_size_gib": 5}

    def program():
        from components.inference import InferenceEndpoint

        InferenceEndpoint("llm", args)  # type: ignore[arg-type]

    b = plan_endpoint("llm", args).budget  # type: ignore[arg-type]
    label = _label(run(program).one("gpuplane:index:InferenceEndpoint"))
    assert "runtime=vllm/openai" in label
    expected = f"coldStart={b.total_seconds}s(node 5 + image 80 + fetch 0 + load {b.weights_load_seconds} + engine 90)"
    assert expected in label, label
