"""Plausible computed outputs for mock registrations and invokes.

The mock runtime only knows what the program passed in; outputs a provider would compute
(ids, ARNs, endpoints, OIDC issuers, autoscaling group names) are filled in here so that
``apply`` chains inside components resolve to readable values in a plan. The values are
obviously fake (account 123456789012, ``mock`` in hosts) and never priced or validated.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

ACCOUNT = "123456789012"
_FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nmock\n-----END CERTIFICATE-----\n").decode()


def _aws_service(typ: str) -> str:
    # "aws:eks/cluster:Cluster" -> "eks"
    return typ.split(":", 2)[1].split("/", 1)[0] if typ.count(":") >= 2 else "aws"


def computed_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    physical = inputs.get("name") or name
    if typ.startswith("aws:"):
        region = inputs.get("region") or "us-east-1"
        out["arn"] = f"arn:aws:{_aws_service(typ)}:{region}:{ACCOUNT}:{physical}"
        out.setdefault("name", physical)
        if typ == "aws:eks/cluster:Cluster":
            out["endpoint"] = f"https://{physical}.mock.eks.amazonaws.com"
            out["certificateAuthority"] = {"data": _FAKE_CA}
            out["identities"] = [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/MOCK{zlib.crc32(physical.encode()):08X}"}]}]
            out["vpcConfig"] = {**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{physical}"}
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            out["resources"] = [{"autoscalingGroups": [{"name": f"eks-{physical}-asg"}]}]
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            out["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{str(inputs.get('url', '')).removeprefix('https://')}"
        elif typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            out["bucket"] = inputs.get("bucket") or physical  # autonaming happens in the provider; keep the resource name
            out["arn"] = f"arn:aws:s3:::{out['bucket']}"
        elif typ == "aws:kms/key:Key":
            out["keyId"] = f"mock-key-{physical}"
        elif typ == "aws:sqs/queue:Queue":
            out["url"] = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical}"
        elif typ == "aws:iam/instanceProfile:InstanceProfile":
            out["name"] = physical
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            out["latestVersion"] = 1
            out["defaultVersion"] = 1
        elif typ == "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        elif typ == "aws:rds/instance:Instance":
            # What a database's clients are configured with (MLflow's backend store host).
            out["address"] = f"{physical}.mock.{region}.rds.amazonaws.com"
            out["port"] = inputs.get("port") or 5432
            out["endpoint"] = f"{out['address']}:{out['port']}"
    elif typ.startswith("gcp:"):
        project = inputs.get("project") or "mock-project"
        out.setdefault("name", physical)
        out["selfLink"] = f"https://www.googleapis.com/mock/{project}/{physical}"
        if typ == "gcp:container/cluster:Cluster":
            out["endpoint"] = "10.0.0.2"
            out["masterAuth"] = {"clusterCaCertificate": _FAKE_CA}
        elif typ == "gcp:serviceaccount/account:Account":
            out["email"] = f"{inputs.get('accountId', physical)}@{project}.iam.gserviceaccount.com"
            out["name"] = f"projects/{project}/serviceAccounts/{out['email']}"
            out["member"] = f"serviceAccount:{out['email']}"
        elif typ == "gcp:sql/databaseInstance:DatabaseInstance":
            # Private IP only (the registry's instance has no public address); clients connect to it.
            out["privateIpAddress"] = "10.0.0.3"
            out["connectionName"] = f"{project}:{inputs.get('region') or 'us-central1'}:{physical}"
        elif typ == "gcp:storage/bucket:Bucket":
            out["url"] = f"gs://{physical}"
        elif typ == "gcp:cloudrunv2/service:Service":
            out["uri"] = f"https://{physical}-mock.a.run.app"
    elif typ.startswith("kubernetes:") and isinstance(inputs.get("metadata"), dict):
        meta = dict(inputs["metadata"])
        meta.setdefault("name", name)
        out["metadata"] = meta
    return out


def invoke_result(token: str, args: dict[str, Any]) -> dict[str, Any]:
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/mock", "userId": "MOCK"}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
    if token == "aws:index/getRegion:getRegion":
        return {"name": "us-east-1", "region": "us-east-1"}
    if token == "aws:iam/getPolicyDocument:getPolicyDocument":
        return {"json": json.dumps({"Version": "2012-10-17", "Statement": args.get("statements", [])})}
    if token == "gcp:organizations/getProject:getProject":
        return {"projectId": args.get("projectId", "mock-project"), "number": "123456789"}
    return {}
