"""gpuplane.engine.runtime: the mock monitor's calls run inline, one at a time, as a pool thread would.

The SDK hands every monitor call to ``run_in_executor``; run_program answers them on the event
loop's thread (no thread hand-off). A registration must never run inside another one (the mock
monitor's ``_sync_await`` would otherwise pump the program's loop and nest registrations
without bound: a RecursionError on large stacks), and a call's exception must reach the program.
"""

from __future__ import annotations

import threading

import pulumi
import pulumi_random
import pytest

from gpuplane.engine import runtime


def test_registrations_run_on_the_loop_thread_one_at_a_time(monkeypatch):
    depth, deepest, threads = [0], [0], set()
    original = runtime.RecordingMonitor.RegisterResource

    def register(self, request):
        depth[0] += 1
        deepest[0] = max(deepest[0], depth[0])
        threads.add(threading.get_ident())
        try:
            return original(self, request)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(runtime.RecordingMonitor, "RegisterResource", register)

    def program():
        for i in range(400):
            parent = pulumi_random.RandomPet(f"pet-{i}", length=2)
            pulumi_random.RandomId(f"id-{i}", byte_length=4, keepers={"pet": parent.id}, opts=pulumi.ResourceOptions(parent=parent))

    run = runtime.run_program(program, project="p", stack="s")
    assert len(run.resources) == 800
    assert deepest[0] == 1, f"registrations nested {deepest[0]} deep"
    assert threads == {threading.get_ident()}


def test_a_monitor_error_reaches_the_program(monkeypatch):
    def fail(self, args):
        raise ValueError("mock says no")

    monkeypatch.setattr(runtime._Mocks, "call", fail)

    def program():
        pulumi.runtime.invoke("random:index/unknown:unknown", {})

    with pytest.raises(Exception, match="mock says no"):
        runtime.run_program(program, project="p", stack="s")
