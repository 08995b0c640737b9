"""gpuplane: the command line (plan, cost, simulate, demo) and the offline plan engine."""
