"""``python -m workloads.training`` (or under torchrun): train, evaluate, export.

Exit codes: 0 done, 75 preempted after a checkpoint (requeue), 2 usage error, 1 anything else.
Run ``python -m workloads.training --help`` for the flags; ``config.py`` documents each field.
"""

from __future__ import annotations

import sys

from workloads.training.config import EXIT_USAGE, UsageError, build_parser, parse_args
from workloads.training.train import run


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_args(argv)
    except UsageError as err:
        build_parser().print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(cfg).exit_code
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
