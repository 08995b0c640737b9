"""The cost and cold-start simulator (``gpuplane simulate``).

Traffic (synthetic or read from trace files) → a service model → serving policies simulated side
by side → cost, cold-start fraction, latency percentiles, SLO attainment, the Pareto frontier of
cost vs cold starts and a recommended setting; plus the spot training cost model. See
docs/simulator.md. Pure numpy; nothing here touches the network or the cloud.
"""

from gpuplane.simulate.engine import PolicyResult, simulate
from gpuplane.simulate.policies import (
    HistogramKeepAlive,
    KnativeKeepAlive,
    Oracle,
    PolicyError,
    ServerlessPerRequest,
    StaticPeak,
)
from gpuplane.simulate.prices import PriceError, PriceSpec, price_spec
from gpuplane.simulate.service import ColdStart, ServiceModel, ServiceModelError
from gpuplane.simulate.sweep import (
    SweepResult,
    SweepSpec,
    cheapest_meeting,
    endpoint_args,
    pareto_frontier,
    run_sweep,
)
from gpuplane.simulate.traffic import (
    Trace,
    TraceFormatError,
    TrafficSpec,
    read_azure_functions,
    read_timestamps,
    synthetic_trace,
)
from gpuplane.simulate.training import (
    SpotJob,
    TrainingEstimate,
    estimate,
    expected_hours,
    monte_carlo,
    young_daly_interval,
)

__all__ = [
    "ColdStart",
    "HistogramKeepAlive",
    "KnativeKeepAlive",
    "Oracle",
    "PolicyError",
    "PolicyResult",
    "PriceError",
    "PriceSpec",
    "ServerlessPerRequest",
    "ServiceModel",
    "ServiceModelError",
    "SpotJob",
    "StaticPeak",
    "SweepResult",
    "SweepSpec",
    "Trace",
    "TraceFormatError",
    "TrafficSpec",
    "TrainingEstimate",
    "cheapest_meeting",
    "endpoint_args",
    "estimate",
    "expected_hours",
    "monte_carlo",
    "pareto_frontier",
    "price_spec",
    "read_azure_functions",
    "read_timestamps",
    "run_sweep",
    "simulate",
    "synthetic_trace",
    "young_daly_interval",
]
