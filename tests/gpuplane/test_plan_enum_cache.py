"""The AWS enum check reads botocore's models once per botocore version (a cache file)."""

from __future__ import annotations

import json

import pytest

from gpuplane.engine import aws_enums


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    aws_enums.allowed_values.cache_clear()
    aws_enums._cached_enums.cache_clear()
    yield tmp_path
    aws_enums.allowed_values.cache_clear()
    aws_enums._cached_enums.cache_clear()


def test_cache_is_written_per_botocore_version_and_matches_the_models(fresh_cache):
    import botocore

    allowed = aws_enums.allowed_values("eks", "AMITypes")
    path = aws_enums.cache_path()
    assert path == fresh_cache / "gpuplane" / f"aws-enums-{botocore.__version__}.json"
    data = json.loads(path.read_text())
    for rules in aws_enums.RULES.values():
        for _, service, shape in rules:
            assert set(data[f"{service}/{shape}"]) == aws_enums._model_enum(service, shape)
    assert "AL2023_x86_64_NVIDIA" in allowed


def test_a_broken_or_partial_cache_is_rebuilt(fresh_cache):
    path = aws_enums.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"eks/AMITypes": ["ONLY_THIS"]}')  # missing shapes: not trusted
    assert aws_enums.allowed_values("eks", "AMITypes") == aws_enums._model_enum("eks", "AMITypes")
    aws_enums.allowed_values.cache_clear()
    aws_enums._cached_enums.cache_clear()
    path.write_text("{not json")
    assert "SPOT" in aws_enums.allowed_values("eks", "CapacityTypes")
    assert "ONLY_THIS" not in path.read_text()


def test_the_check_still_catches_a_bad_value(fresh_cache):
    from gpuplane.engine.runtime import RecordedResource

    r = RecordedResource(
        urn="urn:x", type="aws:eks/nodeGroup:NodeGroup", name="x", parent=None, custom=True, remote=False,
        provider=None, inputs={"amiType": "AL2_x86_64_GPU_TYPO", "capacityType": "SPOT"},
    )
    (problem,) = aws_enums.check_aws_enums([r])
    assert "amiType = 'AL2_x86_64_GPU_TYPO' is not a valid eks AMITypes" in problem
