"""Object storage through fsspec: one code path for local folders, ``file://``, ``s3://`` and ``gs://``.

Contract:

- ``open_location(uri, field)`` returns ``(filesystem, path)``; an unknown scheme (or one whose
  fsspec package is missing) is a ``StoreError`` naming the field, the value and the schemes that work.
- ``write_atomic`` makes an object appear whole or not at all: locally a temporary file in the same
  folder, ``fsync`` and ``os.replace``; in a bucket one PUT (S3 and GCS objects appear atomically).
- ``create_exclusive`` creates an object only if it does not exist, atomically, and raises
  ``FileExistsError`` otherwise: locally the content goes to a temporary file that is then
  ``os.link``-ed to the name (``link`` fails when the name exists, and the object is complete the
  moment it is visible, unlike ``O_EXCL`` + write); in a bucket ``pipe_file(mode="create")``, which
  s3fs sends with ``If-None-Match: *`` and gcsfs with ``ifGenerationMatch=0`` (conditional writes:
  the second writer gets 412 and fsspec raises ``FileExistsError``). The manifest's exactly-once
  claim rests on this.
- ``local_dir(uri, field, files)`` gives a local folder holding ``files`` of a location: the folder
  itself for a local path, else a cache folder under the temp dir (one per URI and file generations)
  the files are copied to, each atomically, once (the model export a task loads from a bucket).
- ``generation(info)`` is what changes when an object is replaced: GCS's ``generation``, S3's
  ``ETag`` (plus ``VersionId`` when versioning is on), a local file's ``mtime_ns`` and size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

WORKING_SCHEMES = ("a local path", "file://", "s3://", "gs://")


class StoreError(ValueError):
    """A location cannot be used; the message names the field, the value and the fix."""


def open_location(uri: str, field: str) -> tuple[Any, str]:
    """The filesystem and the path inside it for ``uri`` (a local path or a URL)."""
    if not uri:
        raise StoreError(f"{field} is empty; give {', '.join(WORKING_SCHEMES)} location")
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ValueError, ImportError) as err:
        known = "unknown" if "not known" in str(err) or isinstance(err, ValueError) else "not installed"
        raise StoreError(f"{field}={uri!r}: the scheme {scheme!r} is {known} ({err}); use "
                         f"{', '.join(WORKING_SCHEMES)} (s3fs and gcsfs come with gpuplane[workloads])") from None
    return fs, str(path).rstrip("/") or "/"


def is_local(fs: Any) -> bool:
    return isinstance(fs, LocalFileSystem)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _local_temp(path: str, data: bytes) -> str:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def write_atomic(fs: Any, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old object or the new one, never a part."""
    if is_local(fs):
        tmp = _local_temp(path, data)
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path))
    else:
        fs.pipe_file(path, data)


def create_exclusive(fs: Any, path: str, data: bytes) -> None:
    """Create ``path`` holding ``data`` unless it exists (then ``FileExistsError``); atomic, see the module doc."""
    if is_local(fs):
        tmp = _local_temp(path, data)
        try:
            os.link(tmp, path)  # EEXIST when the name is taken; the content is whole once visible
        finally:
            os.unlink(tmp)
        _fsync_dir(os.path.dirname(path))
    else:
        fs.pipe_file(path, data, mode="create")


def read_bytes(fs: Any, path: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError:
        return None


def remove_tree(fs: Any, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        fs.rm(path, recursive=True)


def generation(fs: Any, path: str, info: dict[str, Any]) -> str:
    """A string that changes when the object at this name is replaced (see the module doc)."""
    if is_local(fs):
        st = os.stat(path)
        return f"mtime-{st.st_mtime_ns}-size-{st.st_size}"
    if info.get("generation") is not None:  # gcsfs
        return f"gen-{info['generation']}"
    if info.get("ETag") or info.get("etag"):  # s3fs (ETag), others (etag)
        tag = str(info.get("ETag") or info.get("etag")).strip('"')
        version = info.get("VersionId")
        return f"etag-{tag}" + (f"-v{version}" if version and version != "null" else "")
    mtime = info.get("mtime") or info.get("created") or 0
    if hasattr(mtime, "timestamp"):  # a datetime (fsspec's memory filesystem)
        mtime = mtime.timestamp()
    mtime_ns = int(float(mtime) * 1e9) if not isinstance(mtime, int) else mtime
    return f"mtime-{mtime_ns}-size-{int(info.get('size') or 0)}"


def local_dir(uri: str, field: str, files: tuple[str, ...], optional: tuple[str, ...] = ()) -> Path:
    """A local folder holding ``files`` (and those of ``optional`` that exist) of location ``uri``.

    A local path or ``file://`` URL is returned as is (checking it is the caller's job); a bucket
    location is copied to ``<tmp>/gpuplane-batch-models/<hash>/``, the hash of the URI and of every
    file's generation (a replaced export is fetched again), unless already there. Raises
    ``StoreError`` naming ``field`` when a required file is missing."""
    fs, root = open_location(uri, field)
    if is_local(fs):
        return Path(root)
    found: dict[str, str] = {}
    for name in files + optional:
        path = join(root, name)
        try:
            found[name] = generation(fs, path, fs.info(path))
        except FileNotFoundError:
            if name not in optional:
                raise StoreError(f"{field}={uri!r}: {name} is not there; point it at the --export-dir of python -m "
                                 "workloads.training, copied to the bucket") from None
    key = hashlib.sha256("\n".join([uri, *(f"{k}={v}" for k, v in sorted(found.items()))]).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "gpuplane-batch-models" / key
    cache.mkdir(parents=True, exist_ok=True)
    for name in found:
        target = cache / name
        if not target.is_file():
            tmp = cache / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            fs.get_file(join(root, name), str(tmp))
            os.replace(tmp, target)
    return cache
