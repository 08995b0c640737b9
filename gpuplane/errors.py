"""How every `gpuplane` command reports a problem: one line on stderr, then an exit code.

Shared by the top-level CLI (gpuplane/cli.py) and its sub-apps (gpuplane/sandbox/cli.py), so a
sub-app needs no import of the CLI module that mounts it.
"""

from __future__ import annotations

import typer
from rich.console import Console

err = Console(stderr=True)


def one_line(message: str) -> str:
    """Multi-line problem lists ("has 2 problems:\n  - a\n  - b") as one line."""
    lines = [line.strip().removeprefix("- ") for line in message.splitlines() if line.strip()]
    return lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "") if lines else message


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print the problem as one line and return the `typer.Exit` to raise."""
    err.print(f"[red]error:[/red] {one_line(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
