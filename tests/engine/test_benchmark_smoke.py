"""The benchmarks that need the sandbox toolchain, at smoke size (benchmarks/smoke_common.py)."""

from __future__ import annotations

import pytest

from benchmarks.smoke_common import ENGINE_LANE, SMOKE, run

pytestmark = pytest.mark.engine


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(ENGINE_LANE))
def test_engine_benchmark_runs_at_smoke_size(name, sandbox):
    r = run(name, timeout=840)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"python -m benchmarks.{name} {' '.join(SMOKE[name])} exited {r.returncode}:\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
