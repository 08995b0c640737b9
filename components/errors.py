"""Input errors for components: collect every problem, raise once, before anything exists.

A planner adds each problem it finds to a ``Problems`` collector and calls
``raise_if_any()`` at the end, so the user sees every mistake in one message that names the
component, the resource name, the property path, the value received and the fix:

    GpuNodePool 'train-h100' has 1 problem:
      - accelerators_per_node = 6: H100 is offered on aws with 8 per node. To fix: set it to 8.

Components call their planner before registering any child resource, so a rejected input leaves
nothing half-created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True)
class Problem:
    path: str
    """Property path in the component's args, e.g. ``gpu_sharing.mig_profile``."""
    value: Any
    """The value received."""
    message: str
    """What is wrong with it."""
    fix: str
    """How to put it right."""

    def render(self) -> str:
        return f"{self.path} = {self.value!r}: {self.message} To fix: {self.fix}"


class ComponentInputError(pulumi.RunError, ValueError):
    """Raised by planners; carries every problem found.

    A ``pulumi.RunError``, so ``pulumi up`` shows the message without a Python traceback.
    """

    def __init__(self, component: str, name: str, problems: list[Problem]):
        self.component = component
        self.name = name
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"{component} '{name}' has {n} problem{'s' if n != 1 else ''}:"]
        lines += [f"  - {p.render()}" for p in self.problems]
        super().__init__("\n".join(lines))


class Problems:
    """Collector for a planner: ``add`` as you go, ``raise_if_any`` once at the end."""

    def __init__(self, component: str, name: str):
        self.component = component
        self.name = name
        self.items: list[Problem] = []

    def add(self, path: str, value: Any, message: str, fix: str) -> None:
        self.items.append(Problem(path, value, message, fix))

    def extend(self, problems: list[Problem]) -> None:
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ComponentInputError(self.component, self.name, self.items)
