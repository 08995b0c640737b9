"""TwoTierEndpoint: a steady tier on a GpuNodePool and a scale-to-zero serverless burst tier, behind one address.

What it creates (all children of the component):

- ``{name}-steady``: an ``InferenceEndpoint`` on Knative on the given cluster and GPU pool, kept
  at ``steady_replicas`` (Knative min-scale; up to ``steady_max_replicas``). Its GPU minimum is
  exempt from ``endpoint-scale-to-zero`` with a reason (the burst tier is what scales to zero);
  the ``two-tier-steady-bounded`` policy caps that minimum instead.
- ``{name}-burst``: an ``InferenceEndpoint`` on ``cloud-run`` (L4, min instances 0; Cloud Run
  queues requests while an instance starts) or ``sagemaker`` (real-time inference components
  scaled to 0 copies), private, with IAM authentication.
- ``{name}-router``: a Deployment (``router_replicas``) and ClusterIP Service in the steady
  cluster running ``python -m workloads.serving.router --mode overflow`` from the serving image:
  POSTs go to the steady tier until the router's in-flight count to it reaches the spill
  threshold (divided over the router replicas), then to the burst tier. The Service is the
  endpoint's one address (``url``).
- ``{name}-router-proxy``: an Envoy sidecar in each router pod, the router's hop to the burst
  tier on ``127.0.0.1``: TLS to the cloud endpoint plus the cloud's request authentication —
  ``envoy.filters.http.gcp_authn`` (an ID token for the Cloud Run URL from the metadata server,
  as the router's Workload Identity service account, which gets ``roles/run.invoker`` on the
  burst service) or ``envoy.filters.http.aws_request_signing`` (SigV4 for
  ``runtime.sagemaker.<region>.amazonaws.com``, as the router's IRSA role, which may
  ``sagemaker:InvokeEndpoint`` the burst endpoint only). Its config is a ConfigMap.

Which proxy or gateway, and why (what each platform can do):

- The overflow rule needs the steady tier's load, which no managed front door reads. Gateway API
  ``HTTPRoute`` ``backendRefs`` carry static ``weight``s only; the Google Cloud Application Load
  Balancer splits between backend services by static weights (``weightedBackendServices``) and
  spills over on capacity only between backends of one backend service, which cannot mix a GKE
  NEG with Cloud Run's serverless NEG; an AWS ALB splits by static target-group weights and
  cannot target SageMaker at all (SageMaker is invoked through its SigV4 runtime API, not an IP).
  So the overflow decision is the router's, a small Deployment beside the steady tier.
- The cloud-specific hop (TLS, ID tokens, SigV4) is Envoy's, an existing proxy with filters made
  for exactly that, rather than credentials code in the router. Envoy signs before it routes, so
  the SageMaker path (``/endpoints/<name>/invocations``) and the inference-component header are
  set by the router (``--backend-path``, ``--backend-header``), and Envoy only rewrites the host.
- Inside the steady tier, Knative's activator and Kourier (Envoy) spread requests over replicas.

Deliberately not done: a public address (the router Service is cluster-internal; put the
cluster's own gateway in front of it if needed), queue-depth polling in the cluster (a Knative
Service's ``/metrics`` reaches one replica, so the router counts its own in-flight requests),
SageMaker async as the burst tier (``InvokeEndpointAsync`` takes an S3 input location and answers
later: a synchronous spill cannot wait on it), a burst tier on another cloud than the steady
cluster (the router's identity is the cluster's: IRSA on EKS, Workload Identity on GKE).
"""

from __future__ import annotations

import pulumi

from components.inference import InferenceEndpoint
from components.two_tier.spec import TYPE_TOKEN, TwoTierEndpointArgs, TwoTierPlan, plan_two_tier


class TwoTierEndpoint(pulumi.ComponentResource):
    """A steady tier plus a scale-to-zero burst tier behind one router address; see the module docstring.

    Outputs: ``url`` (the router Service's in-cluster URL), ``steady_url``, ``burst_url``,
    ``spill_threshold``, ``implementation``. Attributes ``plan``, ``steady``, ``burst``.
    """

    plan: TwoTierPlan
    url: pulumi.Output[str]
    """The router Service's in-cluster URL: the one address clients call."""
    steady_url: pulumi.Output[str]
    """The steady (Knative, on the GPU pool) tier's own URL."""
    burst_url: pulumi.Output[str]
    """The burst (scale-to-zero) tier's own URL or endpoint name."""
    spill_threshold: pulumi.Output[int]
    """In-flight requests on the steady tier past which the router sends requests to the burst tier."""
    implementation: pulumi.Output[str]
    """How the two tiers are built, e.g. ``knative+cloud-run`` or ``knative+sagemaker``."""
    steady: InferenceEndpoint
    burst: InferenceEndpoint

    def __init__(self, name: str, args: TwoTierEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_two_tier(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        child = pulumi.ResourceOptions(parent=self)
        self.steady = InferenceEndpoint(f"{name}-steady", plan.steady_args, child)
        self.burst = InferenceEndpoint(f"{name}-burst", plan.burst_args, child)
        from components.two_tier.router import create_router

        self.url = create_router(self, name, plan, args["cluster"], args["image"], self.steady, self.burst)
        self.steady_url, self.burst_url = self.steady.url, self.burst.url
        self.spill_threshold = pulumi.Output.from_input(plan.spill_threshold)
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.register_outputs({"url": self.url, "steady_url": self.steady_url, "burst_url": self.burst_url,
                               "spill_threshold": self.spill_threshold, "implementation": self.implementation})
