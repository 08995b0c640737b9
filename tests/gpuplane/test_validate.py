"""The cached schema validator agrees with kubernetes-validate itself."""

from __future__ import annotations

import kubernetes_validate
import pytest

from gpuplane.engine.validate import KUBERNETES_VERSION, validate_object

GOOD = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}},
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": []},
]
BAD = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "readinessProbe": {"httpGet": {"path": "/"}}}]}},
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {"template": {}}},
]


@pytest.mark.parametrize("obj", GOOD + BAD, ids=lambda o: f"{o['kind']}-{'bogus' in o or ('spec' in o and not o['spec'].get('selector', 1))}")
def test_cached_validator_agrees_with_kubernetes_validate(obj):
    def verdict(fn):
        try:
            fn(obj)
        except kubernetes_validate.ValidationError as e:
            return str(e).splitlines()[0]
        return None

    ours = verdict(lambda o: validate_object(o, KUBERNETES_VERSION))
    theirs = verdict(lambda o: kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True))
    assert ours == theirs
    assert (ours is None) == (obj in GOOD)
