"""Network and control-plane policies.

- ``network-ingress-restricted``: no ingress from the whole internet (``0.0.0.0/0``, ``::/0``)
  to an admin or data port (``restrictedPorts``; all protocols or a port range that spans one
  counts) on any route: inline ``ingress`` of ``aws.ec2.SecurityGroup``, ``aws.ec2.
  SecurityGroupRule`` (type ingress), ``aws.vpc.SecurityGroupIngressRule``, aws-native
  ``ec2:SecurityGroup`` / ``ec2:SecurityGroupIngress``, and GCP ``compute.Firewall`` (INGRESS).
- ``cluster-hardened``: the Kubernetes control plane and nodes are not exposed. EKS (classic,
  aws-native and the pulumi-eks component): the public
  API endpoint, when on, is limited by ``vpcConfig.publicAccessCidrs`` (not the world) unless
  ``allowPublicEndpoint``. GKE: no legacy ABAC, private nodes, a network policy engine
  (``networkPolicy.enabled`` or Dataplane V2) unless ``requireNetworkPolicy`` is off, shielded
  nodes not turned off, and pods cannot reach the node's service account through the metadata
  server (Workload Identity on the cluster, no ``GCE_METADATA`` mode on the cluster or a pool).
"""

from __future__ import annotations

from typing import Any

from policies.framework import Config, ResourceRule
from policies.podsecurity import as_dict
from policies.resources import UNKNOWN, ResourceView, dig, label, number

WORLD = ("0.0.0.0/0", "::/0")
EKS_TYPES = ("aws:eks/cluster:Cluster", "aws-native:eks:Cluster", "eks:index:Cluster")
DEFAULT_PORTS = [
    22,
    3389,
    2375,
    2376,
    2379,
    2380,
    5432,
    3306,
    6379,
    6443,
    8265,
    8888,
    9200,
    10250,
    11211,
    27017,
    5000,
    9090,
]
_ALL_PROTOCOLS = ("-1", "all", "ALL")


def _open_ports(protocol: Any, lo: Any, hi: Any, ports: list[int]) -> list[int]:
    if str(protocol) in _ALL_PROTOCOLS:
        return list(ports)
    if str(protocol).lower() in ("icmp", "icmpv6", "1", "58"):
        return []
    if lo is None:
        return list(ports)
    a, b = number(lo), number(hi if hi is not None else lo)
    if a is None or b is None:
        return list(ports)
    if a <= 0 and b in (0, -1, 65535):
        return list(ports)
    return [p for p in ports if a <= p <= b]


def _world(*cidr_lists: Any) -> list[str]:
    out: list[str] = []
    for c in cidr_lists:
        for x in c if isinstance(c, list) else [c]:
            if isinstance(x, str) and x.strip() in WORLD:
                out.append(x.strip())
    return out


def _ingress_rules(view: ResourceView) -> list[tuple[str, list[str], Any, Any, Any]]:
    """(where, world cidrs, protocol, from port, to port) of every world-open ingress rule."""
    p, t, out = view.props, view.type, []
    if t == "aws:ec2/securityGroup:SecurityGroup":
        for i, r in enumerate(p.get("ingress") or []):
            if isinstance(r, dict):
                out.append(
                    (
                        f"ingress[{i}]",
                        _world(r.get("cidrBlocks"), r.get("ipv6CidrBlocks")),
                        r.get("protocol"),
                        r.get("fromPort"),
                        r.get("toPort"),
                    )
                )
    elif t == "aws:ec2/securityGroupRule:SecurityGroupRule" and p.get("type") == "ingress":
        out.append(
            (
                "",
                _world(p.get("cidrBlocks"), p.get("ipv6CidrBlocks")),
                p.get("protocol"),
                p.get("fromPort"),
                p.get("toPort"),
            )
        )
    elif t == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        out.append(
            ("", _world(p.get("cidrIpv4"), p.get("cidrIpv6")), p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"))
        )
    elif t == "aws-native:ec2:SecurityGroup":
        for i, r in enumerate(p.get("securityGroupIngress") or []):
            if isinstance(r, dict):
                out.append(
                    (
                        f"securityGroupIngress[{i}]",
                        _world(r.get("cidrIp"), r.get("cidrIpv6")),
                        r.get("ipProtocol"),
                        r.get("fromPort"),
                        r.get("toPort"),
                    )
                )
    elif t == "aws-native:ec2:SecurityGroupIngress":
        out.append(
            ("", _world(p.get("cidrIp"), p.get("cidrIpv6")), p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"))
        )
    elif (
        t == "gcp:compute/firewall:Firewall"
        and str(p.get("direction") or "INGRESS").upper() == "INGRESS"
        and p.get("disabled") is not True
    ):
        world = _world(p.get("sourceRanges"))
        for i, a in enumerate(p.get("allows") or []):
            if not isinstance(a, dict):
                continue
            specs: list[str | None] = [str(x) for x in a.get("ports") or []] or [None]
            for s in specs:
                lo, _, hi = (s or "").partition("-")
                out.append((f"allows[{i}]", world, a.get("protocol"), lo or None, hi or lo or None))
    return [r for r in out if r[1]]


def check_ingress(view: ResourceView, cfg: Config) -> list[str]:
    ports = [int(x) for x in cfg.get("restrictedPorts") or DEFAULT_PORTS]
    out = []
    for where, cidrs, proto, lo, hi in _ingress_rules(view):
        hit = _open_ports(proto, lo, hi, ports)
        if hit:
            at = f" ({where})" if where else ""
            out.append(
                f"{label(view)} admits {', '.join(dict.fromkeys(cidrs))} to ports {hit}{at}. Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer."
            )
    return out


NETWORK_INGRESS_RESTRICTED = ResourceRule(
    name="network-ingress-restricted",
    description="Checks whether security groups and firewalls keep admin and data ports closed to the whole internet.",
    check=check_ingress,
    schema={
        "restrictedPorts": {
            "type": "array",
            "items": {"type": "integer"},
            "default": DEFAULT_PORTS,
            "description": "Admin and data ports that must not be open to 0.0.0.0/0 or ::/0.",
        }
    },
)


def _gke(view: ResourceView, cfg: Config) -> list[str]:
    p, out = view.props, []
    if view.type == "gcp:container/nodePool:NodePool":
        if dig(p, "nodeConfig.workloadMetadataConfig.mode") == "GCE_METADATA":
            out.append(
                f"{label(view)} exposes the node's service account to pods (nodeConfig.workloadMetadataConfig.mode GCE_METADATA). Set it to GKE_METADATA."
            )
        if dig(p, "networkConfig.enablePrivateNodes") is False:
            out.append(
                f"{label(view)} gives its nodes public IPs (networkConfig.enablePrivateNodes: false). Set it to true."
            )
        return out
    if p.get("enableAutopilot") is True:
        return out
    if p.get("enableLegacyAbac") is True:
        out.append(f"{label(view)} turns on legacy ABAC. Set enableLegacyAbac: false and grant access with RBAC.")
    private = dig(p, "privateClusterConfig.enablePrivateNodes")
    if private is not True and private is not UNKNOWN and dig(p, "networkConfig.enablePrivateNodes") is not True:
        out.append(f"{label(view)} gives its nodes public IPs. Set privateClusterConfig.enablePrivateNodes: true.")
    if (
        cfg.get("requireNetworkPolicy", True)
        and dig(p, "networkPolicy.enabled") is not True
        and p.get("datapathProvider") != "ADVANCED_DATAPATH"
    ):
        out.append(
            f"{label(view)} enforces no network policy. Set datapathProvider: ADVANCED_DATAPATH (Dataplane V2) or networkPolicy.enabled: true."
        )
    if p.get("enableShieldedNodes") is False:
        out.append(f"{label(view)} turns shielded nodes off. Set enableShieldedNodes: true.")
    mode = dig(p, "nodeConfig.workloadMetadataConfig.mode")
    if mode == "GCE_METADATA" or (not dig(p, "workloadIdentityConfig.workloadPool") and mode != "GKE_METADATA"):
        out.append(
            f"{label(view)} lets pods use the node's service account through the metadata server. Set workloadIdentityConfig.workloadPool and nodeConfig.workloadMetadataConfig.mode: GKE_METADATA."
        )
    return out


def check_cluster(view: ResourceView, cfg: Config) -> list[str]:
    p = view.props
    if view.type in EKS_TYPES:
        # aws.eks.Cluster: vpcConfig; aws-native: resourcesVpcConfig; the pulumi-eks component: top level.
        vpc = as_dict(p.get("vpcConfig")) or as_dict(p.get("resourcesVpcConfig")) or dict(p)
        public = vpc.get("endpointPublicAccess")
        cidrs = vpc.get("publicAccessCidrs")
        allowed = bool(cfg.get("allowPublicEndpoint", False))
        if public is not False and public is not UNKNOWN and not allowed and (cidrs is None or _world(cidrs)):
            return [
                f"{label(view)} serves its API endpoint to the whole internet (endpointPublicAccess on, publicAccessCidrs {cidrs or 'unset (0.0.0.0/0)'}). Set endpointPublicAccess: false (private_endpoint), or limit publicAccessCidrs to known ranges."
            ]
        return []
    if view.type in ("gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"):
        return _gke(view, cfg)
    return []


CLUSTER_HARDENED = ResourceRule(
    name="cluster-hardened",
    description="Checks whether Kubernetes control planes and nodes are not exposed: EKS endpoint not open to the world; GKE without legacy ABAC, with private and shielded nodes, a network policy engine and no node service account reachable from pods.",
    check=check_cluster,
    schema={
        "allowPublicEndpoint": {
            "type": "boolean",
            "default": False,
            "description": "Allow an EKS API endpoint open to 0.0.0.0/0 (e.g. a dev cluster driven from laptops).",
        },
        "requireNetworkPolicy": {
            "type": "boolean",
            "default": True,
            "description": "Require a network policy engine on GKE (Dataplane V2 or networkPolicy.enabled).",
        },
    },
)
