"""Child processes of the demo: each in its own process group, all stopped on the way out.

:class:`Processes` starts commands with ``start_new_session=True`` (so a signal to the group
reaches the command and whatever it spawned, and a Ctrl-C at the terminal reaches only the demo,
which then stops them in order), writes their output to a log file, and on :meth:`close`
stops every one still running: SIGTERM to the group, SIGKILL after a timeout. Descendants that
moved to a session of their own (the activator starts the model server that way) are found
through ``/proc`` before the signal and killed if they outlive their parent.

Nothing here knows about the demo's steps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """The environment of every child: the repository on ``PYTHONPATH``, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("FEAST_USAGE", "False")
    return env


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses; split after the last ')'.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Processes:
    """The demo's children; use as a context manager so that they are always stopped."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def spawn(self, args: Sequence[str], log_path: Path, *, pipe: bool = False,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``args`` in the repository root, in a new process group (``env``: extra variables).

        Output goes to ``log_path``, or, with ``pipe``, to ``stdout`` of the returned process
        (the caller reads it and writes the log, see :func:`lines`).
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if pipe:
            out: int | IO[bytes] = subprocess.PIPE
        else:
            log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
            self._logs.append(log)
            out = log
        p = subprocess.Popen(list(args), cwd=REPO_ROOT, env={**child_env(), **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes], timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal ``p``'s group, wait up to ``timeout_s``, then SIGKILL it and any stray descendant."""
        if p.poll() is not None:
            self._kill_strays(descendants(p.pid))
            return p.returncode
        strays = descendants(p.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        self._kill_strays(strays, grace_s=2.0)
        return p.returncode

    @staticmethod
    def _kill_strays(pids: list[int], grace_s: float = 0.0) -> None:
        deadline = time.monotonic() + grace_s
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0  # SIGKILL is delivered asynchronously
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        """Stop every child still running (latest first), then close the log files.

        A second interrupt while they drain (Ctrl-C again, SIGTERM) kills what is left at once
        and is then re-raised.
        """
        try:
            for p in reversed(self._procs):
                self.stop(p, timeout_s=10.0)
        except BaseException:
            for p in self._procs:
                if p.poll() is None:
                    strays = descendants(p.pid)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(p.pid, signal.SIGKILL)
                    self._kill_strays(strays)
            raise
        finally:
            self._procs.clear()
            for log in self._logs:
                log.close()
            self._logs.clear()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lines(p: subprocess.Popen[bytes], log_path: Path) -> Iterator[str]:
    """Lines of a piped child's output as they come, each also appended to ``log_path``."""
    if p.stdout is None:
        raise ValueError("lines(): the process was not started with pipe=True")
    with open(log_path, "ab") as log:
        for raw in iter(p.stdout.readline, b""):
            log.write(raw)
            log.flush()
            yield raw.decode(errors="replace").rstrip("\n")


def tail(path: Path, n: int = 15) -> str:
    """The last ``n`` lines of a log file ('' when it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
