"""gpuplane/sandbox/knative.py's pure parts: which upstream files it applies and what it changes in them."""

from __future__ import annotations

from pathlib import Path

from gpuplane.sandbox import knative


def _fake_modules(root: Path) -> dict[str, Path]:
    dirs = {m: root / m.replace("/", "_") for m in ("knative.dev/serving", "knative.dev/networking", "knative.dev/caching")}
    for f in knative.manifests(dirs):
        f.parent.mkdir(parents=True, exist_ok=True)
        if f.parent.name == "configmaps" or f.name == "config-network.yaml":
            name = "config-" + f.stem if not f.stem.startswith("config-") else f.stem
            f.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: knative-serving\n"
                         "data:\n  queue-sidecar-image: ko://knative.dev/serving/cmd/queue\n")
        else:
            f.write_text(f"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {f.stem}\n")
    return dirs


def test_configmaps_move_to_the_sandbox_namespace_with_the_overrides(tmp_path: Path) -> None:
    docs = knative.documents(_fake_modules(tmp_path))
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": knative.NAMESPACE}}
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert {"config-deployment", "config-network", "config-features", "config-autoscaler"} <= set(maps)
    assert all(d["metadata"]["namespace"] == knative.NAMESPACE != "knative-serving" for d in maps.values())
    deployment = maps["config-deployment"]["data"]
    assert deployment["queue-sidecar-image"] == knative.QUEUE_IMAGE and not deployment["queue-sidecar-image"].startswith("ko://")
    assert "ghcr.io" in deployment["registries-skipping-tag-resolving"].split(",")
    assert maps["config-network"]["data"]["queue-sidecar-image"].startswith("ko://")  # only config-deployment changes
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert {"service", "revision", "podautoscaler", "serverlessservice", "ingress", "image"} <= {d["metadata"]["name"] for d in crds}


def test_the_controller_runs_with_the_sandbox_kubeconfig_and_namespace(tmp_path: Path) -> None:
    from gpuplane.sandbox import cluster

    layout = cluster.Layout("k", 30443, tmp_path)
    env = knative.environment(layout)
    assert env["SYSTEM_NAMESPACE"] == knative.NAMESPACE and env["KUBECONFIG"] == str(layout.kubeconfig)
    assert knative.command(layout, tmp_path, jail=False) == [str(tmp_path / knative.PROCESS)]
    jailed = knative.command(layout, tmp_path, jail=True)
    # Behind the relay: the API server's port reaches in, nothing of the controller reaches out.
    assert jailed[-2:] == ["--", str(tmp_path / knative.PROCESS)] and "--outward" not in jailed
    assert jailed[jailed.index("--inward") + 1] == "30443"
