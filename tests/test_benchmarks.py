"""Every benchmark script runs to the end at smoke sizes (benchmarks/smoke_common.py); no figure is checked."""

from __future__ import annotations

import pytest

from benchmarks.smoke_common import ENGINE_LANE, SMOKE, run, scripts


def test_every_benchmark_script_has_smoke_arguments():
    assert set(scripts()) == set(SMOKE), "add the new script to SMOKE (or a helper to HELPERS) in benchmarks/smoke_common.py"


@pytest.mark.slow
@pytest.mark.timeout(660)
@pytest.mark.parametrize("name", [s for s in scripts() if s not in ENGINE_LANE])
def test_benchmark_script_runs_at_smoke_size(name):
    r = run(name)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"python -m benchmarks.{name} {' '.join(SMOKE.get(name, []))} exited {r.returncode}:\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
