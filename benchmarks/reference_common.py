"""Where the benchmarks find public data files that are not shipped in this repository.

The request traces (Azure Functions 2019 sample, Azure LLM inference traces) are public datasets
kept outside the clone: in ``$GPUPLANE_REFERENCE_DATA/traces/`` or, by default, in
``../shared/reference-data/traces/`` beside the repository. A missing file is one line naming where
to get it (``missing``), never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SOURCES = {
    "azure_functions_2019_invitro_sample_1200_inv.csv": (
        "github.com/vhive-serverless/invitro, data/traces/1200_inv.csv at commit 4faeaac85ed39cfdfac1ef0ddffa3b588e10198c "
        "(a sample of the Azure Functions Trace 2019, CC-BY 4.0)"),
    "AzureLLMInferenceTrace_code.csv": "github.com/Azure/AzurePublicDataset, data/AzureLLMInferenceTrace_code.csv (CC-BY 4.0)",
    "AzureLLMInferenceTrace_conv.csv": "github.com/Azure/AzurePublicDataset, data/AzureLLMInferenceTrace_conv.csv (CC-BY 4.0)",
}


def reference_dirs() -> list[Path]:
    """Folders searched, in order: $GPUPLANE_REFERENCE_DATA, then ../shared/reference-data."""
    env = os.environ.get("GPUPLANE_REFERENCE_DATA")
    return [*([Path(env)] if env else []), ROOT.parent / "shared" / "reference-data"]


def trace_path(name: str) -> Path:
    """The first existing ``traces/<name>``, else where it would be looked for first."""
    candidates = [d / "traces" / name for d in reference_dirs()]
    return next((p for p in candidates if p.is_file()), candidates[0])


def missing(path: Path, script: str) -> str:
    """One line: which file is missing, where to get it, where to put it."""
    source = SOURCES.get(path.name, "its public source")
    return (f"{script}: skipped: trace {path} not found. Get {path.name} from {source}, put it in "
            f"$GPUPLANE_REFERENCE_DATA/traces/ or ../shared/reference-data/traces/, or pass --trace PATH.")
