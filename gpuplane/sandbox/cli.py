"""``gpuplane sandbox up | down | status | env``: a local GPU cluster with no cloud.

    gpuplane sandbox up                      # builds the programs on first use, then starts in seconds
    eval $(gpuplane sandbox env)             # KUBECONFIG, a local Pulumi backend, PATH with pulumi/kubectl/helm
    kubectl get nodes -L gpuplane.dev/pool
    gpuplane sandbox down                    # stops everything; --purge also deletes the state folder
    gpuplane sandbox up --name b --port 16463   # a second sandbox beside the first
    gpuplane sandbox up --controllers        # also the real Kueue and JobSet controller managers
    gpuplane sandbox jobs                    # what Kueue decided about each job (admitted, pending and why)

Exit codes: 0 success; 1 the sandbox failed while starting (its log is named); 2 a usage or set-up
problem (one line: cause and fix), with nothing left running.
"""

from __future__ import annotations

import json

import typer

from gpuplane.sandbox import cluster, toolchain

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="A local Kubernetes control plane with simulated GPU nodes (etcd, kube-apiserver, "
                       "controller-manager, scheduler, kwok), built from their Go modules.")

NameOpt = typer.Option(cluster.DEFAULT_NAME, "--name", "-n", help="Sandbox name (its state folder).")


def _fail(message: str, code: int = 2) -> typer.Exit:
    from gpuplane.errors import fail

    return fail(message, code)


def _layout(name: str, port: int | None = None, controllers: bool | None = None) -> cluster.Layout:
    try:
        return cluster.load_layout(name, port, controllers=controllers)
    except cluster.SandboxError as e:
        raise _fail(str(e)) from None


@app.command()
def up(
    name: str = NameOpt,
    port: int = typer.Option(cluster.DEFAULT_PORT, "--port", "-p", help="kube-apiserver's port; the sandbox uses this and the next five (eleven with --controllers)."),
    controllers: bool = typer.Option(False, "--controllers", help="Also run the Kueue and JobSet controller managers "
                                     "(their CRDs and webhooks from the pinned charts), which admit and run what gpuplane's "
                                     "TrainingJob and SpotTrainingCluster emit, and Karpenter's kwok provider, which "
                                     "provisions nodes for the NodePools a Karpenter GpuNodePool emits."),
    knative: bool = typer.Option(False, "--knative", help="Also run Knative Serving's controller (v1.21, no networking "
                                 "layer): it reconciles an InferenceEndpoint's Knative Service to a Revision, a "
                                 "PodAutoscaler and a Deployment; Routes never become Ready."),
    build: bool = typer.Option(True, "--build/--no-build", help="Build missing programs first (`make engine`)."),
    timeout: float = typer.Option(90.0, "--timeout", help="Seconds to wait for each step."),
) -> None:
    """Start the sandbox (idempotent per state folder; a running one is reported, not restarted)."""
    layout = _layout(name, port, controllers)
    bindir = toolchain.bin_dir()
    wanted = (toolchain.SANDBOX_BINARIES + (("helm", "kueue", "jobset", "karpenter-kwok") if controllers else ())
              + (("knative-serving-controller",) if knative else ()))
    try:
        # Cheap checks first, so a running sandbox or a busy port is reported before any build.
        if cluster.status(layout)["state"] in ("running", "partial", "stale") or cluster.busy_ports(layout):
            cluster.preflight(layout, bindir)
        if build and toolchain.missing(wanted, bindir):
            typer.echo(f"building the sandbox's programs into {bindir} (once) ...")
            results = toolchain.build(toolchain.missing(wanted, bindir))
            failed = [r for r in results if r.status in ("failed", "blocked")]
            if failed:
                raise _fail(f"{failed[0].name} did not build: {failed[0].detail.splitlines()[-1] if failed[0].detail else ''}; "
                            "see the output above, fix it, then run `make engine`")
        typer.echo(f"starting sandbox '{layout.name}' on {cluster.HOST}:{layout.port}-{layout.port + len(layout.ports) - 1}"
                   f"{' with Kueue, JobSet and Karpenter' if controllers else ''} ...")
        seconds = cluster.up(layout, bindir, echo=typer.echo, timeout_s=timeout)
        if knative:
            from gpuplane.sandbox import knative as knative_serving

            try:
                seconds += knative_serving.start(layout, bindir, echo=typer.echo, timeout_s=timeout)
            except BaseException:
                cluster.down(layout)
                raise
    except toolchain.ToolchainError as e:
        raise _fail(str(e)) from None
    except cluster.SandboxError as e:
        # Preflight problems are the user's to fix (2); a process dying while starting is 1.
        raise _fail(str(e), 1 if "exited while starting" in str(e) or "timed out" in str(e) else 2) from None
    typer.echo(f"sandbox '{layout.name}' is up in {seconds:.1f} s: {layout.server}")
    typer.echo(f"use it: eval $(gpuplane sandbox env{'' if name == cluster.DEFAULT_NAME else ' --name ' + name})")


@app.command()
def down(
    name: str = NameOpt,
    purge: bool = typer.Option(False, "--purge", help="Also delete the state folder (cluster data, PKI, Pulumi state)."),
) -> None:
    """Stop every process of the sandbox and free its ports."""
    layout = _layout(name)
    try:
        result = cluster.down(layout, purge=purge)
    except cluster.SandboxError as e:
        raise _fail(str(e)) from None
    what = ", ".join(result["stopped"]) or "nothing was running"
    typer.echo(f"sandbox '{name}' down ({what}){'; state folder removed' if result['purged'] else ''}")


@app.command()
def status(
    name: str = NameOpt,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show whether the sandbox runs, its processes and ports. Exit 0 when running, 1 otherwise."""
    layout = _layout(name)
    try:
        st = cluster.status(layout)
    except cluster.SandboxError as e:
        raise _fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    else:
        typer.echo(f"sandbox '{name}': {st['state']}" + (f" ({st.get('dir')})" if st.get("dir") else ""))
        for proc, info in st["processes"].items():
            typer.echo(f"  {proc:24} pid {info['pid']:>7}  {'running' if info['alive'] else 'gone'}  port {st['ports'].get(proc, '-')}")
    raise typer.Exit(0 if st["state"] == "running" else 1)


@app.command()
def env(name: str = NameOpt) -> None:
    """Print the exports a shell needs: `eval $(gpuplane sandbox env)`."""
    layout = _layout(name)
    if not layout.kubeconfig.is_file():
        raise _fail(f"sandbox '{name}' has never been started (no {layout.kubeconfig}); run `gpuplane sandbox up"
                    f"{'' if name == cluster.DEFAULT_NAME else ' --name ' + name}` first")
    for line in cluster.env_lines(layout, toolchain.bin_dir(), cluster.passphrase(layout)):
        typer.echo(line)


@app.command()
def jobs(
    name: str = NameOpt,
    namespace: str = typer.Option(None, "--namespace", help="Only this namespace (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """What Kueue decided about each job: admitted (flavors), pending or inadmissible (Kueue's message), evicted,
    finished. Exit 0, or 1 when a job is inadmissible (it would wait forever)."""
    from gpuplane.sandbox import jobs as kjobs

    layout = _layout(name)
    if cluster.status(layout)["state"] != "running":
        raise _fail(f"sandbox '{name}' is not running; start it with `gpuplane sandbox up --controllers"
                    f"{'' if name == cluster.DEFAULT_NAME else ' --name ' + name}`")
    try:
        rows = kjobs.job_rows(kjobs.list_workloads(layout, namespace))
    except cluster.SandboxError as e:
        raise _fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        for line in kjobs.format_rows(rows):
            typer.echo(line)
    raise typer.Exit(1 if any(r.state == "inadmissible" for r in rows) else 0)
