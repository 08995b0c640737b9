"""Sharded checkpoints (torch.distributed.checkpoint) committed atomically, local or in object storage.

Layout under the checkpoint location (a local directory shared by all ranks, or an s3:// / gs://
URL reached through fsspec)::

    step_00000100/.metadata, __0_0.distcp, __1_0.distcp, ..., COMPLETE
    .tmp-step_00000200/...          (local only: a save in progress or one that died)

Commit protocol. A checkpoint exists only once its ``COMPLETE`` marker does, and the marker is
always written last:

- Local: every rank writes its shard into ``.tmp-step_N``; when all have finished, rank 0 renames
  the directory to ``step_N`` (atomic on one filesystem) and then writes ``COMPLETE`` through a
  temporary file, ``fsync`` and ``os.replace``.
- URL: every rank writes its shard into a local staging directory, uploads the files it wrote to
  ``step_N/``; after a barrier rank 0 puts ``COMPLETE`` (one object PUT, atomic in S3 and GCS).

A process killed at any point (SIGKILL, a second SIGTERM, the end of the notice window) leaves
at worst a temporary directory or a marker-less ``step_N``, which loading ignores and the next
save of that step replaces. Pruning deletes the marker of an old checkpoint before its files.

Integrity. The marker records every file of the checkpoint with its size and SHA-256 (each rank
hashes the files it wrote; rank 0 gathers them), so a checkpoint damaged after its commit (a
truncated shard, an overwritten ``.metadata``, one flipped bit, a garbled marker) is detected
before anything is loaded. ``latest_step`` picks the newest complete checkpoint that verifies
(decided by rank 0 and broadcast) and logs each newer one it skips with the reason; a damaged
checkpoint is left in place for inspection and ages out through pruning (or is replaced when
its step is saved again). Hashing reads each shard once more after it is written. Markers
written before checksums existed are accepted when their ``.metadata`` parses, with a log line.
Asynchronous saves (``dcp.async_save``) copy the state to CPU memory before returning (into
buffers kept for the whole run); the caller commits them once every rank reports its write finished (see ``train.py``), on a gloo
process group of its own so background collectives never interleave with training ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.staging import DefaultStager, StagingOptions

from workloads.training.config import CheckpointConfig

# We pass no_dist explicitly for one-process runs; DCP warns about it on every call regardless.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")

MARKER = "COMPLETE"
TMP_PREFIX = ".tmp-"
_STEP_DIR = re.compile(r"^step_(\d{8})$")


def step_name(step: int) -> str:
    return f"step_{step:08d}"


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_local_marker(directory: Path, payload: dict[str, Any]) -> None:
    tmp = directory / f".{MARKER}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(payload, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MARKER)
    _fsync_dir(directory)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes": size, "sha256": hex}}`` for files in ``directory`` (the marker's ``files``)."""
    return {n: {"bytes": (directory / n).stat().st_size, "sha256": sha256_of(directory / n)} for n in names}


def integrity_problem(directory: Path, marker: Any, step: int) -> str | None:
    """Why the checkpoint in ``directory`` must not be loaded, or None when it verifies.

    ``marker`` is the parsed ``COMPLETE`` payload. A marker without ``files`` (written before
    checksums) passes when ``.metadata`` parses.
    """
    if not isinstance(marker, dict) or marker.get("step") != step:
        return f"its {MARKER} marker is not a JSON object for step {step}"
    files = marker.get("files")
    if files is None:
        try:
            dcp.FileSystemReader(str(directory)).read_metadata()
        except Exception as err:  # any failure to parse means "do not load"
            return f"it has no checksums and its .metadata does not parse ({type(err).__name__})"
        return None
    if not isinstance(files, dict) or ".metadata" not in files:
        return f"its {MARKER} marker lists no .metadata checksum"
    for name, want in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if not isinstance(want, dict) or size != want.get("bytes"):
            recorded = want.get("bytes") if isinstance(want, dict) else want
            return f"{name} is {size} bytes, the marker recorded {recorded} (truncated or overwritten)"
        got = sha256_of(path)
        if got != want.get("sha256"):
            return f"{name} has sha256 {got[:16]}..., the marker recorded {str(want.get('sha256'))[:16]}... (corrupted)"
    return None


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(root)


class Checkpointer:
    """Save, commit, list, load and prune checkpoints for one rank of a run."""

    def __init__(
        self,
        cfg: CheckpointConfig,
        *,
        rank: int = 0,
        world_size: int = 1,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        if not cfg.location:
            raise ValueError("Checkpointer needs CheckpointConfig.location")
        self.cfg = cfg
        self.rank = rank
        self.world_size = world_size
        self.group = group
        self.location = cfg.location
        self._pending: tuple[int, Future[Any], Path] | None = None
        self._stager: DefaultStager | None = None
        if cfg.async_save:
            # One stager for the whole run: it keeps its CPU copies between saves, so later saves
            # copy into memory that is already allocated (and pinned on CUDA) instead of faulting
            # in fresh pages while training waits.
            cuda = torch.cuda.is_available()
            self._stager = DefaultStager(StagingOptions(
                use_pinned_memory=cuda, use_shared_memory=False, use_async_staging=False, use_non_blocking_copy=cuda
            ))
        self._owned_staging: str | None = None
        if is_url(cfg.location):
            import fsspec  # only URL checkpoints need it

            options: dict[str, Any] = {}
            if cfg.endpoint_url:
                options["endpoint_url"] = cfg.endpoint_url
            self.fs, root = fsspec.core.url_to_fs(cfg.location, **options)
            self.remote_root = root.rstrip("/")
            if cfg.staging_dir:
                staging = Path(cfg.staging_dir)
            else:
                self._owned_staging = tempfile.mkdtemp(prefix="gpuplane-ckpt-")
                staging = Path(self._owned_staging)
            self.staging = staging / f"rank{rank}"
            self.local_root: Path | None = None
        else:
            self.fs = None
            self.remote_root = ""
            self.local_root = Path(cfg.location.removeprefix("file://"))
            self.staging = Path()
        if rank == 0:
            self._prepare_root()
        self._barrier()

    # ---- listing -------------------------------------------------------------------------------

    def _prepare_root(self) -> None:
        if self.local_root is not None:
            self.local_root.mkdir(parents=True, exist_ok=True)
            for stale in self.local_root.glob(f"{TMP_PREFIX}*"):  # saves that died part-way
                shutil.rmtree(stale, ignore_errors=True)
        else:
            assert self.fs is not None
            self.fs.makedirs(self.remote_root, exist_ok=True)

    def complete_steps(self) -> list[int]:
        """Steps that have a complete checkpoint, oldest first (this rank's view)."""
        steps = []
        if self.local_root is not None:
            if not self.local_root.is_dir():
                return []
            for child in self.local_root.iterdir():
                m = _STEP_DIR.match(child.name)
                if m and (child / MARKER).is_file():
                    steps.append(int(m.group(1)))
        else:
            assert self.fs is not None
            try:
                names = self.fs.ls(self.remote_root, detail=False, refresh=True)
            except FileNotFoundError:
                return []
            for name in names:
                m = _STEP_DIR.match(name.rstrip("/").rsplit("/", 1)[-1])
                if m and self.fs.exists(f"{self.remote_root}/{step_name(int(m.group(1)))}/{MARKER}"):
                    steps.append(int(m.group(1)))
        return sorted(steps)

    def latest_step(self, log: Callable[[str], None] = print) -> int | None:
        """The newest complete checkpoint that verifies, agreed by all ranks (rank 0 decides).

        Each newer complete checkpoint that fails verification is skipped with one ``log`` line
        naming it and the reason.
        """
        chosen: int | None = None
        if self.rank == 0:
            for step in reversed(self.complete_steps()):
                problem = self.verify(step)
                if problem is None:
                    chosen = step
                    break
                log(f"checkpoint {step_name(step)} at {self.location} skipped: {problem}; "
                    "falling back to the previous complete checkpoint")
        box: list[int | None] = [chosen]
        if self._distributed():
            dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def read_marker(self, step: int) -> Any:
        """The parsed ``COMPLETE`` marker of ``step``; None when it is not JSON."""
        try:
            if self.local_root is not None:
                raw = (self.local_root / step_name(step) / MARKER).read_bytes()
            else:
                assert self.fs is not None
                raw = self.fs.cat_file(f"{self.remote_root}/{step_name(step)}/{MARKER}")
            return json.loads(raw)
        except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
            return None

    def verify(self, step: int) -> str | None:
        """Why checkpoint ``step`` must not be loaded (see ``integrity_problem``), or None."""
        marker = self.read_marker(step)
        if marker is None:
            return f"its {MARKER} marker is not valid JSON"
        return integrity_problem(self._readable_dir(step), marker, step)

    def metadata_keys(self, step: int) -> set[str]:
        """Flattened state-dict keys stored in a checkpoint (to restore optional entries)."""
        reader = dcp.FileSystemReader(str(self._readable_dir(step)))
        return set(reader.read_metadata().state_dict_metadata)

    # ---- saving --------------------------------------------------------------------------------

    def save(self, step: int, state_dict: dict[str, Any], *, blocking: bool = True) -> None:
        """Write ``state_dict`` as checkpoint ``step``; all ranks call it at the same step.

        Blocking saves are committed before returning. A non-blocking save returns once the state
        is copied to CPU memory; commit it with ``commit_pending`` after every rank's
        ``pending_written()`` is true, or with ``wait``. A previous pending save is finished first.
        """
        self.wait()
        target = self._write_dir(step)
        if self.rank == 0:
            shutil.rmtree(target, ignore_errors=True)
            self._discard_incomplete(step)
        self._barrier()
        writer = dcp.FileSystemWriter(str(target), thread_count=self.cfg.writer_threads)
        if blocking:
            dcp.save(state_dict, storage_writer=writer, process_group=self.group, no_dist=not self._distributed())
            self._commit(step, target)
        else:
            future = dcp.async_save(
                state_dict,
                storage_writer=writer,
                process_group=self.group,
                no_dist=not self._distributed(),
                async_stager=self._stager,
            )
            self._pending = (step, future, target)  # type: ignore[assignment]

    def has_pending(self) -> bool:
        return self._pending is not None

    def pending_written(self) -> bool:
        """True when there is no pending save or this rank's part of it has been written."""
        return self._pending is None or self._pending[1].done()

    def commit_pending(self) -> None:
        """Commit the pending save; all ranks call it once all have written (see ``pending_written``)."""
        if self._pending is None:
            return
        step, future, target = self._pending
        self._pending = None
        future.result()  # re-raises a failed background write
        self._commit(step, target)

    def wait(self) -> None:
        """Block until the pending save (if any) is written everywhere, then commit it."""
        if self._pending is not None:
            self._pending[1].result()
            self.commit_pending()

    def _write_dir(self, step: int) -> Path:
        if self.local_root is not None:
            return self.local_root / f"{TMP_PREFIX}{step_name(step)}"
        return self.staging / step_name(step)

    def _discard_incomplete(self, step: int) -> None:
        """Remove a marker-less (or to-be-replaced) checkpoint of ``step`` before writing it again."""
        if self.local_root is not None:
            final = self.local_root / step_name(step)
            if final.exists():
                (final / MARKER).unlink(missing_ok=True)
                shutil.rmtree(final)
        else:
            assert self.fs is not None
            remote = f"{self.remote_root}/{step_name(step)}"
            if self.fs.exists(remote):
                if self.fs.exists(f"{remote}/{MARKER}"):
                    self.fs.rm(f"{remote}/{MARKER}")
                self.fs.rm(remote, recursive=True)

    def _gathered_digests(self, written: Path) -> dict[str, dict[str, Any]]:
        """Every rank hashes the files it wrote; rank 0 gets the union (others get theirs)."""
        mine = file_digests(written, [p.name for p in sorted(written.iterdir()) if p.is_file() and self._wrote(p.name)])
        if not self._distributed():
            return mine
        parts: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        dist.gather_object(mine, parts, dst=0, group=self.group)
        merged: dict[str, dict[str, Any]] = {}
        for part in parts or [mine]:
            merged.update(part)
        return merged

    def _commit(self, step: int, written: Path) -> None:
        files = self._gathered_digests(written)
        marker = {"step": step, "world_size": self.world_size, "committed_at": time.time(), "files": files}
        if self.local_root is not None:
            if self.rank == 0:
                _fsync_tree(written)
                final = self.local_root / step_name(step)
                os.replace(written, final)
                _fsync_dir(self.local_root)
                self.write_marker(final, marker)
        else:
            assert self.fs is not None
            remote = f"{self.remote_root}/{step_name(step)}"
            mine = [p for p in sorted(written.iterdir()) if p.is_file() and self._wrote(p.name)]
            for path in mine:
                self.fs.put_file(str(path), f"{remote}/{path.name}")
            self._barrier()  # every rank's files are uploaded before the marker goes up
            if self.rank == 0:
                self.fs.pipe_file(f"{remote}/{MARKER}", (json.dumps(marker, sort_keys=True) + "\n").encode())
            shutil.rmtree(written, ignore_errors=True)
        if self.rank == 0:
            self._prune()
        self._barrier()

    def write_marker(self, directory: Path, payload: dict[str, Any]) -> None:
        """Write the local ``COMPLETE`` marker (a separate method so tests can interrupt it)."""
        _write_local_marker(directory, payload)

    def _wrote(self, filename: str) -> bool:
        """Whether this rank wrote ``filename`` of a DCP checkpoint (rank 0 also owns .metadata)."""
        return filename.startswith(f"__{self.rank}_") or (self.rank == 0 and filename == ".metadata")

    def _prune(self) -> None:
        for old in self.complete_steps()[: -self.cfg.keep_last]:
            if self.local_root is not None:
                d = self.local_root / step_name(old)
                (d / MARKER).unlink()  # no longer complete before anything else goes
                shutil.rmtree(d)
            else:
                assert self.fs is not None
                remote = f"{self.remote_root}/{step_name(old)}"
                self.fs.rm(f"{remote}/{MARKER}")
                self.fs.rm(remote, recursive=True)

    # ---- loading -------------------------------------------------------------------------------

    def _readable_dir(self, step: int) -> Path:
        """A local directory holding checkpoint ``step`` (downloaded for URLs, once)."""
        if self.local_root is not None:
            return self.local_root / step_name(step)
        assert self.fs is not None
        local = self.staging / "download" / step_name(step)
        if not (local / MARKER).is_file():
            shutil.rmtree(local, ignore_errors=True)
            local.mkdir(parents=True)
            remote = f"{self.remote_root}/{step_name(step)}"
            for path in self.fs.find(remote):
                name = path.rsplit("/", 1)[-1]
                if name != MARKER:
                    self.fs.get_file(path, str(local / name))
            (local / MARKER).write_text("downloaded\n")
        return local

    def load(self, step: int, state_dict: dict[str, Any]) -> None:
        """Load checkpoint ``step`` into ``state_dict`` in place (tensors are filled, not replaced).

        Ranks other than 0 verify their own download of a URL checkpoint first (rank 0 verified
        its copy in ``latest_step``; local checkpoints are one shared copy).
        """
        if self.fs is not None and self.rank != 0:
            problem = self.verify(step)
            if problem is not None:
                raise RuntimeError(f"checkpoint {step_name(step)} at {self.location}: {problem} on rank {self.rank}")
        dcp.load(
            state_dict,
            checkpoint_id=str(self._readable_dir(step)),
            process_group=self.group,
            no_dist=not self._distributed(),
        )

    # ---- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Finish a pending save and remove the temporary staging directory this object created."""
        self.wait()
        if self._stager is not None:
            self._stager.close()
            self._stager = None
        if self._owned_staging:
            shutil.rmtree(self._owned_staging, ignore_errors=True)

    def _distributed(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    def _barrier(self) -> None:
        if self._distributed():
            dist.barrier(group=self.group)
