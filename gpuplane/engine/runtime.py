"""Run a Pulumi program under the SDK's mock runtime and record every registration.

This is how ``gpuplane plan`` and the test suite see what a program would create without the
Pulumi CLI, a provider plugin or a cloud account (REFERENCE.md §1):

- a fresh event loop and fresh runtime settings per run, so runs never leak into each other;
- ``set_all_config`` with the stack's config (JSON strings, as the CLI passes them);
- a ``RecordingMonitor`` that keeps, for every resource: URN, type, name, parent URN,
  custom/remote, provider reference, the inputs as the engine sees them (wire names, numbers
  as floats) and the resource options policies care about (protect, ignoreChanges,
  dependencies);
- ``MockOutputs`` that answer each registration with its inputs plus plausible computed
  outputs (ids, ARNs, endpoints), so ``apply`` chains in components resolve.
- the SDK's monitor calls run inline on the loop's thread (``_InlineExecutor``), not in a
  thread pool: the mock monitor answers at once, and the hand-off cost more than the call.

Provider-side behaviour (defaults, autonaming, Helm rendering, transforms) does not happen
here; that is the documented limit of the mock runtime.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func

from gpuplane.engine.mock_outputs import computed_outputs, invoke_result


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    remote: bool
    provider: str | None
    inputs: dict[str, Any]
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape ``gpuplane plan --format json`` prints for a resource (stable)."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider,
            "inputs": self.inputs,
        }


@dataclass
class ProgramRun:
    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    stack_urn: str | None = None

    def by_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.resources if r.type == type_ and (name is None or r.name == name)]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}{f' named {name}' if name else ''}, found {[r.urn for r in found]}")
        return found[0]

    def named(self, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one resource named {name}, found {[r.urn for r in found]}")
        return found[0]

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        state = dict(args.inputs)
        state.update(computed_outputs(args.typ, args.name, args.inputs))
        return (f"{args.name}-id" if args.custom else None), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        return invoke_result(args.token, args.args), []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping every registration in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.stack_urn: str | None = None

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the Pulumi engine gives (pkg/resource/deploy/source_eval.go): the parent's whole
        qualified type, ``$``, the type; the root stack's type is implied and left out. The SDK's mock
        monitor prefixes the parent's last type only, so top-level resources came out as
        ``...::pulumi:pulumi:Stack$gpuplane:index:X::name`` and grandchildren lost their grandparent:
        violations then named URNs that `pulumi preview` never reports."""
        qualified = type_
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                qualified = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([settings.get_stack(), settings.get_project(), qualified, name])

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        inputs = rpc.deserialize_properties(request.object)
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                remote=bool(request.remote),
                provider=request.provider or None,
                inputs=_plain(inputs),
                protect=bool(request.protect),
                ignore_changes=list(request.ignoreChanges),
                dependencies=list(request.dependencies),
                id=response.id or None,
            )
        )
        return response


def _plain(value: Any) -> Any:
    """Inputs as JSON-able data (resource references become their URN, secrets their value)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return getattr(value, "_name", repr(value))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """Skip the SDK's per-registration ``traceback.extract_stack`` (source positions for the
    engine's display): offline nobody shows them, and they cost about a third of a plan.
    A private SDK hook; when it is absent the SDK's own behaviour is kept."""
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    original = getattr(sdk_resource, "_get_stack_trace", None)
    if original is None:  # pragma: no cover - a future SDK without the hook
        yield
        return
    sdk_resource._get_stack_trace = source_pb2.StackTrace  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a program runs (the previous state is restored).

    A run allocates many objects and few cycles, on top of the millions of long-lived objects
    the provider SDKs' type tables leave in memory; every full collection walks all of them.
    Pausing the collector makes a plan about a third faster for about a tenth more peak memory
    (2,435 resources: 10.0 s and 316 MB instead of 15.6 s and 280 MB; benchmarks/plan_bench.py).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs what the SDK hands to ``run_in_executor`` at once, on the event loop's thread, as a
    pool thread would run it.

    The SDK sends every monitor call (RegisterResource, Invoke, ...) to a thread pool because a
    real monitor is a gRPC server; the mock monitor answers in microseconds, so the hand-off to
    a thread and back (a queue, a wake-up, a GIL switch per call) costs more than the call.
    While a call runs here, the thread looks as a pool thread does to asyncio: no running loop,
    and its own event loop (``side``, one for all calls), so the mock monitor's ``_sync_await``
    runs its coroutine to completion on that loop instead of re-entering the program's loop
    (which would nest one registration inside another, without bound). A call's result or
    exception is delivered through the future as before. (asyncio accepts only a
    ``ThreadPoolExecutor`` as the default executor; this one never starts a thread.)"""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(max_workers=1)
        self.loop = loop
        self.side = asyncio.new_event_loop()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        running = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(self.side)
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        finally:
            asyncio.set_event_loop(self.loop)
            asyncio.events._set_running_loop(running)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.side.close()
        super().shutdown(wait, cancel_futures=cancel_futures)


_PULUMI_ENV = ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN", "PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")


@contextlib.contextmanager
def _clean_pulumi_env() -> Iterator[None]:
    """The SDK reads these if set (by a surrounding `pulumi` process); an offline run must not."""
    saved = {k: os.environ.pop(k) for k in _PULUMI_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_program(
    program: Callable[[], Any],
    *,
    project: str = "gpuplane",
    stack: str = "dev",
    config: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    preview: bool = False,
) -> ProgramRun:
    """Run ``program`` under mocks with ``config`` (``{"ns:key": value}``) and return the record.

    Values that are not strings are JSON-encoded, the way the CLI passes structured config.
    Exceptions from the program propagate unchanged (after the runtime is torn down).
    """
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_InlineExecutor(loop))
    previous_loop = None
    with contextlib.suppress(RuntimeError):
        previous_loop = asyncio.get_event_loop_policy().get_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with _clean_pulumi_env(), _no_source_positions(), _collector_paused():
            settings.reset_options(project=project, stack=stack, preview=preview)
            set_all_config(
                {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()},
                secret_keys or [],
            )
            monitor = RecordingMonitor(_Mocks())
            pulumi.runtime.set_mocks(_Mocks(), project=project, stack=stack, preview=preview, monitor=monitor)
            loop.run_until_complete(run_pulumi_func(program))
            root = settings.get_root_resource()
            outputs = loop.run_until_complete(_resolve_outputs(getattr(root, "outputs", {}) or {}))
        return ProgramRun(project, stack, list(monitor.recorded), outputs, monitor.stack_urn)
    finally:
        settings.reset_options()
        set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(previous_loop)


async def _resolve_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in outputs.items():
        out = pulumi.Output.from_input(value)
        known = await out.is_known()
        resolved[key] = _plain(await out.future()) if known else "<unknown>"
    return resolved
