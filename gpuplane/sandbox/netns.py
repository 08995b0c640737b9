"""Run a program that listens on every interface so that it is reachable on loopback only.

Some upstream programs bind their servers to ``:PORT`` (all interfaces) with no flag to change it
(Karpenter's operator: ``pkg/operator/operator.go`` binds metrics and health probes to ``:%d``). The
sandbox serves on loopback only, so such a program runs in a network namespace of its own, which has
only a loopback interface, behind this relay:

    python -I gpuplane/sandbox/netns.py --inward 16443 --outward 16454 -- PROGRAM ARGS...

- ``--inward P``: connections to ``127.0.0.1:P`` inside the namespace reach ``127.0.0.1:P`` on the host
  (the kube-apiserver the program talks to);
- ``--outward P``: connections to ``127.0.0.1:P`` on the host reach ``127.0.0.1:P`` inside the namespace
  (the program's health endpoint), and nothing else of the program is reachable from outside.

The relay forks the program into a new network namespace (``unshare(CLONE_NEWNET)``, loopback brought up),
waits until its inward listeners exist there, then execs it. The relay and the program share a process
group: the sandbox stops both with one signal; the relay exits with the program's exit code. Needs
CAP_SYS_ADMIN (root); ``available()`` says whether it can run. Pure parts: ``relay_argv``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
HOST = "127.0.0.1"
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def available() -> bool:
    """True when this process may create network namespaces (root)."""
    return os.geteuid() == 0 and Path("/proc/self/ns/net").exists()


def relay_argv(argv: list[str], inward: list[int], outward: list[int], python: str = sys.executable) -> list[str]:
    """The command line that runs ``argv`` behind the relay (pure)."""
    flags = [f for p in inward for f in ("--inward", str(p))] + [f for p in outward for f in ("--outward", str(p))]
    # Run as a file (standard library only), so it needs no gpuplane on the child's import path.
    return [python, "-I", str(Path(__file__).resolve()), *flags, "--", *argv]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, _SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        src.close()


def _serve(listener: socket.socket, connect: concurrent.futures.Executor | None, port: int) -> None:
    """Accept on ``listener``; connect to ``127.0.0.1:port`` (in the namespace of ``connect``'s thread, or here)."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            if connect is None:
                peer = socket.create_connection((HOST, port))
            else:
                peer = connect.submit(socket.create_connection, (HOST, port)).result()
        except OSError:
            conn.close()
            continue
        for a, b in ((conn, peer), (peer, conn)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _listen(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, port))
    s.listen(64)
    return s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpuplane.sandbox.netns")
    parser.add_argument("--inward", type=int, action="append", default=[])
    parser.add_argument("--outward", type=int, action="append", default=[])
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("give the program after --")
    libc = _libc()
    ready_r, ready_w = os.pipe()   # child -> relay: the namespace exists
    go_r, go_w = os.pipe()         # relay -> child: the inward listeners exist, exec
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            _check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _loopback_up()
            os.write(ready_w, b"1")
            if os.read(go_r, 1) != b"1":
                os._exit(70)
            os.execvp(program[0], program)
        except BaseException as e:
            print(f"netns relay: starting {program[0]} failed: {e}", file=sys.stderr, flush=True)
            os._exit(71)
    os.close(ready_w)
    os.close(go_r)
    if os.read(ready_r, 1) != b"1":
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    child_ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)

    def enter() -> None:
        _check(libc.setns(child_ns, CLONE_NEWNET), "setns")

    inside = concurrent.futures.ThreadPoolExecutor(max_workers=1, initializer=enter)
    for port in args.inward:
        listener = inside.submit(_listen, port).result()
        threading.Thread(target=_serve, args=(listener, None, port), daemon=True).start()
    for port in args.outward:
        threading.Thread(target=_serve, args=(_listen(port), inside, port), daemon=True).start()
    os.write(go_w, b"1")
    os.close(go_w)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(main())
