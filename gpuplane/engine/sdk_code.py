"""Faster import of the provider SDKs for an offline plan: their modules compiled with postponed
annotations (PEP 563), the compiled code cached on disk.

Most of a ``gpuplane plan`` process is importing the provider SDK service modules its program
uses (``pulumi_aws.ec2``, ``pulumi_gcp.compute``, ``pulumi_kubernetes.core.v1``): each is
thousands of generated ``*Args`` classes, ``TypedDict`` twins and property getters whose
annotations (``pulumi.Input[Optional[Sequence[...]]]``) Python evaluates when the module runs,
through ``typing``'s slow subscription machinery — about half of the import time. Compiled as
if each module began with ``from __future__ import annotations``, the annotations stay strings
until something asks for them; the Pulumi SDK resolves them with ``typing.get_type_hints`` in
the module's namespace (``pulumi._types``) only for the classes a program actually uses, so
what a program registers is the same (tests/gpuplane/test_sdk_code.py; the reference stacks'
plans are unchanged).

``install()`` puts a finder first on ``sys.meta_path`` for the packages in ``PACKAGES``; a
module already imported is left as it is. The compiled code is kept in
``$XDG_CACHE_HOME/gpuplane/sdk-code/<python tag>/<module>.pyc`` (default ``~/.cache``), keyed
by the interpreter's bytecode magic number and the source file's size and modification time:
a changed or reinstalled SDK recompiles, never runs stale code. When that folder cannot be
created, ``install()`` does nothing (compiling the SDKs on every run would be slower than the
ordinary import). ``GPUPLANE_SDK_CODE_CACHE=0`` turns it off (to compare, or to rule it out).
"""

from __future__ import annotations
import __future__

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

PACKAGES = frozenset({"pulumi_aws", "pulumi_aws_native", "pulumi_gcp", "pulumi_kubernetes", "pulumi_random"})
"""Generated provider SDKs (top-level package names) whose modules are compiled this way."""
ENV_SWITCH = "GPUPLANE_SDK_CODE_CACHE"
_FLAGS = __future__.annotations.compiler_flag


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gpuplane" / "sdk-code" / (sys.implementation.cache_tag or "python")


def _header(source: str) -> bytes:
    st = os.stat(source)
    return importlib.util.MAGIC_NUMBER + f"{_FLAGS:x}:{st.st_size}:{st.st_mtime_ns};".encode()


class _LazyForwardRef(typing.ForwardRef, _root=True):  # type: ignore[misc,call-arg]
    """A ``typing.ForwardRef`` that compiles its expression when first evaluated, not when made.

    With postponed annotations every field of the SDKs' ``*ArgsDict`` ``TypedDict`` classes is a
    string, which ``TypedDict`` turns into a ``ForwardRef`` — and ``ForwardRef()`` compiles the
    string at once: thousands of ``compile()`` calls per service for annotations nothing reads
    (the SDK only asks whether a union member is a ``TypedDict``). Evaluating one
    (``typing.get_type_hints``) compiles it then; equality, hashing and ``repr`` are the base
    class's (expression and module)."""

    def __init__(self, arg: str, is_argument: bool = True, module: Any = None, *, is_class: bool = False):
        if not isinstance(arg, str):
            raise TypeError(f"Forward reference must be a string -- got {arg!r}")
        self.__forward_arg__ = arg
        self.__forward_evaluated__ = False
        self.__forward_value__ = None
        self.__forward_is_argument__ = is_argument
        self.__forward_is_class__ = is_class
        self.__forward_module__ = module

    @property  # type: ignore[override]
    def __forward_code__(self) -> CodeType:  # type: ignore[override]
        code = self.__dict__.get("_code")
        if code is None:
            code = self.__dict__["_code"] = compile(self.__forward_arg__, "<string>", "eval")
        return code


_real_type_convert = typing._type_convert  # type: ignore[attr-defined]


def _lazy_type_convert(arg: Any, module: Any = None, *, allow_special_forms: bool = False) -> Any:
    if isinstance(arg, str):
        return _LazyForwardRef(arg, module=module, is_class=allow_special_forms)
    return _real_type_convert(arg, module=module, allow_special_forms=allow_special_forms)


class _PostponedAnnotationsLoader(importlib.machinery.SourceFileLoader):
    """A source loader that compiles with postponed annotations and caches in ``cache``."""

    def __init__(self, fullname: str, path: str, cache: Path):
        super().__init__(fullname, path)
        self.cache = cache

    def get_code(self, fullname: str) -> CodeType:  # type: ignore[override]
        header = _header(self.path)
        cached = self.cache / f"{fullname}.pyc"
        try:
            data = cached.read_bytes()
        except OSError:
            data = b""
        if data.startswith(header):
            try:
                code = marshal.loads(memoryview(data)[len(header) :])
            except (EOFError, ValueError, TypeError):
                pass  # a torn or foreign file: compile again below
            else:
                if isinstance(code, CodeType):
                    return code
        code = compile(self.get_data(self.path), self.path, "exec", flags=_FLAGS, dont_inherit=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(header + marshal.dumps(code))
            os.replace(tmp, cached)  # atomic: a concurrent plan reads the old file or the new one
        except OSError:
            tmp.unlink(missing_ok=True)
        return code

    def exec_module(self, module: ModuleType) -> None:
        """Run the module with strings made into ``_LazyForwardRef`` (``typing._type_convert``
        is swapped only while an SDK module runs: ``ForwardRef`` itself and every
        ``isinstance`` check on it are untouched)."""
        if typing._type_convert is not _real_type_convert:  # type: ignore[attr-defined]
            super().exec_module(module)  # nested: an outer SDK module already swapped it
            return
        typing._type_convert = _lazy_type_convert  # type: ignore[attr-defined]
        try:
            super().exec_module(module)
        finally:
            typing._type_convert = _real_type_convert  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, cache: Path):
        self.cache = cache

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader and spec.origin:
            spec.loader = _PostponedAnnotationsLoader(fullname, spec.origin, self.cache)
            spec.cached = str(self.cache / f"{fullname}.pyc")
        return spec


def _fast_empty_function_check() -> None:
    """``pulumi._utils.is_empty_function`` with a fast answer for a body that is not empty.

    The SDK's ``@pulumi.getter`` asks, for each of the tens of thousands of property getters it
    decorates at import, whether the body is empty (``...``/a docstring only); the SDK's check
    first builds a tuple of the function's constants, then compares the bytecode with four empty
    templates. A generated getter's body (``return pulumi.get(self, "x")``) never matches their
    bytecode, so the bytecode is compared first: the same answer (the SDK's own check decides
    every function whose bytecode does match), about a tenth of the SDK import time saved."""
    from pulumi import _utils

    original = _utils.is_empty_function
    if getattr(original, "_gpuplane_fast", False):
        return
    templates = {
        f.__code__.co_code for f in (_utils._empty, _utils._empty_doc, _utils._empty_lambda, _utils._empty_lambda_doc)
    }

    def is_empty_function(fn: Any) -> bool:
        return fn.__code__.co_code in templates and original(fn)

    is_empty_function._gpuplane_fast = True  # type: ignore[attr-defined]
    _utils.is_empty_function = is_empty_function


def installed() -> bool:
    return any(isinstance(f, _Finder) for f in sys.meta_path)


def install() -> bool:
    """Compile provider SDK modules imported from now on as described above; True when active.

    Idempotent; False when turned off (``GPUPLANE_SDK_CODE_CACHE=0``) or the cache folder
    cannot be created."""
    if installed():
        return True
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    cache = cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(cache, os.W_OK):
        return False
    with contextlib.suppress(AttributeError):  # an SDK without these private helpers keeps its own check
        _fast_empty_function_check()
    sys.meta_path.insert(0, _Finder(cache))
    return True


def uninstall() -> None:
    """Remove the finder (modules it already loaded stay loaded)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]
