"""Convert each distinct protobuf ``Struct`` to a dict once while the policy pack evaluates.

``pulumi_policy``'s analyzer servicer turns a request's properties into a dict with
``json_format.MessageToDict`` (pure Python, recursive) for every policy it runs on a resource,
and again for the resource's provider: with a pack of about twenty policies that is about fifty
conversions of the same message per resource and a third of the policy phase of a plan.
``memoized_struct_to_dict()`` replaces the ``json_format`` that ``pulumi_policy.policy`` sees,
for the duration of the ``with`` block, by one that answers a ``Struct`` it has converted
before (same serialized bytes, map keys sorted) from a memo; anything else goes to the real
function.

Sharing one dict between calls is safe there because every caller in ``pulumi_policy.policy``
(``Analyze``, ``AnalyzeStack``, ``Remediate``, ``_get_provider_resource``) hands it straight to
``deserialize_properties``, which builds new dicts and lists and keeps only the immutable leaf
values; ``Configure`` (whose config dicts are kept and copied shallowly) must run outside the
block. A private detail of pulumi-policy, pinned to a minor version: if the module no longer
has a ``json_format`` attribute, the block changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from google.protobuf import json_format, struct_pb2


class _MemoJsonFormat:
    """``json_format`` with ``MessageToDict`` memoized for ``Struct`` messages (default options)."""

    def __init__(self, real: ModuleType):
        self._real = real
        self._memo: dict[bytes, dict[str, Any]] = {}
        self.hits = 0

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or type(message) is not struct_pb2.Struct:
            return self._real.MessageToDict(message, *args, **kwargs)
        key = message.SerializeToString(deterministic=True)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._real.MessageToDict(message)
        else:
            self.hits += 1
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def memoized_struct_to_dict() -> Iterator[_MemoJsonFormat | None]:
    """While the block runs, ``pulumi_policy.policy`` converts each distinct Struct once."""
    from pulumi_policy import policy as policy_module

    real = getattr(policy_module, "json_format", None)
    if real is not json_format:  # pragma: no cover - a pulumi-policy that no longer uses it this way
        yield None
        return
    memo = _MemoJsonFormat(real)
    policy_module.json_format = memo  # type: ignore[assignment]
    try:
        yield memo
    finally:
        policy_module.json_format = real
