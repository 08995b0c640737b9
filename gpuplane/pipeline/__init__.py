"""``gpuplane pipeline``: the model loop on one machine (see :mod:`gpuplane.pipeline.loop`).

New data lands → features are re-materialised → the champion is fine-tuned (or a model trained
from scratch) → evaluated on held-out users → registered in MLflow (SQLite + a directory) →
gated → canaried behind the router and the activator → promoted to 100 % or rolled back, with
requests flowing throughout; then two drills (a worse model the gate rejects, a model whose
server fails that the canary rolls back). The report is ``pipeline-report.md`` / ``.json``.
"""

from gpuplane.pipeline.config import FULL, TINY, LoopConfig
from gpuplane.pipeline.loop import run_loop

__all__ = ["FULL", "TINY", "LoopConfig", "run_loop"]
