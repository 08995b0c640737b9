"""``python -m workloads.training`` (or under torchrun): train, evaluate, export.

Exit codes: 0 done, 75 preempted after a checkpoint (requeue), 2 usage error, 1 anything else.
Run ``python -m workloads.training --help`` for the flags; ``config.py`` documents each field.

The SIGTERM / SIGINT handlers are installed before anything else is imported (torch alone takes
seconds to load): a pod evicted in its first seconds still exits 75 with its checkpoints as they
were, never dies by the signal (which a requeue policy keyed on 75 would count as a failure).
"""

from __future__ import annotations

import sys

from workloads.training.preemption import StopFlag, install_signal_handlers

STOP = StopFlag()
"""Set by the first SIGTERM / SIGINT from process start on; the training loop reads it."""
if __name__ == "__main__":
    install_signal_handlers(STOP, log=lambda m: print(m, flush=True))

from workloads.training.config import EXIT_PREEMPTED, EXIT_USAGE, UsageError, build_parser, parse_args  # noqa: E402
from workloads.training.train import run  # noqa: E402


def main(argv: list[str] | None = None, stop: StopFlag | None = None) -> int:
    """Run the command line ``argv``; ``stop`` is a flag whose signal handlers the caller installed."""
    try:
        cfg = parse_args(argv)
    except UsageError as err:
        build_parser().print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if stop is not None and stop.is_set():
        where = f"checkpoints at {cfg.checkpoint.location} are unchanged" if cfg.checkpoint.location \
            else "there is no --checkpoint-dir"
        print(f"preempted ({stop.reason}) before training started; {where}; exiting {EXIT_PREEMPTED}", flush=True)
        return EXIT_PREEMPTED
    try:
        return run(cfg, stop=stop).exit_code
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(stop=STOP))
