"""A `BatchJob` on the Kueue backend, `pulumi up`'d onto the controllers sandbox: the real Kueue v0.19.2 admits
its Indexed Job in the team's queue, the Job controller runs every index on kwok GPU nodes, and the Job
completes.

kwok is the sandbox's kubelet; with controllers on, its pods stay Running until deleted (no container runs
here), so the test reports each task's container as exited 0, as a kubelet would when the workload finishes
its shard. Everything else is the controllers' own doing: Kueue's Workload (QuotaReserved, Admitted,
Finished), the Job's unsuspension, pods per completion index, and the Job's Complete condition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpuplane.sandbox import cluster
from tests.engine import dry_run, training_lane
from tests.engine.training_lane import condition, get, wait_for

pytestmark = pytest.mark.engine

NS = "batch"
L4 = {"name": "l4", "accelerator": "L4", "accelerators_per_node": 1, "node_vcpus": 4, "node_memory_gib": 16,
      "max_nodes": 2}


def _program(charts: Path, node_labels: dict[str, str], tasks: int) -> Callable[[], None]:
    def run() -> None:
        from components import BatchJob, KubernetesCluster, SpotTrainingCluster

        k8s_cluster = KubernetesCluster("sandbox", {"cloud": "existing", "chart_source": str(charts)})
        tc = SpotTrainingCluster("batchtc", {
            "cluster": k8s_cluster, "pools": [{**L4, "node_labels": node_labels}],  # type: ignore[typeddict-item]
            "teams": [{"name": NS}], "checkpoint_bucket": {"url": "s3://gpuplane-sandbox-checkpoints"},
            "install_kueue": False, "install_jobset": False,
        })
        BatchJob("scores", {
            "platform": "kueue", "training_cluster": tc, "team": NS, "image": "ghcr.io/gpuplane/training:0.1.0",
            "dataset_uri": "s3://gpuplane-sandbox-events/events", "output_uri": "s3://gpuplane-sandbox-events/scores",
            "model_uri": "s3://gpuplane-sandbox-events/models/recommender",
            "items": 300, "items_per_second": 1.0, "max_task_seconds": 600, "tasks": tasks, "parallelism": 2,
            "accelerator": "L4", "gpus": 1, "spot": False,
        })

    return run


def _jobs(layout: cluster.Layout) -> list[dict]:
    return get(layout, f"/apis/batch/v1/namespaces/{NS}/jobs")["items"]


def _workload(layout: cluster.Layout, job: str) -> dict | None:
    items = get(layout, f"{training_lane.KUEUE}/namespaces/{NS}/workloads")["items"]
    mine = [w for w in items if any(o.get("kind") == "Job" and o.get("name") == job
                                    for o in w["metadata"].get("ownerReferences", []))]
    return mine[0] if mine else None


def _pods(layout: cluster.Layout, job: str) -> list[dict]:
    path = f"/api/v1/namespaces/{NS}/pods?labelSelector=batch.kubernetes.io/job-name%3D{job}"
    return get(layout, path)["items"]


def _exit_zero(layout: cluster.Layout, pod: dict) -> None:
    """What a kubelet reports when the task's container exits 0 (kwok runs no container)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                                                     "lastTransitionTime": now}],
              "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                                     "restartCount": 0, "started": False,
                                     "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                              "startedAt": now, "finishedAt": now}}}
                                    for c in pod["spec"]["containers"]]}
    path = f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/status"
    code, body = cluster.api(layout, "PATCH", path, {"status": status}, content_type="application/merge-patch+json")
    assert code == 200, f"PATCH {path}: {code} {body}"


@pytest.fixture
def l4_nodes(controllers_sandbox) -> Iterator[dict[str, str]]:
    names = training_lane.add_nodes(controllers_sandbox.layout, "batch-l4", 2)
    yield {"gpuplane.dev/pool": "batch-l4"}
    training_lane.delete_nodes(controllers_sandbox.layout, names)


def test_batch_job_on_kueue_is_admitted_runs_every_index_and_completes(controllers_sandbox, l4_nodes, tmp_path: Path) -> None:
    charts = dry_run.charts_dir()
    if charts is None:
        pytest.skip("no chart archives (../shared/charts or $GPUPLANE_CHARTS_DIR)")
    layout = controllers_sandbox.layout
    tasks = 3
    stack = training_lane.select(tmp_path / "project", controllers_sandbox.env, _program(charts, l4_nodes, tasks))
    try:
        up = stack.up()
        assert up.summary.result == "succeeded", up.stdout[-3000:]
        job = wait_for("the BatchJob's Job", lambda: _jobs(layout))[0]
        name = job["metadata"]["name"]
        assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == tasks
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
        # The workload's contract (workloads/batch/contract.py): the task count and the run id reach every task.
        env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["GPUPLANE_TASK_COUNT"]["value"] == str(tasks)
        assert env["GPUPLANE_RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
        started = time.monotonic()
        wl = wait_for("Kueue admits the Job", lambda: (lambda w: w if condition(w, "Admitted").get("status") == "True"
                                                        else None)(_workload(layout, name)))
        flavors = [a["flavors"].get("nvidia.com/gpu") for a in wl["status"]["admission"]["podSetAssignments"]]
        assert all(f and f.startswith("batchtc-l4") for f in flavors), flavors
        # Unsuspended by Kueue; parallelism 2 of 3 indexes run at once, on the pool's nodes.
        done: set[int] = set()
        deadline = time.monotonic() + 180
        while len(done) < tasks and time.monotonic() < deadline:
            for pod in _pods(layout, name):
                idx = int(pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
                if pod["status"].get("phase") == "Running" and idx not in done:
                    penv = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
                    # The Job controller gives each pod its index, where the workload reads it (workloads/batch/taskenv.py).
                    assert "batch.kubernetes.io/job-completion-index" in str(penv["JOB_COMPLETION_INDEX"]), penv
                    assert pod["spec"]["nodeName"].startswith("batch-l4-"), pod["spec"]["nodeName"]
                    _exit_zero(layout, pod)
                    done.add(idx)
            time.sleep(0.5)
        assert done == set(range(tasks)), f"indexes that ran: {sorted(done)}"
        finished = wait_for("the Job Complete", lambda: (lambda j: j if any(
            c["type"] == "Complete" and c["status"] == "True" for c in (j.get("status") or {}).get("conditions", []))
            else None)(get(layout, f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")))
        assert finished["status"]["succeeded"] == tasks
        assert finished["status"].get("completedIndexes") == f"0-{tasks - 1}"
        wl = wait_for("Kueue's Workload Finished", lambda: (lambda w: w if condition(w, "Finished").get("status") == "True"
                                                             else None)(_workload(layout, name)))
        print(f"\n  BatchJob {name}: admitted on {flavors}, {tasks} indexes completed "
              f"{time.monotonic() - started:.1f} s after admission; Workload Finished: {condition(wl, 'Finished').get('reason')}")
    finally:
        destroyed = stack.destroy()
        assert destroyed.summary.result == "succeeded", destroyed.stdout[-3000:]
