"""Stack config of the model loop: modelRegistry / modelPipeline sections, camelCase, references checked."""

from __future__ import annotations

import pytest

from stacks.config import StackConfigError, parse_config

BASE = {"gpuplane:cluster": {"cloud": "aws", "region": "us-east-1"}}
REGISTRY = {"gpuplane:modelRegistry": {"target": "aws"}}
TRAINING = {"gpuplane:training": {"pools": [{"name": "a10g", "accelerator": "A10G"}], "teams": [{"name": "recs"}]}}
PIPELINE = {"name": "loop", "trigger": {"kind": "bucket-events", "dataUrl": "s3://events/e"}}


def test_the_loop_sections_parse_with_their_defaults() -> None:
    cfg = parse_config({**BASE, **REGISTRY, **TRAINING, "gpuplane:modelPipeline": {**PIPELINE, "canary": {"percent": 5}}})
    assert cfg.model_registry is not None and cfg.model_registry.target == "aws"
    mp = cfg.model_pipeline
    assert mp is not None and mp.trigger.data_url == "s3://events/e" and mp.metric == "ndcg_at_10" and mp.min_improvement == 0.002
    assert mp.canary is not None and mp.canary.percent == 5 and mp.canary.window_seconds == 600


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({**BASE, "gpuplane:modelPipeline": PIPELINE}, "modelPipeline needs modelRegistry"),
        ({**BASE, **REGISTRY, "gpuplane:modelPipeline": PIPELINE}, "modelPipeline on a cluster needs training"),
        ({**BASE, **REGISTRY, **TRAINING, "gpuplane:modelPipeline": {**PIPELINE, "endpoint": "nope"}}, "modelPipeline.endpoint 'nope' is not an endpoint of this stack"),
        ({**BASE, **REGISTRY, **TRAINING, "gpuplane:modelPipeline": {**PIPELINE, "canary": {"percent": 120}}}, "gpuplane:modelPipeline.canary.percent: Input should be less than or equal to 100"),
        ({**BASE, **REGISTRY, **TRAINING, "gpuplane:modelPipeline": {**PIPELINE, "trigger": {"kind": "webhook", "dataUrl": "s3://e"}}}, "gpuplane:modelPipeline.trigger.kind: Input should be"),
        ({**BASE, "gpuplane:modelRegistry": {"target": "aws", "instanceClas": "db.t4g.small"}}, "gpuplane:modelRegistry.instanceClas: Extra inputs are not permitted"),
    ],
)
def test_loop_config_errors_name_the_key_path(values: dict, fragment: str) -> None:
    with pytest.raises(StackConfigError) as err:
        parse_config(values)
    assert fragment in str(err.value), str(err.value)
