"""The real Kueue v0.19.2 and JobSet v0.12.0 decide what gpuplane emits (`gpuplane sandbox up --controllers`).

Each test runs `pulumi up` of a training stack (KubernetesCluster on the existing-cluster backend,
SpotTrainingCluster with its GpuNodePools, TrainingJobs; tests/engine/training_lane.py) on one shared sandbox
that runs both controller managers, and takes the controllers' own status as the evidence: Workload
conditions and admissions, ClusterQueue usage, Events, and where the scheduler bound the JobSet's pods. Every
test destroys its stack, so the next one starts from the same cluster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import dry_run, training_lane
from tests.engine.training_lane import TrainingStack, bound, condition, pods_of, wait_for, workload_of

pytestmark = pytest.mark.engine

L4 = {"name": "l4", "accelerator": "L4", "accelerators_per_node": 1, "node_vcpus": 4, "node_memory_gib": 16}


@pytest.fixture
def lane(controllers_sandbox, tmp_path: Path) -> Iterator:
    """``up(stack)``: `pulumi up` of ``stack`` on the controllers sandbox; destroyed after the test."""
    charts = dry_run.charts_dir()
    if charts is None:
        pytest.skip("no chart archives (../shared/charts or $GPUPLANE_CHARTS_DIR)")
    stacks: list = []
    timings: dict[str, float] = {}

    def up(spec: TrainingStack, label: str = "up"):
        if not stacks:
            stacks.append(training_lane.select(tmp_path / "project", controllers_sandbox.env, spec.program(charts)))
        stack = stacks[0]
        stack.workspace.program = spec.program(charts)
        started = time.perf_counter()
        result = stack.up()
        timings[label] = time.perf_counter() - started
        assert result.summary.result == "succeeded", result.stdout[-3000:]
        return result

    up.timings = timings  # type: ignore[attr-defined]
    try:
        yield up
    finally:
        if stacks:
            started = time.perf_counter()
            destroyed = stacks[0].destroy()
            timings["destroy"] = time.perf_counter() - started
            assert destroyed.summary.result == "succeeded", destroyed.stdout[-3000:]
        print("\n  pulumi: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def _admitted(layout, ns: str, job: str):
    wl = workload_of(layout, ns, job)
    return wl if condition(wl, "Admitted").get("status") == "True" else None


@pytest.fixture
def nodes(controllers_sandbox) -> Iterator:
    """``nodes(pool, count)``: kwok GPU nodes for one test (its pool's own nodes), deleted after it. Request it
    before ``lane``, so the stack is destroyed while its nodes still exist (pods on a deleted node wait for the
    pod garbage collector's 40 s quarantine)."""
    made: list[str] = []

    def add(pool: str, count: int) -> dict[str, str]:
        made.extend(training_lane.add_nodes(controllers_sandbox.layout, pool, count))
        return {"gpuplane.dev/pool": pool}  # the owner's label that tells this pool's nodes apart: node_labels

    yield add
    training_lane.delete_nodes(controllers_sandbox.layout, made)


def test_a_four_node_training_job_is_admitted_as_one_gang_or_waits_with_kueues_reason(controllers_sandbox, nodes, lane, gpuplane):
    layout = controllers_sandbox.layout
    ns = "gang"
    pool_nodes = nodes("gang-l4", 4)
    stack = TrainingStack(name="gang", pools=[{**L4, "max_nodes": 4, "node_labels": pool_nodes}], teams=[{"name": "gang"}],
                          jobs=[{"name": "hold", "team": "gang", "nodes": 1}])
    lane(stack, "up: 1-node job")
    wait_for("the 1-node job admitted and its pod bound",
             lambda: _admitted(layout, ns, "hold") and len(bound(pods_of(layout, ns, "hold"))) == 1)

    # Quota left for 3 GPUs: the 4-node gang waits, whole, with Kueue's reason.
    stack.jobs.append({"name": "gang4", "team": "gang", "nodes": 4})
    lane(stack, "up: 4-node job")
    started = time.monotonic()
    reserved = wait_for("Kueue's reason for the waiting gang",
                        lambda: condition(workload_of(layout, ns, "gang4"), "QuotaReserved").get("message"))
    assert re.search(r"insufficient unused quota for nvidia\.com/gpu in flavor gang-l4-on-demand, 1 more needed", reserved), reserved
    while time.monotonic() - started < 5:  # nothing of the gang starts while it waits
        assert pods_of(layout, ns, "gang4") == [], "a pod of the waiting gang exists"
        time.sleep(0.5)
    shown = gpuplane("sandbox", "jobs", "--name", controllers_sandbox.name, "--namespace", ns, env=controllers_sandbox.env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"gang/JobSet/gang4\s+gang\s+pending", shown.stdout), shown.stdout
    assert reserved in shown.stdout, shown.stdout

    # The 1-node job goes: the gang is admitted at once, all four pods bound.
    stack.jobs = [j for j in stack.jobs if j["name"] != "hold"]
    lane(stack, "up: 1-node job removed")
    started = time.monotonic()
    wl = wait_for("the gang admitted", lambda: _admitted(layout, ns, "gang4"))
    pods = wait_for("all four pods bound", lambda: (lambda p: p if len(bound(p)) == 4 else None)(pods_of(layout, ns, "gang4")))
    admitted_after = time.monotonic() - started
    assignment = wl["status"]["admission"]["podSetAssignments"]
    assert [(a["count"], a["flavors"]["nvidia.com/gpu"]) for a in assignment] == [(4, "gang-l4-on-demand")], assignment
    # One pod per node of the pool (a g6.xlarge holds one such pod), none elsewhere: flavor and pods select its nodes.
    assert bound(pods) == [f"gang-l4-{i}" for i in range(4)], bound(pods)
    cq = training_lane.cluster_queue(layout, "gang")
    usage = {r["name"]: r["total"] for f in cq["status"]["flavorsReservation"] for r in f["resources"]}
    assert usage["nvidia.com/gpu"] == "4", cq["status"]
    print(f"\n  gang of 4 admitted and bound {admitted_after:.1f} s after `pulumi up` removed the 1-node job; nodes {bound(pods)}")


def test_a_team_borrows_idle_cohort_quota_and_the_owner_reclaims_it(controllers_sandbox, nodes, lane):
    layout = controllers_sandbox.layout
    teams = [{"name": "team-a", "gpu_quota": {"l4": 2}}, {"name": "team-b", "gpu_quota": {"l4": 2}}]
    stack = TrainingStack(name="coh", pools=[{**L4, "max_nodes": 4, "node_labels": nodes("coh-l4", 4)}], teams=teams,
                          jobs=[{"name": "a-big", "team": "team-a", "nodes": 4}])
    lane(stack, "up: team A's 4-node job")
    emitted = {q: training_lane.cluster_queue(layout, q)["spec"] for q in ("coh-team-a", "coh-team-b")}
    assert {s["cohortName"] for s in emitted.values()} == {"coh"}
    assert {s["preemption"]["reclaimWithinCohort"] for s in emitted.values()} == {"Any"}

    # Team A borrows team B's idle 2 GPUs.
    wait_for("team A's job admitted on borrowed quota", lambda: _admitted(layout, "team-a", "a-big"))
    cq_a = training_lane.cluster_queue(layout, "coh-team-a")
    gpu = next(r for f in cq_a["status"]["flavorsReservation"] for r in f["resources"] if r["name"] == "nvidia.com/gpu")
    assert (gpu["total"], gpu["borrowed"]) == ("4", "2"), cq_a["status"]

    # Team B submits: Kueue reclaims its nominal quota by preempting team A's job.
    stack.jobs.append({"name": "b-two", "team": "team-b", "nodes": 2})
    lane(stack, "up: team B's 2-node job")
    wait_for("team B's job admitted", lambda: _admitted(layout, "team-b", "b-two"), timeout=120)
    a = workload_of(layout, "team-a", "a-big")
    preempted, evicted = condition(a, "Preempted"), condition(a, "Evicted")
    assert preempted.get("reason") == "InCohortReclamation", a["status"]
    assert evicted.get("reason") == "Preempted", a["status"]
    b = workload_of(layout, "team-b", "b-two")
    # The order the ClusterQueues' settings imply: A admitted, A preempted to reclaim B's quota, B admitted.
    a_events = [(e["reason"], e["message"]) for e in training_lane.events_for(layout, "team-a", a["metadata"]["name"])]
    reasons = [r for r, _ in a_events]
    assert reasons.index("Admitted") < reasons.index("Preempted"), a_events
    assert any("reclamation within the cohort" in m for r, m in a_events if r == "Preempted"), a_events
    assert preempted["lastTransitionTime"] <= condition(b, "Admitted")["lastTransitionTime"]
    # Team A's job goes back to waiting, whole: 2 GPUs are not enough for its 4 nodes.
    wait_for("team A's job requeued and waiting",
             lambda: condition(workload_of(layout, "team-a", "a-big"), "QuotaReserved").get("status") == "False"
             and not pods_of(layout, "team-a", "a-big"), timeout=60)
    assert [n.rsplit("-", 1)[0] for n in bound(pods_of(layout, "team-b", "b-two"))] == ["coh-l4", "coh-l4"]
    print(f"\n  team-a events: {reasons}")


def test_a_job_beyond_every_flavor_is_reported_inadmissible_with_kueues_message(controllers_sandbox, lane, gpuplane):
    from components.errors import ComponentInputError
    from components.training_job.jobset import jobset_manifest
    from components.training_job.spec import plan_training_job
    from tests.engine.training_lane import CHECKPOINTS, IMAGE

    layout = controllers_sandbox.layout
    stack = TrainingStack(name="big", pools=[{**L4, "max_nodes": 2}], teams=[{"name": "big"}])
    lane(stack, "up: cluster with a 2-node pool")
    # gpuplane's own planner refuses a TrainingJob of 3 nodes on this pool before anything exists ...
    from components.cluster import ClusterFacts
    from components.training import plan_training_cluster

    facts = ClusterFacts(cloud="kubernetes", name="sandbox", region=None, zones=(), autoscaler="none")
    small = plan_training_cluster("big", {"cluster": None, "pools": stack.pools, "teams": stack.teams,  # type: ignore[typeddict-item]
                                          "capacity_fallback": ["on_demand"], "checkpoint_bucket": {"url": CHECKPOINTS}}, facts)
    with pytest.raises(ComponentInputError, match=r"nodes.*3.*beyond pool 'l4', which grows to 2 nodes"):
        plan_training_job("big3", {"team": "big", "image": IMAGE, "nodes": 3}, small)  # type: ignore[typeddict-item]
    # ... and a JobSet that reaches the queue another way (kubectl, another tool) is not left pending silently:
    # Kueue calls it inadmissible and `gpuplane sandbox jobs` says so with Kueue's message.
    bigger = plan_training_cluster("big", {"cluster": None, "pools": [{**L4, "max_nodes": 3}], "teams": stack.teams,  # type: ignore[typeddict-item]
                                           "capacity_fallback": ["on_demand"], "checkpoint_bucket": {"url": CHECKPOINTS}}, facts)
    manifest = jobset_manifest(plan_training_job("big3", {"team": "big", "image": IMAGE, "nodes": 3}, bigger),  # type: ignore[typeddict-item]
                               IMAGE, f"{CHECKPOINTS}/big/big3")
    code, body = training_lane.cluster.api(layout, "POST", "/apis/jobset.x-k8s.io/v1alpha2/namespaces/big/jobsets", manifest)
    assert code == 201, body
    try:
        message = wait_for("Kueue's verdict", lambda: condition(workload_of(layout, "big", "big3"), "QuotaReserved").get("message"))
        assert "maximum capacity" in message, message
        shown = gpuplane("sandbox", "jobs", "--name", controllers_sandbox.name, env=controllers_sandbox.env)
        assert shown.returncode == 1, (shown.stdout, shown.stderr)
        assert re.search(r"big/JobSet/big3\s+big\s+inadmissible", shown.stdout), shown.stdout
        assert f"big/JobSet/big3: inadmissible (Pending): {message}" in shown.stdout, shown.stdout
        assert pods_of(layout, "big", "big3") == []
    finally:
        training_lane.cluster.api(layout, "DELETE", "/apis/jobset.x-k8s.io/v1alpha2/namespaces/big/jobsets/big3")


def test_spot_first_falls_back_to_on_demand_and_a_lost_spot_node_restarts_the_gang(controllers_sandbox):
    """Spot capacity is an EKS/GKE feature (the existing-cluster backend declares it unsupported: an existing
    cluster's nodes belong to its owner), and `pulumi up` of the EKS backend needs AWS. So this test plans a
    SpotTrainingCluster on EKS with Karpenter (pure, as `pulumi up` would), gives the sandbox kwok nodes carrying
    exactly the labels and taints its GpuNodePools give their nodes, and applies the Kueue objects and JobSets
    that the EKS backend hands to Pulumi (components/training/kueue.py, components/training_job/jobset.py)."""
    from components.cluster import ClusterFacts
    from components.training import plan_training_cluster
    from components.training.kueue import cluster_queues, local_queue, resource_flavor
    from components.training_job.jobset import jobset_manifest
    from components.training_job.spec import plan_training_job
    from gpuplane.sandbox.nodes import SandboxPool, node_objects
    from tests.engine.training_lane import IMAGE

    layout = controllers_sandbox.layout
    api = training_lane.cluster.api
    facts = ClusterFacts(cloud="aws", name="sandbox", region="us-east-1", zones=("us-east-1a", "us-east-1b"),
                         autoscaler="karpenter")
    plan = plan_training_cluster("spot", {"cluster": None, "pools": [{"name": "l4", "accelerator": "L4", "max_nodes": 2}],  # type: ignore[typeddict-item]
                                          "teams": [{"name": "spot"}], "checkpoint_bucket": {}}, facts)
    pool = plan.pools[0]
    assert [c.capacity for c in pool.capacities] == ["spot", "on_demand"]
    nodes: list[str] = []

    def add_node(capacity, index: int) -> str:
        it = capacity.node_plan.instance_type.name
        node = node_objects((SandboxPool(capacity.node_pool_name, it, capacity.capacity, index + 1),))[index]
        node["metadata"]["labels"].update(capacity.node_plan.labels)  # what the GpuNodePool's nodes carry
        code, body = api(layout, "POST", "/api/v1/nodes", node)
        assert code == 201, body
        nodes.append(node["metadata"]["name"])
        return str(node["metadata"]["name"])

    objects = [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spot"}}),
        ("/api/v1/namespaces/spot/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "trainer"}}),
        *((f"{training_lane.KUEUE}/resourceflavors", resource_flavor(plan, pool.name, c.capacity)) for c in pool.capacities),
        *((f"{training_lane.KUEUE}/clusterqueues", q) for q in cluster_queues(plan)),
        (f"{training_lane.KUEUE}/namespaces/spot/localqueues", local_queue(plan, plan.teams[0])),
    ]
    try:
        for c in pool.capacities:
            for i in range(c.max_nodes):
                add_node(c, i)
        for path, body in objects:
            code, out = api(layout, "POST", path, body)
            assert code == 201, (path, out)
        for job in ("first", "second"):
            manifest = jobset_manifest(plan_training_job(job, {"team": "spot", "image": IMAGE, "nodes": 2}, plan),  # type: ignore[typeddict-item]
                                       IMAGE, f"s3://checkpoints/spot/{job}")
            code, out = api(layout, "POST", "/apis/jobset.x-k8s.io/v1alpha2/namespaces/spot/jobsets", manifest)
            assert code == 201, out
            wait_for(f"{job} admitted", lambda job=job: _admitted(layout, "spot", job))

        def flavor(job: str) -> str:
            wl = workload_of(layout, "spot", job)
            return str(wl["status"]["admission"]["podSetAssignments"][0]["flavors"]["nvidia.com/gpu"])

        # Spot first; with the spot flavor's quota taken, the next gang goes to on-demand, as the docs promise.
        assert (flavor("first"), flavor("second")) == ("spot-l4-spot", "spot-l4-on-demand")

        def running(job: str, count: int = 2):
            pods = pods_of(layout, "spot", job)
            ready = [p for p in pods if p["spec"].get("nodeName") and p["status"].get("phase") == "Running"]
            return pods if len(ready) == count == len(pods) else None

        first = wait_for("the spot gang running", lambda: running("first"))
        second = wait_for("the on-demand gang running", lambda: running("second"))
        assert {p["spec"]["nodeName"].rsplit("-", 1)[0] for p in first} == {"spot-l4-spot"}
        assert {p["spec"]["nodeName"].rsplit("-", 1)[0] for p in second} == {"spot-l4-on-demand"}

        # The spot node under rank 1 is reclaimed; Karpenter would bring a new spot node: the test adds one.
        before = {p["metadata"]["uid"] for p in first}
        lost = next(p["spec"]["nodeName"] for p in first if p["metadata"]["name"].startswith("first-worker-0-1-"))
        started = time.monotonic()
        assert api(layout, "DELETE", f"/api/v1/nodes/{lost}")[0] == 200
        add_node(pool.capacities[0], 2)
        # The pod garbage collector fails the orphaned pod with DisruptionTarget (after its 40 s quarantine);
        # the Job's FailJob rule and the JobSet's restartGangOnDisruption rule restart the whole gang, uncounted.
        js = wait_for("the JobSet restarting the gang", lambda: (lambda j: j if j["status"].get("restarts") == 1 else None)(
            training_lane.get(layout, "/apis/jobset.x-k8s.io/v1alpha2/namespaces/spot/jobsets/first")), timeout=150)
        assert not js["status"].get("restartsCountTowardsMax"), js["status"]
        reformed = wait_for("the gang re-formed on spot", lambda: running("first"), timeout=60)
        restarted_after = time.monotonic() - started
        assert not before & {p["metadata"]["uid"] for p in reformed}, "a pod of the old gang survived the restart"
        assert {p["spec"]["nodeName"].rsplit("-", 1)[0] for p in reformed} == {"spot-l4-spot"}
        job_events = [e["message"] for e in training_lane.events_for(layout, "spot", "first-worker-0") if e["reason"] == "PodFailurePolicy"]
        assert any("has condition DisruptionTarget matching FailJob rule" in m for m in job_events), job_events
        wl = workload_of(layout, "spot", "first")
        assert condition(wl, "Admitted")["status"] == "True" and flavor("first") == "spot-l4-spot"
        wait_for("Kueue seeing the gang ready again",
                 lambda: condition(workload_of(layout, "spot", "first"), "PodsReady").get("status") == "True")
        print(f"\n  spot gang restarted and re-formed {restarted_after:.0f} s after its node was deleted "
              "(pod GC quarantine 40 s)")
    finally:
        for job in ("first", "second"):
            api(layout, "DELETE", f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/spot/jobsets/{job}")
        wait_for("the JobSets' workloads gone", lambda: not training_lane.get(layout, f"{training_lane.KUEUE}/namespaces/spot/workloads")["items"])
        for path, body in reversed(objects):
            api(layout, "DELETE", f"{path}/{body['metadata']['name']}")
        for name in nodes:
            api(layout, "DELETE", f"/api/v1/nodes/{name}")


def test_a_controller_that_dies_while_starting_stops_the_sandbox_and_names_its_log(controllers_sandbox, sandbox_root, gpuplane, tmp_path):
    """`up --controllers` with a kueue that exits at once (the real base programs and JobSet): exit 1, one line
    naming Kueue's log, and nothing left running or listening."""
    import os

    from gpuplane.sandbox import cluster, toolchain
    from tests.engine.conftest import free_base_port

    real = toolchain.bin_dir()
    fake = tmp_path / "engine" / real.parent.name / "bin"  # the same cache key under another cache root
    fake.mkdir(parents=True)
    for f in real.iterdir():
        if f.name != "kueue":
            (fake / f.name).symlink_to(f)
    (fake / "kueue").write_text("#!/bin/sh\necho 'kueue: unable to load the configuration: boom' >&2\nexit 3\n")
    (fake / "kueue").chmod(0o755)
    env = {**os.environ, "GPUPLANE_SANDBOX_HOME": str(sandbox_root), "GPUPLANE_ENGINE_CACHE": str(tmp_path / "engine")}
    port = free_base_port(controllers_sandbox.port + 40)
    up = gpuplane("sandbox", "up", "--name", "dies", "--port", str(port), "--controllers", "--no-build", env=env)
    layout = cluster.load_layout("dies", port, sandbox_root)
    assert up.returncode == 1, (up.stdout, up.stderr)
    error = up.stderr.strip()
    assert "\n" not in error, error
    assert f"kueue exited while starting (code 3): kueue: unable to load the configuration: boom (full log: {layout.path('logs', 'kueue.log')})" in error
    assert cluster.status(layout)["state"] == "stopped" and not layout.pids_file.exists()
    assert cluster.busy_ports(layout) == []
