"""Evasion cases: for each class of issue 19, a compliant case and at least one evasion per route.

Each case is (id, rule, resources, config overrides); the exact expected messages are in
test_evasion.py. Cases are written from the class (the Pod Security Standards, the routes to a
public bucket, ...), not from the shapes gpuplane's own components emit.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from policies import cost, gpu, network, placement, pods, security, storage, tagging
from tests.policies.fixtures import TAGS, component, pool_summary, view

C = {"name": "main", "image": "ghcr.io/x/y:1"}
RESTRICTED_C = {
    **C,
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    },
}


def spec(**over: Any) -> dict[str, Any]:
    return {"containers": [dict(C)], **over}


def sc(**ctx: Any) -> dict[str, Any]:
    return {**C, "securityContext": ctx}


NS = {"name": "w", "namespace": "ml"}
DEPLOY = "kubernetes:apps/v1:Deployment"
JOBSET = "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet"
KSVC = "kubernetes:serving.knative.dev/v1:Service"
ARGO = "kubernetes:argoproj.io/v1alpha1:Workflow"
PYTORCH = "kubernetes:kubeflow.org/v1:PyTorchJob"
RAY = "kubernetes:ray.io/v1:RayCluster"
WIDGET = "kubernetes:example.com/v1:Widget"
PV = "kubernetes:core/v1:PersistentVolume"
POD = "kubernetes:core/v1:Pod"
RELEASE = "kubernetes:helm.sh/v3:Release"


def k8s(type_: str, body: dict[str, Any], name: str = "w", ns: str = "ml") -> Any:
    return view(type_, {"metadata": {"name": name, "namespace": ns}, **body}, name)


PODS = [
    (
        "pss-ok",
        [
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "spec": spec(
                                securityContext={"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}
                            )
                        }
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-jobset-privileged",
        [
            k8s(
                JOBSET,
                {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "name": "w",
                                "template": {"spec": {"template": {"spec": {"containers": [sc(privileged=True)]}}}},
                            }
                        ]
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-knative-host-network",
        [k8s(KSVC, {"spec": {"template": {"spec": spec(hostNetwork=True, hostIPC=True)}}})],
        {},
    ),
    (
        "pss-argo-template",
        [
            k8s(
                ARGO,
                {
                    "spec": {
                        "hostPID": True,
                        "templates": [
                            {
                                "name": "t",
                                "container": {
                                    "image": "x",
                                    "securityContext": {"capabilities": {"add": ["sys_admin"]}},
                                },
                            }
                        ],
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-pytorchjob-capabilities",
        [
            k8s(
                PYTORCH,
                {
                    "spec": {
                        "pytorchReplicaSpecs": {
                            "Worker": {
                                "template": {
                                    "spec": {
                                        "containers": [
                                            sc(
                                                capabilities={
                                                    "add": ["NET_BIND_SERVICE", "CAP_NET_ADMIN", "SYS_PTRACE"]
                                                }
                                            )
                                        ]
                                    }
                                }
                            }
                        }
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-ray-hostpath-traversal",
        [
            k8s(
                RAY,
                {
                    "spec": {
                        "workerGroupSpecs": [
                            {
                                "template": {
                                    "spec": spec(
                                        volumes=[
                                            {"name": "logs", "hostPath": {"path": "/var/log/../../etc"}},
                                            {"name": "ok", "hostPath": {"path": "/var/log/ray"}},
                                        ]
                                    )
                                }
                            }
                        ]
                    }
                },
            )
        ],
        {"allowedHostPaths": ["/var/log"]},
    ),
    (
        "pss-custom-resource-host-port",
        [
            k8s(
                WIDGET,
                {
                    "spec": {
                        "podTemplate": {
                            "spec": {"containers": [{**C, "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
                        }
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-persistent-volume-hostpath",
        [
            view(
                PV,
                {"metadata": {"name": "pv"}, "spec": {"hostPath": {"path": "/"}, "capacity": {"storage": "1Gi"}}},
                "pv",
            )
        ],
        {},
    ),
    (
        "pss-profiles-sysctls",
        [
            k8s(
                POD,
                {
                    "spec": spec(
                        securityContext={
                            "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                            "seccompProfile": {"type": "Unconfined"},
                        },
                        containers=[
                            sc(
                                procMount="Unmasked",
                                appArmorProfile={"type": "Unconfined"},
                                seLinuxOptions={"type": "spc_t"},
                                windowsOptions={"hostProcess": True},
                            )
                        ],
                    )
                },
            )
        ],
        {},
    ),
    (
        "pss-apparmor-annotation",
        [
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "metadata": {
                                "annotations": {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}
                            },
                            "spec": spec(),
                        }
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-embedded-pod-spec-patch",
        [
            k8s(
                ARGO,
                {
                    "spec": {
                        "podSpecPatch": json.dumps({"hostNetwork": True}),
                        "templates": [{"name": "t", "container": {"image": "x"}, "podSpecPatch": "hostPID: true"}],
                    }
                },
            )
        ],
        {},
    ),
    (
        "pss-configgroup-yaml-string",
        [
            view(
                "kubernetes:yaml/v2:ConfigGroup",
                {
                    "yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n    securityContext: {privileged: true}\n"
                },
                "cg",
            )
        ],
        {},
    ),
    (
        "pss-exempt-namespace",
        [k8s(DEPLOY, {"spec": {"template": {"spec": spec(hostNetwork=True)}}}, ns="kube-system")],
        {"exemptNamespaces": ["kube-system"]},
    ),
    (
        "pss-kube-system-not-trusted-by-default",
        [k8s(DEPLOY, {"spec": {"template": {"spec": spec(hostNetwork=True)}}}, ns="kube-system")],
        {},
    ),
    (
        "pss-restricted-ok",
        [
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {"spec": {"containers": [RESTRICTED_C], "volumes": [{"name": "d", "emptyDir": {}}]}}
                    }
                },
            )
        ],
        {"level": "restricted"},
    ),
    (
        "pss-restricted",
        [
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [sc(runAsUser=0)],
                                "volumes": [{"name": "n", "nfs": {"server": "x", "path": "/"}}],
                            }
                        }
                    }
                },
            )
        ],
        {"level": "restricted"},
    ),
    (
        "pss-release-in-exempt-namespace",
        [view(RELEASE, {"chart": "nvidia-device-plugin", "version": "0.17.4", "namespace": "kube-system"}, "dp")],
        {"exemptNamespaces": ["kube-system"]},
    ),
]

SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SA_KEY = base64.b64encode(json.dumps({"type": "service_account", "private_key": "-----BEGIN"}).encode()).decode()
IDENTITY = [
    (
        "keys-ok",
        [
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        **C,
                                        "env": [{"name": "AWS_REGION", "value": "us-east-1"}],
                                        "envFrom": [{"secretRef": {"name": "db"}}],
                                    }
                                ]
                            }
                        }
                    }
                },
            ),
            k8s(SECRET, {"stringData": {"PASSWORD": "x"}}, "db"),
        ],
        {},
    ),
    (
        "keys-env-value",
        [
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{**C, "env": [{"name": "S3_KEY", "value": "AKIAABCDEFGHIJKLMNOP"}]}]
                            }
                        }
                    }
                },
            )
        ],
        {},
    ),
    (
        "keys-envfrom-secret",
        [
            k8s(SECRET, {"stringData": {"AWS_SECRET_ACCESS_KEY": "x", "aws_access_key_id": "y"}}, "creds"),
            k8s(
                JOBSET,
                {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "template": {
                                    "spec": {
                                        "template": {
                                            "spec": {
                                                "containers": [{**C, "envFrom": [{"secretRef": {"name": "creds"}}]}]
                                            }
                                        }
                                    }
                                }
                            }
                        ]
                    }
                },
                "js",
            ),
        ],
        {},
    ),
    (
        "keys-configmap-env",
        [
            k8s(CONFIG_MAP, {"data": {"credentials": "[default]\naws_secret_access_key = abc"}}, "cfg"),
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        **C,
                                        "env": [
                                            {
                                                "name": "CREDS",
                                                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "credentials"}},
                                            }
                                        ],
                                    }
                                ]
                            }
                        }
                    }
                },
            ),
        ],
        {},
    ),
    (
        "keys-mounted-secret",
        [
            k8s(SECRET, {"data": {"key.json": SA_KEY}}, "gsa"),
            k8s(
                ARGO,
                {
                    "spec": {
                        "templates": [
                            {
                                "name": "t",
                                "container": {"image": "x", "volumeMounts": [{"name": "k", "mountPath": "/k"}]},
                                "volumes": [{"name": "k", "secret": {"secretName": "gsa"}}],
                            }
                        ]
                    }
                },
                "wf",
            ),
        ],
        {},
    ),
    (
        "keys-helm-values",
        [
            view(
                RELEASE,
                {
                    "chart": "app",
                    "version": "1.0.0",
                    "namespace": "ml",
                    "values": {
                        "env": [{"name": "AWS_ACCESS_KEY_ID", "value": "x"}],
                        "extraEnv": {"AWS_SECRET_ACCESS_KEY": "y"},
                        "note": "AKIAABCDEFGHIJKLMNOP",
                    },
                },
                "app",
            )
        ],
        {},
    ),
    (
        "keys-other-namespace",
        [
            k8s(SECRET, {"stringData": {"AWS_SECRET_ACCESS_KEY": "x"}}, "creds", ns="other"),
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {"spec": {"containers": [{**C, "envFrom": [{"secretRef": {"name": "creds"}}]}]}}
                    }
                },
            ),
        ],
        {},
    ),
]

RUN_SVC = "gcp:cloudrunv2/service:Service"
CLOUD_RUN = [
    (
        "run-ok",
        [
            view(
                "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
                {"role": "roles/run.invoker", "member": "serviceAccount:a@p.iam.gserviceaccount.com"},
                "inv",
            )
        ],
        {},
    ),
    (
        "run-v2-binding",
        [
            view(
                "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
                {"role": "roles/run.invoker", "members": ["user:a@x.com", "allUsers"]},
                "b",
            )
        ],
        {},
    ),
    (
        "run-v2-policy",
        [
            view(
                "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
                {
                    "policyData": json.dumps(
                        {"bindings": [{"role": "roles/run.invoker", "members": ["allAuthenticatedUsers"]}]}
                    )
                },
                "pol",
            )
        ],
        {},
    ),
    (
        "run-v1-member",
        [view("gcp:cloudrun/iamMember:IamMember", {"role": "roles/run.invoker", "member": "allUsers"}, "m")],
        {},
    ),
    ("run-invoker-iam-disabled", [view(RUN_SVC, {"invokerIamDisabled": True, "location": "us-central1"}, "run")], {}),
    (
        "run-project-iam",
        [
            view(
                "gcp:projects/iAMMember:IAMMember",
                {"role": "roles/run.invoker", "member": "allUsers", "project": "p"},
                "proj",
            )
        ],
        {},
    ),
]

BV2 = "aws:s3/bucketV2:BucketV2"
SSE2 = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
AES = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
FLAGS = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}
BUCKET = view(BV2, {"bucket": "ckpt", "tags": dict(TAGS)}, "ckpt")


def attached(type_: str, props: dict[str, Any], name: str, *deps: Any) -> Any:
    return view(type_, props, name, dependencies=tuple(d.urn for d in deps))


AUTO_BUCKET = view(BV2, {"tags": dict(TAGS)}, "auto")  # auto-named: its name is unknown until created
ENCRYPTION = [
    (
        "enc-routes-ok",
        [
            AUTO_BUCKET,
            attached(SSE2, {**AES}, "auto-sse", AUTO_BUCKET),
            view("aws:ebs/volume:Volume", {"encrypted": True, "size": 100}, "vol"),
            view(
                "aws:ec2/launchTemplate:LaunchTemplate",
                {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]},
                "lt",
            ),
            view("aws:efs/fileSystem:FileSystem", {"encrypted": True}, "efs"),
            view("aws:rds/cluster:Cluster", {"storageEncrypted": True}, "aurora"),
        ],
        {},
    ),
    ("enc-sse-targets-another-bucket", [BUCKET, attached(SSE2, {"bucket": "other", **AES}, "ckpt-sse", BUCKET)], {}),
    (
        "enc-sse-without-an-algorithm",
        [BUCKET, attached(SSE2, {"bucket": "ckpt", "rules": [{"bucketKeyEnabled": True}]}, "ckpt-sse", BUCKET)],
        {},
    ),
    (
        "enc-volumes-and-databases",
        [
            view("aws:ebs/volume:Volume", {"size": 100}, "vol"),
            view(
                "aws:ec2/launchTemplate:LaunchTemplate",
                {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 200}}]},
                "lt",
            ),
            view(
                "aws:ec2/instance:Instance", {"instanceType": "m6i.large", "rootBlockDevice": {"volumeSize": 50}}, "vm"
            ),
            view("aws:efs/fileSystem:FileSystem", {}, "efs"),
            view("aws:rds/cluster:Cluster", {"engine": "aurora-postgresql"}, "aurora"),
            view("aws-native:s3:Bucket", {"bucketName": "native"}, "native"),
        ],
        {},
    ),
    (
        "enc-aws-native",
        [
            view("aws-native:ec2:Volume", {"size": 100, "availabilityZone": "us-east-1a"}, "nvol"),
            view("aws-native:rds:DbInstance", {"engine": "postgres", "storageEncrypted": False}, "ndb"),
            view("aws-native:efs:FileSystem", {"encrypted": True}, "nefs"),
        ],
        {},
    ),
    (
        "enc-ebs-default-on",
        [
            view("aws:ebs/encryptionByDefault:EncryptionByDefault", {"enabled": True}, "ebs-default"),
            view("aws:ebs/volume:Volume", {"size": 100}, "vol"),
        ],
        {},
    ),
    (
        "enc-gcs-cmk",
        [view("gcp:storage/bucket:Bucket", {"name": "d", "location": "US"}, "d")],
        {"requireCustomerManagedKeys": True},
    ),
]


def public_policy(condition: dict[str, Any] | None = None, principal: Any = "*", key: str = "Principal") -> str:
    stmt: dict[str, Any] = {
        "Effect": "Allow",
        key: principal,
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::ckpt/*",
    }
    if condition:
        stmt["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


BP = "aws:s3/bucketPolicy:BucketPolicy"
PUBLIC = [
    (
        "pub-routes-ok",
        [
            BUCKET,
            attached(PAB, {"bucket": "ckpt", **FLAGS}, "pab", BUCKET),
            view(
                BP, {"bucket": "ckpt", "policy": public_policy({"StringEquals": {"aws:SourceVpce": "vpce-1"}})}, "pol"
            ),
        ],
        {},
    ),
    (
        "pub-policy-conditions-that-do-not-restrict",
        [
            view(
                BP,
                {"bucket": "ckpt", "policy": public_policy({"Bool": {"aws:SecureTransport": "true"}}, {"AWS": ["*"]})},
                "tls-only",
            ),
            view(
                BP,
                {"bucket": "ckpt", "policy": public_policy({"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}})},
                "if-exists",
            ),
            view(
                BP, {"bucket": "ckpt", "policy": public_policy({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})}, "any-ip"
            ),
            view(
                BP,
                {"bucket": "ckpt", "policy": public_policy(None, {"AWS": "arn:aws:iam::1:root"}, "NotPrincipal")},
                "not-principal",
            ),
            view(
                "aws-native:s3:BucketPolicy",
                {"bucket": "ckpt", "policyDocument": json.loads(public_policy())},
                "native-pol",
            ),
        ],
        {},
    ),
    (
        "pub-two-blocks-least-restrictive-wins",
        [
            BUCKET,
            attached(PAB, {"bucket": "ckpt", **FLAGS}, "pab-a", BUCKET),
            attached(PAB, {"bucket": "ckpt", **FLAGS, "restrictPublicBuckets": False}, "pab-b", BUCKET),
        ],
        {},
    ),
    ("pub-block-names-another-bucket", [BUCKET, attached(PAB, {"bucket": "other", **FLAGS}, "pab", BUCKET)], {}),
    (
        "pub-account-block-other-account",
        [
            BUCKET,
            view(
                "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
                {"accountId": "999999999999", **FLAGS},
                "acct",
            ),
        ],
        {},
    ),
    (
        "pub-account-block-this-account",
        [
            BUCKET,
            view(
                "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
                {"accountId": "111111111111", **FLAGS},
                "acct",
            ),
        ],
        {"accountIds": ["111111111111"]},
    ),
    (
        "pub-native-and-classic-inline",
        [
            view(
                "aws-native:s3:Bucket",
                {
                    "bucketName": "native",
                    "accessControl": "PublicRead",
                    "publicAccessBlockConfiguration": {**FLAGS, "blockPublicPolicy": False},
                },
                "native",
            ),
            view(
                "aws:s3/bucket:Bucket",
                {"bucket": "classic", "acl": "public-read", "policy": public_policy()},
                "classic",
            ),
            attached(PAB, {"bucket": "classic", **FLAGS}, "classic-pab"),
            view(
                "aws:s3/bucketAclV2:BucketAclV2",
                {
                    "bucket": "classic",
                    "accessControlPolicy": {
                        "grants": [
                            {
                                "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                "permission": "READ",
                            }
                        ]
                    },
                },
                "acl",
            ),
        ],
        {},
    ),
    (
        "pub-gcs-iam-policy-and-acl",
        [
            view(
                "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
                {
                    "bucket": "d",
                    "policyData": json.dumps(
                        {"bindings": [{"role": "roles/storage.objectViewer", "members": ["allUsers"]}]}
                    ),
                },
                "pol",
            ),
            view(
                "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
                {"bucket": "d", "entity": "allUsers", "role": "READER"},
                "acl",
            ),
        ],
        {},
    ),
]

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = [
    (
        "ingress-ok",
        [
            view(
                SG,
                {
                    "ingress": [
                        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
                        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"]},
                    ]
                },
                "sg",
            )
        ],
        {},
    ),
    (
        "ingress-inline",
        [view(SG, {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]}, "sg")],
        {},
    ),
    (
        "ingress-rule-all-protocols-ipv6",
        [
            view(
                "aws:ec2/securityGroupRule:SecurityGroupRule",
                {"type": "ingress", "protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]},
                "r",
            )
        ],
        {"restrictedPorts": [22, 6443]},
    ),
    (
        "ingress-vpc-rule",
        [
            view(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv4": "0.0.0.0/0"},
                "r",
            )
        ],
        {},
    ),
    (
        "ingress-port-range",
        [
            view(
                SG,
                {"ingress": [{"protocol": "tcp", "fromPort": 6000, "toPort": 7000, "cidrBlocks": ["0.0.0.0/0"]}]},
                "sg",
            )
        ],
        {},
    ),
    (
        "ingress-gcp-firewall",
        [
            view(
                "gcp:compute/firewall:Firewall",
                {
                    "network": "n",
                    "sourceRanges": ["0.0.0.0/0"],
                    "allows": [{"protocol": "tcp", "ports": ["22", "8000-9000"]}],
                },
                "fw",
            )
        ],
        {},
    ),
]

EKS = "aws:eks/cluster:Cluster"
GKE = "gcp:container/cluster:Cluster"
GKE_OK = {
    "location": "us-central1",
    "privateClusterConfig": {"enablePrivateNodes": True},
    "datapathProvider": "ADVANCED_DATAPATH",
    "workloadIdentityConfig": {"workloadPool": "p.svc.id.goog"},
    "nodeConfig": {"workloadMetadataConfig": {"mode": "GKE_METADATA"}},
}
CLUSTERS = [
    (
        "cluster-ok",
        [
            view(EKS, {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}}, "eks"),
            view(GKE, GKE_OK, "gke"),
        ],
        {},
    ),
    (
        "cluster-eks-public",
        [
            view(EKS, {"vpcConfig": {"subnetIds": ["s"]}}, "eks"),
            view(
                EKS,
                {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["10.0.0.0/8", "0.0.0.0/0"]}},
                "eks2",
            ),
        ],
        {},
    ),
    (
        "cluster-eks-other-routes",
        [
            view(
                "aws-native:eks:Cluster",
                {"resourcesVpcConfig": {"subnetIds": ["s"], "endpointPublicAccess": True}},
                "native",
            ),
            view("eks:index:Cluster", {"vpcId": "v"}, "component"),
            view("eks:index:Cluster", {"endpointPublicAccess": False, "endpointPrivateAccess": True}, "private"),
        ],
        {},
    ),
    (
        "cluster-gke-open",
        [view(GKE, {"location": "us-central1", "enableLegacyAbac": True, "enableShieldedNodes": False}, "gke")],
        {},
    ),
    (
        "cluster-gke-node-pool-metadata",
        [
            view(
                "gcp:container/nodePool:NodePool",
                {
                    "nodeConfig": {"workloadMetadataConfig": {"mode": "GCE_METADATA"}},
                    "networkConfig": {"enablePrivateNodes": False},
                },
                "np",
            )
        ],
        {},
    ),
]

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
GPU_TYPES = [
    (
        "gpu-routes-ok",
        [
            view(
                NODEPOOL,
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "requirements": [
                                    {"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["l4"]}
                                ]
                            }
                        }
                    }
                },
                "np",
            ),
            view("aws:ec2/launchTemplate:LaunchTemplate", {"instanceType": "g6.xlarge"}, "lt"),
            view("aws:ec2/launchTemplate:LaunchTemplate", {"instanceType": "m6i.large"}, "cpu-lt"),
        ],
        {"allowedGpus": ["L4"]},
    ),
    (
        "gpu-routes-aws",
        [
            view("aws:ec2/launchTemplate:LaunchTemplate", {"instanceType": "p5.48xlarge"}, "lt"),
            view("aws:ec2/launchConfiguration:LaunchConfiguration", {"instanceType": "g5.xlarge"}, "lc"),
            view("aws:ec2/spotInstanceRequest:SpotInstanceRequest", {"instanceType": "g5.xlarge"}, "spot"),
            view(
                "aws:autoscaling/group:Group",
                {
                    "maxSize": 4,
                    "mixedInstancesPolicy": {
                        "launchTemplate": {
                            "overrides": [{"instanceType": "g6.xlarge"}, {"instanceType": "p5.48xlarge"}]
                        }
                    },
                },
                "asg",
            ),
            view("aws:ec2/instance:Instance", {"instanceType": "p9.48xlarge"}, "vm"),
        ],
        {"allowedGpus": ["L4"]},
    ),
    (
        "gpu-routes-karpenter",
        [
            view(
                NODEPOOL,
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "requirements": [
                                    {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["p5"]}
                                ]
                            }
                        }
                    }
                },
                "v1",
            ),
            view(
                "kubernetes:karpenter.sh/v1beta1:NodePool",
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "requirements": [
                                    {"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["a10g"]}
                                ]
                            }
                        }
                    }
                },
                "v1beta1",
            ),
            view(
                "kubernetes:karpenter.sh/v1alpha5:Provisioner",
                {
                    "spec": {
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["g5.xlarge", "m6i.large"],
                            }
                        ]
                    }
                },
                "v1alpha5",
            ),
        ],
        {"allowedGpus": ["L4"]},
    ),
    (
        "gpu-routes-gke",
        [
            view(
                GKE,
                {"location": "us-central1", "initialNodeCount": 1, "nodeConfig": {"machineType": "a2-highgpu-1g"}},
                "default-pool",
            ),
            view(
                GKE,
                {
                    "location": "us-central1",
                    "removeDefaultNodePool": True,
                    "clusterAutoscaling": {
                        "enabled": True,
                        "resourceLimits": [{"resourceType": "nvidia-tesla-a100", "maximum": 8}],
                    },
                },
                "nap",
            ),
            view(
                "gcp:compute/instanceTemplate:InstanceTemplate",
                {"machineType": "n1-standard-8", "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 1}]},
                "tpl",
            ),
        ],
        {"allowedGpus": ["L4"]},
    ),
]

GPU_TYPES.append(
    (
        "gpu-routes-pod-selectors",
        [
            k8s(
                DEPLOY,
                {"spec": {"template": {"spec": spec(nodeSelector={"cloud.google.com/gke-accelerator": "nvidia-l4"})}}},
                "l4-ok",
            ),
            k8s(
                DEPLOY,
                {
                    "spec": {
                        "template": {
                            "spec": spec(nodeSelector={"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"})
                        }
                    }
                },
                "autopilot",
            ),
            k8s(
                JOBSET,
                {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "template": {
                                    "spec": {
                                        "template": {
                                            "spec": spec(
                                                affinity={
                                                    "nodeAffinity": {
                                                        "requiredDuringSchedulingIgnoredDuringExecution": {
                                                            "nodeSelectorTerms": [
                                                                {
                                                                    "matchExpressions": [
                                                                        {
                                                                            "key": "node.kubernetes.io/instance-type",
                                                                            "operator": "In",
                                                                            "values": ["p5.48xlarge"],
                                                                        }
                                                                    ]
                                                                }
                                                            ]
                                                        }
                                                    }
                                                }
                                            )
                                        }
                                    }
                                }
                            }
                        ]
                    }
                },
                "affinity",
            ),
            k8s(POD, {"spec": spec(nodeSelector={"karpenter.k8s.aws/instance-gpu-name": "a10g"})}, "karpenter-pod"),
        ],
        {"allowedGpus": ["L4"]},
    )
)

BUDGET = [
    (
        "budget-priced-ok",
        [
            view(
                "aws:eks/nodeGroup:NodeGroup",
                {"instanceTypes": ["g6.xlarge"], "scalingConfig": {"minSize": 0, "maxSize": 2}, "region": "us-east-1"},
                "ng",
            )
        ],
        {},
    ),
    (
        "budget-unpriced-compute",
        [
            view("aws:autoscaling/group:Group", {"maxSize": 4, "region": "us-east-1"}, "asg"),
            view(NODEPOOL, {"spec": {}}, "np"),
        ],
        {},
    ),
]

REGIONS = [
    (
        "region-known-ok",
        [view("aws:s3/bucketV2:BucketV2", {"bucket": "b"}, "b", provider_props={"region": "us-east-1"})],
        {"allowedRegions": ["us-*"]},
    ),
    (
        "region-undeterminable",
        [
            view("aws:s3/bucketV2:BucketV2", {"bucket": "b"}, "b"),
            view(
                "gcp:sql/databaseInstance:DatabaseInstance",
                {"databaseVersion": "POSTGRES_16"},
                "db",
                provider_props={"zone": "europe-west4-a"},
            ),
        ],
        {"allowedRegions": ["us-*"]},
    ),
]

EXEMPT = {"gpuplane/exempt": "gpu-types-allowed", "gpuplane/exempt-reason": "everything"}
SCOPE = [
    (
        "scope-one-resource-ok",
        [
            component("GpuNodePool", pool_summary(tags={**TAGS, **EXEMPT}), "p"),
            component("GpuNodePool", pool_summary(), "q"),
        ],
        {},
    ),
    (
        "scope-stack-wide",
        [
            component("GpuNodePool", pool_summary(tags={**TAGS, **EXEMPT}), "p"),
            component("GpuNodePool", pool_summary(tags={**TAGS, **EXEMPT}), "q"),
        ],
        {},
    ),
    (
        "scope-stack-wide-allowed",
        [
            component("GpuNodePool", pool_summary(tags={**TAGS, **EXEMPT}), "p"),
            component("GpuNodePool", pool_summary(tags={**TAGS, **EXEMPT}), "q"),
        ],
        {"stackWideAllowed": ["gpu-types-allowed"]},
    ),
]

HELM = [
    (
        "helm-exempt-namespace-ok",
        [view(RELEASE, {"chart": "anything", "version": "1.0.0", "namespace": "kube-system"}, "r")],
        {"exemptNamespaces": ["kube-system"]},
    ),
    ("helm-unpinned-unchecked", [view(RELEASE, {"chart": "https://example.com/x.tgz", "namespace": "apps"}, "r")], {}),
]

CASES = (
    [(i, pods.HELM_RELEASE_RENDERED, r, c) for i, r, c in HELM]
    + [(i, pods.NO_PRIVILEGED_PODS, r, c) for i, r, c in PODS]
    + [(i, pods.WORKLOAD_IDENTITY, r, c) for i, r, c in IDENTITY]
    + [(i, security.ENDPOINT_PRIVATE, r, c) for i, r, c in CLOUD_RUN]
    + [(i, storage.STORAGE_ENCRYPTED, r, c) for i, r, c in ENCRYPTION]
    + [(i, storage.STORAGE_NOT_PUBLIC, r, c) for i, r, c in PUBLIC]
    + [(i, network.NETWORK_INGRESS_RESTRICTED, r, c) for i, r, c in INGRESS]
    + [(i, network.CLUSTER_HARDENED, r, c) for i, r, c in CLUSTERS]
    + [(i, gpu.GPU_TYPES_ALLOWED, r, c) for i, r, c in GPU_TYPES]
    + [(i, cost.STACK_BUDGET, r, c) for i, r, c in BUDGET]
    + [(i, placement.ALLOWED_REGIONS, r, c) for i, r, c in REGIONS]
    + [(i, tagging.EXEMPTION_SCOPE, r, c) for i, r, c in SCOPE]
)
