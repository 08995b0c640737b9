"""The workload's exit codes (standard library only, so the entry point can use them before torch loads)."""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PREEMPTED = 75
"""EX_TEMPFAIL: the run stopped on a preemption notice after saving a checkpoint; requeue it."""
