"""Copy a bucket prefix into a pod volume: the init container every component uses for it.

The copy runs as the pod's service account, so the cloud identity bound to it (IRSA on EKS,
Workload Identity on GKE) decides what may be read; no keys are mounted.
"""

from __future__ import annotations

from typing import Any

# Pinned CLI images that can copy from each scheme.
SYNC_IMAGES = {
    "s3": "public.ecr.aws/aws-cli/aws-cli:2.22.35",
    "gs": "gcr.io/google.com/cloudsdktool/google-cloud-cli:502.0.0-slim",
}


def sync_command(uri: str, dest: str) -> list[str]:
    """The command copying ``uri`` (``s3://`` or ``gs://``) into directory ``dest``."""
    scheme = uri.split("://", 1)[0]
    if scheme == "s3":
        return ["aws", "s3", "sync", "--only-show-errors", uri, dest]
    if scheme == "gs":
        return ["gcloud", "storage", "rsync", "--recursive", uri, dest]
    raise ValueError(f"cannot copy from {uri!r}: only s3:// and gs:// URLs are supported")


def sync_init_container(name: str, uri: str, volume: str, dest: str) -> dict[str, Any]:
    """An init container (Kubernetes wire form) copying ``uri`` into ``volume`` mounted at ``dest``."""
    scheme = uri.split("://", 1)[0]
    return {
        "name": name,
        "image": SYNC_IMAGES[scheme],
        "command": sync_command(uri, dest),
        "volumeMounts": [{"name": volume, "mountPath": dest}],
    }
