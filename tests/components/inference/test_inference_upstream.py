"""InferenceEndpoint against the pinned vLLM 0.11 and the catalog's nodes (issue 18).

Each test names the upstream file (or the catalog fact) whose behaviour it encodes.
"""

from __future__ import annotations

import pytest

from components.errors import ComponentInputError
from components.inference import VLLM_IMAGE
from tests.components.inference.test_inference_runtimes import _cloud_run, _knative


def test_vllm_streaming_passes_no_loader_config_the_pinned_vllm_ignores() -> None:
    """vllm-project/vllm v0.11.0 vllm/model_executor/model_loader/runai_streamer_loader.py: the Run:ai
    streamer loader reads only ``concurrency`` and ``memory_limit`` from --model-loader-extra-config; a
    ``distributed`` key is silently ignored, so gpuplane neither passes nor documents it."""
    _, _svc, c = _knative({"runtime": {"kind": "vllm", "weights_loader": "stream"}, "model_uri": "s3://weights/llama-70b",
                           "gpus": 4, "model_size_gib": 70}, cloud="aws", accelerators_per_node=4)
    assert "--model-loader-extra-config" not in c["args"], c["args"]


@pytest.mark.parametrize("platform", ["knative", "cloud-run"])
def test_streaming_gs_weights_with_the_pinned_vllm_image_fails_at_plan_time_with_the_fix(platform: str) -> None:
    """vllm-project/vllm docker/Dockerfile at v0.11.0 installs runai-model-streamer[s3] only; [gcs] came to the
    image with vllm-project/vllm#26464 (after v0.11.0). ``--load-format runai_streamer`` on gs:// would fail
    at every cold start; the plan says so first."""
    endpoint = {"runtime": {"kind": "vllm", "weights_loader": "stream"}, "model_uri": "gs://models/gemma-2b"}
    with pytest.raises(ComponentInputError) as err:
        _knative(endpoint) if platform == "knative" else _cloud_run(endpoint)
    text = str(err.value)
    assert "runtime.weights_loader" in text and VLLM_IMAGE in text and "runai-model-streamer[gcs]" in text
    assert "weights_loader='download'" in text


def test_vllm_defaults_fit_the_l4_pools_g6_xlarge_node() -> None:
    """components/catalog: g6.xlarge has 4 vCPU and 16 GiB. The endpoint's default 4 vCPU / 16 GiB did not fit;
    defaults now come from the pool's node (vCPU - 0.5, 90 % of memory), explicit sizes are checked as given."""
    _, _svc, c = _knative({"runtime": {"kind": "vllm"}, "model_uri": "s3://weights/qwen"}, cloud="aws")
    requests = c["resources"]["requests"]
    assert requests == {**requests, "cpu": "3.5", "memory": "14.25Gi"}, requests
    with pytest.raises(ComponentInputError, match=r"cpu.*does not fit a g6.xlarge node"):
        _knative({"runtime": {"kind": "vllm"}, "model_uri": "s3://weights/qwen", "cpu": 4}, cloud="aws")
