"""The gpuplane policy pack, as the Pulumi CLI runs it.

    pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json

Serves the explicit policy list of policies/pack.py. ``PolicyPack(...)`` starts the analyzer's gRPC server and never
returns, so it is built only when this file runs as the program (the CLI runs it with
``run_name="__main__"``); ``gpuplane plan`` imports ``RULES`` from here (the list is in policies/pack.py)
and evaluates them in-process (gpuplane/engine/policy.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file with policies/ on sys.path, not the repo root: make the repo importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.framework import to_policy  # noqa: E402
from policies.pack import RULES  # noqa: E402

__all__ = ["DEFAULT_ENFORCEMENT", "PACK_NAME", "RULES"]

PACK_NAME = "gpuplane"
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY


if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=DEFAULT_ENFORCEMENT,
        policies=[to_policy(rule) for rule in RULES],
    )
