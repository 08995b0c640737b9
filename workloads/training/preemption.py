"""Preemption notices: SIGTERM / SIGINT and the clouds' metadata notices set one stop flag.

- ``StopFlag``: a thread-safe flag with the reason it was set.
- ``install_signal_handlers``: the first SIGTERM or SIGINT sets the flag and training goes on to
  the next step boundary, where all ranks agree (``train.py`` all-reduces the flag with MAX),
  checkpoint and exit 75. A second signal exits at once with 75: the save in progress is
  abandoned, and because checkpoints commit atomically the last complete one stays intact.
- ``NoticePoller``: a daemon thread polling the metadata service.
  AWS: ``GET .../spot/instance-action`` is 404 until an interruption is scheduled, then JSON
  ``{"action": "terminate"|"stop"|"hibernate", "time": ...}``; an IMDSv2 token is fetched with
  ``PUT /latest/api/token`` when the service offers one. GCE: ``GET .../instance/preempted``
  (header ``Metadata-Flavor: Google``) returns ``TRUE`` once preemption has begun.
  Errors are logged once and polling continues: a notice is best effort, SIGTERM is the backstop.

Only the standard library is imported (the run configuration is imported lazily), so the entry
point installs the signal handlers before torch loads: a SIGTERM in the first seconds of a run
still ends in exit 75.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from workloads.training.exit_codes import EXIT_PREEMPTED

if TYPE_CHECKING:
    from workloads.training.config import PreemptionConfig

AWS_TOKEN_TTL_SECONDS = 21600


class StopFlag:
    """Set once by a signal handler or the poller; read by the training loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.set_at: float | None = None
        """time.monotonic() when the flag was first set (to time notice-to-checkpoint)."""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self.set_at = time.monotonic()
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def install_signal_handlers(
    stop: StopFlag, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT), log: Callable[[str], None] = print
) -> Callable[[], None]:
    """Route ``signals`` to ``stop``; return a function that restores the previous handlers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log(f"preemption: second signal ({name}); exiting now with {EXIT_PREEMPTED}, last complete checkpoint kept")
            sys.stdout.flush()
            os._exit(EXIT_PREEMPTED)
        log(f"preemption: {name} received; checkpointing at the next step boundary")
        stop.set(name)

    previous = {s: signal.signal(s, handler) for s in signals}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def _aws_token_url(notice_url: str) -> str:
    parts = urllib.parse.urlsplit(notice_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/latest/api/token", "", ""))


class NoticePoller(threading.Thread):
    """Poll a cloud metadata URL and set ``stop`` when it announces a preemption."""

    def __init__(self, cfg: PreemptionConfig, stop: StopFlag, log: Callable[[str], None] = print) -> None:
        from workloads.training.config import DEFAULT_NOTICE_URLS

        super().__init__(name="preemption-notice-poller", daemon=True)
        if cfg.notice_kind not in DEFAULT_NOTICE_URLS:
            raise ValueError(f"notice_kind={cfg.notice_kind!r} has no poller; use one of {sorted(DEFAULT_NOTICE_URLS)}")
        self.kind = cfg.notice_kind
        self.url = cfg.notice_url or DEFAULT_NOTICE_URLS[cfg.notice_kind]
        self.interval = cfg.poll_seconds
        self.stop_flag = stop
        self.log = log
        self._closed = threading.Event()
        self._token: str | None = None
        self._token_expires = 0.0
        self._reported_error = False

    def close(self) -> None:
        self._closed.set()

    def run(self) -> None:
        while not self._closed.is_set() and not self.stop_flag.is_set():
            try:
                notice = self.check()
            except (OSError, ValueError) as err:  # URLError, timeouts, bad JSON
                if not self._reported_error:
                    self.log(f"preemption: notice poll of {self.url} failed ({err}); will keep trying")
                    self._reported_error = True
                notice = None
            if notice:
                self.log(f"preemption: {self.kind} notice: {notice}; checkpointing at the next step boundary")
                self.stop_flag.set(f"{self.kind}-notice")
                return
            self._closed.wait(self.interval)

    def check(self) -> str | None:
        """One poll: a description of the notice, or None when there is none."""
        headers = {}
        if self.kind == "aws":
            token = self._aws_token()
            if token:
                headers["X-aws-ec2-metadata-token"] = token
        else:
            headers["Metadata-Flavor"] = "Google"
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=2) as resp:
                body = resp.read().decode()
        except urllib.error.HTTPError as err:
            if err.code == 404:  # AWS: no interruption scheduled
                return None
            raise
        if self.kind == "aws":
            action = json.loads(body).get("action")
            return f"action={action}" if action in ("terminate", "stop", "hibernate") else None
        return "preempted=TRUE" if body.strip().upper() == "TRUE" else None

    def _aws_token(self) -> str | None:
        """IMDSv2 session token, cached; None where the service offers none (IMDSv1 or a test server)."""
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        req = urllib.request.Request(
            _aws_token_url(self.url),
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(AWS_TOKEN_TTL_SECONDS)},
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                self._token = resp.read().decode().strip()
            self._token_expires = time.monotonic() + AWS_TOKEN_TTL_SECONDS / 2
        except (OSError, ValueError):
            self._token = None
            self._token_expires = time.monotonic() + 60  # try IMDSv2 again in a minute
        return self._token
