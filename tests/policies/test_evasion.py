"""Issue 19's evasion suite: each class, a compliant case and an evasion per route, exact messages.

The cases are in tests/policies/evasion_cases.py. Beside the table: the Helm route (rendered
with a real helm when one is installed; reported as unchecked when none is), exemptions that
cannot be exempted, and exempted findings listed when the same stack policy reports others.
"""

from __future__ import annotations

import pytest

from policies import exemptions, helm, pack, pods, storage, tagging
from policies.framework import StackRule, config_for, to_policy
from tests.policies.evasion_cases import CASES
from tests.policies.fixtures import TAGS, view

EXPECTED: dict[str, list[str]] = {
    "helm-exempt-namespace-ok": [],
    "helm-unpinned-unchecked": [
        "kubernetes:helm.sh/v3:Release 'r' (chart x.tgz) was not checked for pod security: the release does not pin chart and version. Put helm on PATH and the chart archive in shared/charts, or list the chart in exemptCharts."
    ],
    "pss-ok": [],
    "pss-jobset-privileged": [
        "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet 'w': spec.replicatedJobs[0].template.spec.template.spec.containers[0].securityContext.privileged is true. Remove it; request GPUs with resources.limits nvidia.com/gpu instead.",
    ],
    "pss-knative-host-network": [
        "kubernetes:serving.knative.dev/v1:Service 'w': spec.template.spec.hostNetwork is true. Remove it; pods must not share the node's namespaces.",
        "kubernetes:serving.knative.dev/v1:Service 'w': spec.template.spec.hostIPC is true. Remove it; pods must not share the node's namespaces.",
    ],
    "pss-argo-template": [
        "kubernetes:argoproj.io/v1alpha1:Workflow 'w': spec.hostPID is true. Remove it; pods must not share the node's namespaces.",
        "kubernetes:argoproj.io/v1alpha1:Workflow 'w': spec.templates[0].container.securityContext.capabilities.add has ['sys_admin'], beyond the baseline set. Remove them (allowed: ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']).",
    ],
    "pss-pytorchjob-capabilities": [
        "kubernetes:kubeflow.org/v1:PyTorchJob 'w': spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].securityContext.capabilities.add has ['CAP_NET_ADMIN', 'SYS_PTRACE'], beyond the baseline set. Remove them (allowed: ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']).",
    ],
    "pss-ray-hostpath-traversal": [
        "kubernetes:ray.io/v1:RayCluster 'w': spec.workerGroupSpecs[0].template.spec.volumes[0].hostPath mounts the host path /var/log/../../etc (resolves to /etc). Use a PersistentVolumeClaim, emptyDir or object storage instead.",
    ],
    "pss-custom-resource-host-port": [
        "kubernetes:example.com/v1:Widget 'w': spec.podTemplate.spec.containers[0].ports[0].hostPort is 8080. Remove it and expose the port through a Service.",
    ],
    "pss-persistent-volume-hostpath": [
        "kubernetes:core/v1:PersistentVolume 'pv': spec.hostPath mounts the host path /. Use a PersistentVolumeClaim, emptyDir or object storage instead.",
    ],
    "pss-profiles-sysctls": [
        "kubernetes:core/v1:Pod 'w': spec.securityContext.seccompProfile.type is 'Unconfined'. Set it to RuntimeDefault or Localhost.",
        "kubernetes:core/v1:Pod 'w': spec.securityContext.sysctls sets 'kernel.msgmax', which is not a safe sysctl. Remove it, or set it on the node.",
        "kubernetes:core/v1:Pod 'w': spec.containers[0].securityContext.windowsOptions.hostProcess is true. Remove it; HostProcess containers have full access to the node.",
        "kubernetes:core/v1:Pod 'w': spec.containers[0].securityContext.procMount is 'Unmasked'. Set it to 'Default' or remove it.",
        "kubernetes:core/v1:Pod 'w': spec.containers[0].securityContext.seLinuxOptions.type is 'spc_t'. Use container_t (or remove it).",
        "kubernetes:core/v1:Pod 'w': spec.containers[0].securityContext.appArmorProfile.type is 'Unconfined'. Set it to RuntimeDefault or Localhost.",
    ],
    "pss-apparmor-annotation": [
        "kubernetes:apps/v1:Deployment 'w': spec.template.metadata.annotations['container.apparmor.security.beta.kubernetes.io/main'] is 'unconfined'. Set it to runtime/default.",
    ],
    "pss-embedded-pod-spec-patch": [
        "kubernetes:argoproj.io/v1alpha1:Workflow 'w': spec.podSpecPatch(parsed).hostNetwork is true. Remove it; pods must not share the node's namespaces.",
        "kubernetes:argoproj.io/v1alpha1:Workflow 'w': spec.templates[0].podSpecPatch(parsed).hostPID is true. Remove it; pods must not share the node's namespaces.",
    ],
    "pss-configgroup-yaml-string": [
        "kubernetes:yaml/v2:ConfigGroup 'cg': yaml(parsed).spec.containers[0].securityContext.privileged is true. Remove it; request GPUs with resources.limits nvidia.com/gpu instead."
    ],
    "pss-exempt-namespace": [],
    "pss-kube-system-not-trusted-by-default": [
        "kubernetes:apps/v1:Deployment 'w': spec.template.spec.hostNetwork is true. Remove it; pods must not share the node's namespaces."
    ],
    "pss-restricted-ok": [],
    "pss-restricted": [
        "kubernetes:apps/v1:Deployment 'w': spec.template.spec.volumes[0] ('n') is a nfs volume, not allowed at the restricted level. Use a persistentVolumeClaim, emptyDir, configMap, secret or projected volume.",
        "kubernetes:apps/v1:Deployment 'w': container 'main' (spec.template.spec.containers[0]) does not set securityContext.allowPrivilegeEscalation: false. Set it.",
        "kubernetes:apps/v1:Deployment 'w': container 'main' (spec.template.spec.containers[0]) may run as root. Set securityContext.runAsNonRoot: true (pod or container).",
        "kubernetes:apps/v1:Deployment 'w': container 'main' (spec.template.spec.containers[0]) has no seccomp profile. Set securityContext.seccompProfile.type: RuntimeDefault (pod or container).",
        "kubernetes:apps/v1:Deployment 'w': container 'main' (spec.template.spec.containers[0]) does not drop all capabilities. Set securityContext.capabilities.drop: [ALL].",
        "kubernetes:apps/v1:Deployment 'w': spec.template.spec.containers[0].securityContext.runAsUser is 0 (root). Run as a non-zero user ID.",
    ],
    "pss-release-in-exempt-namespace": [],
    "keys-ok": [],
    "keys-env-value": [
        "kubernetes:apps/v1:Deployment 'w' passes static cloud credentials to container 'main' (S3_KEY). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity).",
    ],
    "keys-envfrom-secret": [
        "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet 'js' gives container 'main' the cloud keys ['AWS_SECRET_ACCESS_KEY', 'aws_access_key_id'] of Secret 'creds' (envFrom). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity).",
    ],
    "keys-configmap-env": [
        "kubernetes:apps/v1:Deployment 'w' gives container 'main' the cloud keys ['credentials'] of ConfigMap 'cfg' (env CREDS). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity).",
    ],
    "keys-mounted-secret": [
        "kubernetes:argoproj.io/v1alpha1:Workflow 'wf' gives container 'spec.templates[0].container' the cloud keys ['key.json'] of Secret 'gsa' (volume k). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity).",
    ],
    "keys-helm-values": [
        "kubernetes:helm.sh/v3:Release 'app' passes static cloud credentials to its chart (values.env[0], values.extraEnv.AWS_SECRET_ACCESS_KEY, values.note). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity)."
    ],
    "keys-other-namespace": [],
    "run-ok": [],
    "run-v2-binding": [
        "gcp:cloudrunv2/serviceIamBinding 'b' grants ['roles/run.invoker'] to ['allUsers'] on a Cloud Run service, so it is public and unauthenticated. Grant roles/run.invoker to specific principals.",
    ],
    "run-v2-policy": [
        "gcp:cloudrunv2/serviceIamPolicy 'pol' grants ['roles/run.invoker'] to ['allAuthenticatedUsers'] on a Cloud Run service, so it is public and unauthenticated. Grant roles/run.invoker to specific principals.",
    ],
    "run-v1-member": [
        "gcp:cloudrun/iamMember 'm' grants ['roles/run.invoker'] to ['allUsers'] on a Cloud Run service, so it is public and unauthenticated. Grant roles/run.invoker to specific principals.",
    ],
    "run-invoker-iam-disabled": [
        "gcp:cloudrunv2/service 'run' sets invokerIamDisabled: true, so anyone can invoke it. Remove it and grant roles/run.invoker to specific principals.",
    ],
    "run-project-iam": [
        "gcp:projects/iAMMember 'proj' grants ['roles/run.invoker'] to ['allUsers'] on the whole project, so every Cloud Run service in it is public. Grant the role to specific principals.",
    ],
    "enc-routes-ok": [],
    "enc-sse-targets-another-bucket": [
        "aws:s3/bucketV2 'ckpt' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).",
    ],
    "enc-sse-without-an-algorithm": [
        "aws:s3/bucketV2 'ckpt' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).",
    ],
    "enc-volumes-and-databases": [
        "aws:ebs/volume 'vol' is an unencrypted EBS volume. Set encrypted: true (with kmsKeyId for a customer-managed key).",
        "aws:ec2/launchTemplate 'lt' has unencrypted block devices (blockDeviceMappings[0].ebs.encrypted). Set encrypted to true on each, or turn on aws.ebs.EncryptionByDefault.",
        "aws:ec2/instance 'vm' has unencrypted block devices (rootBlockDevice.encrypted). Set encrypted to true on each, or turn on aws.ebs.EncryptionByDefault.",
        "aws:efs/fileSystem 'efs' is an unencrypted EFS file system. Set encrypted: true.",
        "aws:rds/cluster 'aurora' stores its database unencrypted. Set storageEncrypted: true (with kmsKeyId for a customer-managed key).",
        "aws-native:s3:Bucket 'native' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).",
    ],
    "enc-aws-native": [
        "aws-native:ec2:Volume 'nvol' is an unencrypted EBS volume. Set encrypted: true (with kmsKeyId for a customer-managed key).",
        "aws-native:rds:DbInstance 'ndb' stores its database unencrypted. Set storageEncrypted: true (with kmsKeyId for a customer-managed key).",
    ],
    "enc-ebs-default-on": [],
    "enc-gcs-cmk": [
        "gcp:storage/bucket 'd' has no customer-managed key (requireCustomerManagedKeys). Set encryption.defaultKmsKeyName.",
    ],
    "pub-routes-ok": [],
    "pub-policy-conditions-that-do-not-restrict": [
        "aws:s3/bucketPolicy 'tls-only' allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
        "aws:s3/bucketPolicy 'if-exists' allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
        "aws:s3/bucketPolicy 'any-ip' allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
        "aws:s3/bucketPolicy 'not-principal' allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
        "aws-native:s3:BucketPolicy 'native-pol' allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
    ],
    "pub-two-blocks-least-restrictive-wins": [
        "aws:s3/bucketV2 'ckpt' has a public access block with ['restrictPublicBuckets'] not true. Set all of blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets to true on every block that targets it.",
    ],
    "pub-block-names-another-bucket": [
        "aws:s3/bucketV2 'ckpt' has no public access block. Add an aws.s3.BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true.",
    ],
    "pub-account-block-other-account": [
        "aws:s3/accountPublicAccessBlock 'acct' blocks public access for account 999999999999, not this stack's account, so it covers none of its buckets. Remove accountId (or add it to accountIds in the storage-not-public config).",
        "aws:s3/bucketV2 'ckpt' has no public access block. Add an aws.s3.BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true.",
    ],
    "pub-account-block-this-account": [],
    "pub-native-and-classic-inline": [
        "aws-native:s3:Bucket 'native' has a public access block with ['blockPublicPolicy'] not true. Set all of blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets to true on every block that targets it.",
        "aws-native:s3:Bucket 'native' grants the ACL 'PublicRead'. Use 'private' (or no ACL, with bucket owner enforced).",
        "aws:s3/bucket 'classic' has a bucket policy that allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
        "aws:s3/bucket 'classic' grants the ACL 'public-read'. Use 'private' (or no ACL, with bucket owner enforced).",
        "aws:s3/bucketAclV2 'acl' grants READ to the AllUsers group. Use 'private' (or no ACL, with bucket owner enforced).",
    ],
    "pub-gcs-iam-policy-and-acl": [
        "gcp:storage/bucketIAMPolicy 'pol' grants a role to ['allUsers']. Grant it to specific service accounts.",
        "gcp:storage/defaultObjectAccessControl 'acl' grants access to ['allUsers']. Remove the grant and use uniform bucket-level access.",
    ],
    "ingress-ok": [],
    "ingress-inline": [
        "aws:ec2/securityGroup 'sg' admits 0.0.0.0/0 to ports [22] (ingress[0]). Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer.",
    ],
    "ingress-rule-all-protocols-ipv6": [
        "aws:ec2/securityGroupRule 'r' admits ::/0 to ports [22, 6443]. Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer.",
    ],
    "ingress-vpc-rule": [
        "aws:vpc/securityGroupIngressRule 'r' admits 0.0.0.0/0 to ports [5432]. Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer.",
    ],
    "ingress-port-range": [
        "aws:ec2/securityGroup 'sg' admits 0.0.0.0/0 to ports [6379, 6443] (ingress[0]). Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer.",
    ],
    "ingress-gcp-firewall": [
        "gcp:compute/firewall 'fw' admits 0.0.0.0/0 to ports [22] (allows[0]). Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer.",
        "gcp:compute/firewall 'fw' admits 0.0.0.0/0 to ports [8265, 8888] (allows[0]). Limit the source to known CIDRs or security groups, or reach the service through a private endpoint or load balancer.",
    ],
    "cluster-ok": [],
    "cluster-eks-public": [
        "aws:eks/cluster 'eks' serves its API endpoint to the whole internet (endpointPublicAccess on, publicAccessCidrs unset (0.0.0.0/0)). Set endpointPublicAccess: false (private_endpoint), or limit publicAccessCidrs to known ranges.",
        "aws:eks/cluster 'eks2' serves its API endpoint to the whole internet (endpointPublicAccess on, publicAccessCidrs ['10.0.0.0/8', '0.0.0.0/0']). Set endpointPublicAccess: false (private_endpoint), or limit publicAccessCidrs to known ranges.",
    ],
    "cluster-eks-other-routes": [
        "aws-native:eks:Cluster 'native' serves its API endpoint to the whole internet (endpointPublicAccess on, publicAccessCidrs unset (0.0.0.0/0)). Set endpointPublicAccess: false (private_endpoint), or limit publicAccessCidrs to known ranges.",
        "eks:index:Cluster 'component' serves its API endpoint to the whole internet (endpointPublicAccess on, publicAccessCidrs unset (0.0.0.0/0)). Set endpointPublicAccess: false (private_endpoint), or limit publicAccessCidrs to known ranges.",
    ],
    "cluster-gke-open": [
        "gcp:container/cluster 'gke' turns on legacy ABAC. Set enableLegacyAbac: false and grant access with RBAC.",
        "gcp:container/cluster 'gke' gives its nodes public IPs. Set privateClusterConfig.enablePrivateNodes: true.",
        "gcp:container/cluster 'gke' enforces no network policy. Set datapathProvider: ADVANCED_DATAPATH (Dataplane V2) or networkPolicy.enabled: true.",
        "gcp:container/cluster 'gke' turns shielded nodes off. Set enableShieldedNodes: true.",
        "gcp:container/cluster 'gke' lets pods use the node's service account through the metadata server. Set workloadIdentityConfig.workloadPool and nodeConfig.workloadMetadataConfig.mode: GKE_METADATA.",
    ],
    "cluster-gke-node-pool-metadata": [
        "gcp:container/nodePool 'np' exposes the node's service account to pods (nodeConfig.workloadMetadataConfig.mode GCE_METADATA). Set it to GKE_METADATA.",
        "gcp:container/nodePool 'np' gives its nodes public IPs (networkConfig.enablePrivateNodes: false). Set it to true.",
    ],
    "gpu-routes-ok": [],
    "gpu-routes-aws": [
        "aws:ec2/launchTemplate 'lt' asks for H100, which this stack does not allow (allowedGpus: L4). Use one of those, or add H100 to allowedGpus in the stack's policy config.",
        "aws:ec2/launchConfiguration 'lc' asks for A10G, which this stack does not allow (allowedGpus: L4). Use one of those, or add A10G to allowedGpus in the stack's policy config.",
        "aws:ec2/spotInstanceRequest 'spot' asks for A10G, which this stack does not allow (allowedGpus: L4). Use one of those, or add A10G to allowedGpus in the stack's policy config.",
        "aws:autoscaling/group 'asg' asks for H100, which this stack does not allow (allowedGpus: L4). Use one of those, or add H100 to allowedGpus in the stack's policy config.",
        "aws:ec2/instance 'vm' asks for p9.48xlarge, a GPU type the catalog does not know, so it cannot be checked against allowedGpus. Use a catalog instance type, or add it to the catalog.",
    ],
    "gpu-routes-karpenter": [
        "kubernetes:karpenter.sh/v1:NodePool 'v1' asks for H100, which this stack does not allow (allowedGpus: L4). Use one of those, or add H100 to allowedGpus in the stack's policy config.",
        "kubernetes:karpenter.sh/v1beta1:NodePool 'v1beta1' asks for A10G, which this stack does not allow (allowedGpus: L4). Use one of those, or add A10G to allowedGpus in the stack's policy config.",
        "kubernetes:karpenter.sh/v1alpha5:Provisioner 'v1alpha5' asks for A10G, which this stack does not allow (allowedGpus: L4). Use one of those, or add A10G to allowedGpus in the stack's policy config.",
    ],
    "gpu-routes-gke": [
        "gcp:container/cluster 'default-pool' asks for A100-40GB, which this stack does not allow (allowedGpus: L4). Use one of those, or add A100-40GB to allowedGpus in the stack's policy config.",
        "gcp:container/cluster 'nap' asks for A100-40GB, which this stack does not allow (allowedGpus: L4). Use one of those, or add A100-40GB to allowedGpus in the stack's policy config.",
        "gcp:compute/instanceTemplate 'tpl' asks for nvidia-tesla-t4, a GPU type the catalog does not know, so it cannot be checked against allowedGpus. Use a catalog instance type, or add it to the catalog.",
    ],
    "gpu-routes-pod-selectors": [
        "kubernetes:apps/v1:Deployment 'autopilot' asks for A100-40GB, which this stack does not allow (allowedGpus: L4). Use one of those, or add A100-40GB to allowedGpus in the stack's policy config.",
        "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet 'affinity' asks for H100, which this stack does not allow (allowedGpus: L4). Use one of those, or add H100 to allowedGpus in the stack's policy config.",
        "kubernetes:core/v1:Pod 'karpenter-pod' asks for A10G, which this stack does not allow (allowedGpus: L4). Use one of those, or add A10G to allowedGpus in the stack's policy config.",
    ],
    "budget-priced-ok": [],
    "budget-unpriced-compute": [
        "The budget cannot be checked: aws:autoscaling/group 'asg' launches compute whose price is unknown (the cost model does not price this resource type); it counts as unknown, not $0. Use a priced route (a GpuNodePool, an EKS node group, a GKE node pool), or set allowUnknownPrices: true.",
        "The budget cannot be checked: kubernetes:karpenter.sh/v1:NodePool 'np' launches compute whose price is unknown (Karpenter launches nodes the cost model cannot size); it counts as unknown, not $0. Use a priced route (a GpuNodePool, an EKS node group, a GKE node pool), or set allowUnknownPrices: true.",
    ],
    "region-known-ok": [],
    "region-undeterminable": [
        "aws:s3/bucketV2 'b' has no region that can be determined (no region on the resource, its provider has none), so data residency cannot be checked. Set region on the resource or its provider (stack config aws:region).",
        "gcp:sql/databaseInstance 'db' has no region that can be determined (no region on the resource, its provider has none (a zone only)), so data residency cannot be checked. Set region on the resource or its provider (stack config gcp:region).",
    ],
    "scope-one-resource-ok": [],
    "scope-stack-wide": [
        "The stack exempts every gpuplane component from 'gpu-types-allowed' (a stack-wide gpuplane/exempt tag, e.g. in gpuplane:tags). Remove it from the stack-wide tags and tag only the resources that need it, or list 'gpu-types-allowed' in exemption-scope's stackWideAllowed.",
    ],
    "scope-stack-wide-allowed": [],
}


def messages(rule, resources, cfg) -> list[str]:
    config = config_for(rule, cfg)
    if isinstance(rule, StackRule):
        return [m for _, m in rule.check(resources, config)]
    return [m for r in resources for m in rule.check(r, config)]


@pytest.mark.parametrize(("case_id", "rule", "resources", "cfg"), CASES, ids=[c[0] for c in CASES])
def test_evasion_case(case_id, rule, resources, cfg):
    assert messages(rule, resources, cfg) == EXPECTED[case_id], f"{rule.name}: {case_id}"


def test_every_class_has_a_compliant_case_and_an_evasion():
    by_rule: dict[str, list[bool]] = {}
    for case_id, rule, _, _ in CASES:
        by_rule.setdefault(rule.name, []).append(bool(EXPECTED[case_id]))
    for name, results in by_rule.items():
        assert True in results and False in results, name


RELEASE = "kubernetes:helm.sh/v3:Release"


def release(chart: str = "nvidia-device-plugin", version: str = "0.17.4", ns: str = "gpu") -> object:
    return view(RELEASE, {"chart": chart, "version": version, "namespace": ns, "values": {}}, "dp")


def test_a_release_is_reported_unchecked_without_helm(monkeypatch):
    monkeypatch.setattr(helm, "helm_binary", lambda: None)
    monkeypatch.setattr(helm, "chart_dirs", lambda: [helm.ROOT])
    monkeypatch.setattr(helm, "chart_archive", lambda chart, version: helm.ROOT / f"{chart}-{version}.tgz")
    cfg = config_for(pods.HELM_RELEASE_RENDERED, {"exemptCharts": []})
    assert pods.HELM_RELEASE_RENDERED.check(release(), cfg) == [
        "kubernetes:helm.sh/v3:Release 'dp' (chart nvidia-device-plugin) was not checked for pod security: no helm binary (not on PATH, GPUPLANE_HELM unset, none in ~/.cache/gpuplane/engine/*/bin). Put helm on PATH and the chart archive in shared/charts, or list the chart in exemptCharts."
    ]
    # no-privileged-pods has nothing rendered to judge; the unchecked finding above is what fails.
    assert pods.NO_PRIVILEGED_PODS.check(release(), config_for(pods.NO_PRIVILEGED_PODS, {})) == []


def test_a_release_without_a_local_chart_is_reported_unchecked(monkeypatch):
    monkeypatch.setattr(helm, "chart_dirs", lambda: [])
    cfg = config_for(pods.HELM_RELEASE_RENDERED, {})
    assert pods.HELM_RELEASE_RENDERED.check(release("no-such-chart", "1.0.0"), cfg) == [
        "kubernetes:helm.sh/v3:Release 'dp' (chart no-such-chart) was not checked for pod security: no local archive no-such-chart-1.0.0.tgz (looked in no chart folder found). Put helm on PATH and the chart archive in shared/charts, or list the chart in exemptCharts."
    ]
    assert (
        pods.HELM_RELEASE_RENDERED.check(
            release("no-such-chart", "1.0.0", ns="kube-system"), {**cfg, "exemptNamespaces": ["kube-system"]}
        )
        == []
    )
    assert (
        pods.HELM_RELEASE_RENDERED.check(release("no-such-chart", "1.0.0"), {**cfg, "exemptCharts": ["no-such-chart"]})
        == []
    )


@pytest.mark.skipif(
    helm.helm_binary() is None or helm.chart_archive("nvidia-device-plugin", "0.17.4") is None,
    reason="needs helm and the chart archives in shared/charts",
)
def test_a_rendered_release_is_named_as_the_resource_in_violation():
    found = pods.NO_PRIVILEGED_PODS.check(release(), config_for(pods.NO_PRIVILEGED_PODS, {"exemptCharts": []}))
    assert found, "the device plugin mounts host paths: rendering it must surface them"
    assert all(
        m.startswith("kubernetes:helm.sh/v3:Release 'dp' (chart nvidia-device-plugin renders ") for m in found
    ), found
    assert any("hostPath mounts the host path /var/lib/kubelet/device-plugins" in m for m in found), found
    assert pods.HELM_RELEASE_RENDERED.check(release(), config_for(pods.HELM_RELEASE_RENDERED, {})) == []


class _Args:
    def __init__(self, v, config=None, resources=None):
        self.props, self.urn, self.name, self.resource_type = v.props, v.urn, v.name, v.type
        self.resources = resources or []
        self._config = config or {}
        self.na: str | None = None

    def get_config(self):
        return self._config

    def not_applicable(self, reason=None):
        self.na = reason
        raise StopIteration


def test_exemption_valid_and_exemption_scope_cannot_be_exempted():
    v = view(
        "aws:s3/bucket:Bucket",
        {
            "tags": {
                **TAGS,
                "gpuplane/exempt": "exemption-valid,no-such-policy,exemption-scope",
                "gpuplane/exempt-reason": "quiet",
            }
        },
        "b",
    )
    assert exemptions.honoured(v, "exemption-valid") is None
    assert exemptions.honoured(v, "exemption-scope") is None
    reported: list[str] = []
    args = _Args(v)
    to_policy(pack.EXEMPTION_VALID).validate(args, lambda m, urn=None: reported.append(m))
    assert args.na is None
    assert reported == [
        "aws:s3/bucket 'b': Tag 'gpuplane/exempt' names unknown policies ['no-such-policy']. Use names from the pack: "
        + str(sorted(r.name for r in __import__("policies.__main__", fromlist=["RULES"]).RULES))
        + "."
    ]


def test_exempted_findings_ride_along_when_the_stack_policy_reports_another_resource():
    def bucket(name, tags):
        return view("aws:s3/bucketV2:BucketV2", {"bucket": name, "tags": tags}, name)

    kept = bucket("open", dict(TAGS))
    exempted = bucket(
        "mirror", {**TAGS, "gpuplane/exempt": "storage-encrypted", "gpuplane/exempt-reason": "public mirror"}
    )

    class Res:
        def __init__(self, v):
            self.props, self.urn, self.name, self.resource_type = v.props, v.urn, v.name, v.type

    args = _Args(kept, resources=[Res(exempted), Res(kept)])
    reported: list[tuple[str, str]] = []
    to_policy(storage.STORAGE_ENCRYPTED).validate(args, lambda m, urn=None: reported.append((urn, m)))
    assert reported == [
        (
            kept.urn,
            "aws:s3/bucketV2 'open' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).\n"
            f"exempted by gpuplane/exempt on {exempted.urn} (reason: public mirror) — aws:s3/bucketV2 'mirror' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).",
        )
    ]


def test_every_evasion_message_says_what_to_change():
    verbs = ("Set ", "Add ", "Use ", "Remove ", "Grant ", "Limit ", "Run ", "Put ", "Make ", "Turn ")
    for case_id, msgs in EXPECTED.items():
        for m in msgs:
            assert any(v in m for v in verbs), f"{case_id}: message gives no fix: {m}"


def test_renders_are_cached_on_disk_by_their_inputs(monkeypatch, tmp_path):
    archive = tmp_path / "c-1.0.0.tgz"
    archive.write_bytes(b"chart")
    monkeypatch.setenv("GPUPLANE_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[tuple] = []

    def fake(*args):
        calls.append(args)
        return helm.Rendered(manifests=[{"kind": "Pod", "metadata": {"name": args[2]}}])

    monkeypatch.setattr(helm, "_helm_template", fake)
    render = helm._template.__wrapped__  # past the in-process cache: the disk cache answers
    first = render("helm", str(archive), "a", "ns", "{}")
    assert (
        render("helm", str(archive), "a", "ns", "{}")
        == first
        == helm.Rendered([{"kind": "Pod", "metadata": {"name": "a"}}])
    )
    assert len(calls) == 1
    render("helm", str(archive), "a", "ns", '{"x": 1}')  # other values: rendered again
    assert len(calls) == 2


def test_what_a_release_renders_is_judged_and_the_release_is_named(monkeypatch):
    secret = {"kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"AWS_SECRET_ACCESS_KEY": "x"}}
    daemonset = {
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "template": {
                "spec": {
                    "hostNetwork": True,
                    "containers": [{"name": "a", "image": "x", "envFrom": [{"secretRef": {"name": "creds"}}]}],
                }
            }
        },
    }
    monkeypatch.setattr(helm, "render", lambda view: helm.Rendered(manifests=[secret, daemonset]))
    r = release("agent-chart", "1.0.0", ns="apps")
    assert pods.NO_PRIVILEGED_PODS.check(r, config_for(pods.NO_PRIVILEGED_PODS, {})) == [
        "kubernetes:helm.sh/v3:Release 'dp' (chart agent-chart renders DaemonSet 'agent'): spec.template.spec.hostNetwork is true. Remove it; pods must not share the node's namespaces."
    ]
    assert (
        pods.NO_PRIVILEGED_PODS.check(r, config_for(pods.NO_PRIVILEGED_PODS, {"exemptCharts": ["agent-chart"]})) == []
    )
    assert [m for _, m in pods.WORKLOAD_IDENTITY.check([r], {})] == [
        "kubernetes:helm.sh/v3:Release 'dp' (chart renders DaemonSet 'agent') gives container 'a' the cloud keys ['AWS_SECRET_ACCESS_KEY'] of Secret 'creds' (envFrom). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity)."
    ]


def test_node_agent_charts_are_exempt_only_at_the_versions_gpuplane_pins():
    from components.node_pool.eks import EFA_DEVICE_PLUGIN_CHART, EFA_DEVICE_PLUGIN_VERSION
    from components.training.eks import NTH_CHART, NTH_VERSION
    from components.kubernetes.device_plugin import DCGM_CHART, DCGM_VERSION, DEVICE_PLUGIN_CHART, DEVICE_PLUGIN_VERSION
    from components.observability.prometheus import KPS_CHART, KPS_VERSION

    pinned = [
        (DEVICE_PLUGIN_CHART, DEVICE_PLUGIN_VERSION),
        (DCGM_CHART, DCGM_VERSION),
        (EFA_DEVICE_PLUGIN_CHART, EFA_DEVICE_PLUGIN_VERSION),
        (NTH_CHART.rsplit("/", 1)[-1], NTH_VERSION),
        (KPS_CHART, KPS_VERSION),
    ]
    assert pods.NODE_AGENT_CHARTS == [f"{c}@{v}" for c, v in pinned]
    cfg = config_for(pods.HELM_RELEASE_RENDERED, {})
    assert pods._exempt_chart(release("nvidia-device-plugin", "0.17.4"), cfg)
    assert not pods._exempt_chart(release("nvidia-device-plugin", "0.17.5"), cfg)  # another version is checked
    assert pods._exempt_chart(release("x", "9"), {"exemptCharts": ["x"]})  # a bare name: any version
