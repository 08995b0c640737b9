"""torchrun with the workload's exit codes: ``python -m workloads.training.launch [torchrun args]``.

It takes exactly torchrun's arguments (it calls ``torch.distributed.run.main``), e.g.::

    python -m workloads.training.launch --nproc_per_node gpu -m workloads.training --preset small ...

torchrun turns any failed worker into exit code 1, which would hide the contract the
orchestrator relies on (0 done, 75 preempted and requeueable, 2 usage error). This wrapper maps
the workers' codes back (``exit_code_for``), and when the agent itself receives SIGTERM (a pod
being evicted) it exits 75 after torchrun has forwarded the signal and waited for the workers
(``--shutdown_timeout``, 30 s by default), which is when the workers write their checkpoint.
"""

from __future__ import annotations

import sys

from workloads.training.config import EXIT_OK, EXIT_PREEMPTED, EXIT_USAGE


def exit_code_for(worker_codes: list[int]) -> int:
    """One exit code for the job from its workers' codes (negative: killed by that signal)."""
    failed = [c for c in worker_codes if c != 0]
    if not failed:
        return EXIT_OK
    if EXIT_PREEMPTED in failed and all(c == EXIT_PREEMPTED or c < 0 for c in failed):
        return EXIT_PREEMPTED  # some ranks may have been stopped by the agent after the first exited
    if all(c == EXIT_USAGE for c in failed):
        return EXIT_USAGE
    return 1


def main(argv: list[str] | None = None) -> int:
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        torchrun.main(argv)
    except ChildFailedError as err:
        return exit_code_for([failure.exitcode for failure in err.failures.values()])
    except SignalException:
        return EXIT_PREEMPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
