"""The TrainingJob's container command line is understood by torchrun and by the workload.

The component never imports the workload; this test holds the two sides of the contract
together: the JobSet container's args (with the ``$(VAR)`` references Kubernetes expands) must
parse with torchrun's own parser (``workloads.training.launch`` takes exactly torchrun's
arguments), and the script arguments after ``-m workloads.training`` with the workload's
parser. A renamed flag on either side fails here instead of in a pod.
"""

from __future__ import annotations

import pytest

from components.cluster import ClusterFacts
from components.training import plan_training_cluster
from components.training_job import jobset_manifest, plan_training_job

torchrun = pytest.importorskip("torch.distributed.run")

GKE = ClusterFacts(cloud="gcp", name="gke", region="us-central1", zones=("us-central1-a",), autoscaler="gke")


def test_container_args_parse_with_torchrun_and_the_workload() -> None:
    from workloads.training.config import build_parser

    cluster = plan_training_cluster("train", {"cluster": None, "pools": [{"name": "l4", "accelerator": "L4", "accelerators_per_node": 4, "max_nodes": 3}], "checkpoint_bucket": {}}, GKE)  # type: ignore[typeddict-item]
    job = plan_training_job("gpt", {"training_cluster": None, "team": "training", "image": "img", "nodes": 3, "preset": "small", "extra_args": ["--max-steps", "50"]}, cluster)  # type: ignore[typeddict-item]
    container = jobset_manifest(job, "img", "gs://ckpt/training/gpt")["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    expanded = [a.replace("$(NODE_RANK)", "2").replace("$(MASTER_ADDR)", env["MASTER_ADDR"]).replace("$(MASTER_PORT)", env["MASTER_PORT"]) for a in container["args"]]

    ns = torchrun.parse_args(expanded)
    assert (ns.nnodes, ns.nproc_per_node, ns.node_rank) == ("3", "4", 2)
    assert (ns.master_addr, ns.master_port) == ("gpt-worker-0-0.gpt", 29500)
    assert ns.module is True and ns.training_script == "workloads.training"

    workload = build_parser().parse_args(ns.training_script_args)
    assert (workload.preset, workload.data, workload.checkpoint_dir, workload.export_dir, workload.max_steps) == ("small", "/data", "gs://ckpt/training/gpt", "/outputs", 50)
