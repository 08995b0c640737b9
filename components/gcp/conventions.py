"""Conventions every GCP backend shares: labels from tags, per-zone node counts, node OAuth scopes.

Pure values and functions; creates nothing. A low-level building block: it imports no capability.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
"""Access is governed by IAM roles, so the scope is the full one (Google's recommendation)."""
_LABEL_MAX = 63



def gcp_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags as GCP resource labels, which allow only ``[a-z0-9_-]``, at most 63 characters.

    Keys and values are lowercased and other characters become ``_``; a key that does not start
    with a letter gets a ``t`` prefix. Keys that collide after this keep the value of the key
    that sorts last, so the result does not depend on dict order.
    """

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", str(text).lower())[:_LABEL_MAX]

    labels: dict[str, str] = {}
    for key in sorted(tags):
        k = clean(key)
        if not k or not k[0].isalpha():
            k = f"t{k}"[:_LABEL_MAX]
        labels[k] = clean(tags[key])
    return labels


def per_zone(total: int, zones: int) -> int:
    """GKE counts ``initial_node_count`` / ``node_count`` per zone: the per-zone count covering ``total``."""
    return math.ceil(total / max(1, zones))
