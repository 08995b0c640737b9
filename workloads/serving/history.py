"""Where the server finds a user's recent items when a request sends ``user_id`` instead of
``item_ids``: the pluggable history source.

Contract:

- A ``HistorySource`` is an object with ``async histories(user_ids) -> one sequence of item ids
  per user`` (oldest first, any length; an unknown user gets an empty sequence) and
  ``async aclose()``. The server calls ``histories`` once per request on the event loop, so
  an implementation must not block it (use an async HTTP client), and ``aclose`` at shutdown.
- A failure to look up (network, bad reply) raises ``HistoryLookupError``; the server answers
  502 naming the source. Ids outside the model's items are dropped and histories trimmed to
  ``block_size`` by the server (``protocol.history_from_source``), not by the source.
- ``InMemoryHistorySource`` serves a fixed mapping (tests, demos, a snapshot file).
- ``FeastHistorySource`` reads ``user_last_items:last_items`` from the Feast feature server
  (``POST /get-online-features`` over HTTP, ``workloads.features.client``); unknown or
  non-integer user ids get an empty history, an unreachable or failing server raises
  ``HistoryLookupError``. Neither this module nor that client imports Feast, whose import
  alone costs seconds of cold start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


class HistoryLookupError(Exception):
    """The history source could not answer (unreachable, timed out, malformed reply)."""


@runtime_checkable
class HistorySource(Protocol):
    """Looks up users' recent item ids."""

    name: str
    """Shown in error messages and logs, e.g. the feature server URL."""

    async def histories(self, user_ids: Sequence[str]) -> Sequence[Sequence[int]]:
        """One item-id sequence per user, in the order given; empty for an unknown user."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once when the server stops."""
        ...


class FeastHistorySource:
    """Users' recent items from a Feast feature server (``feast serve``) over HTTP."""

    def __init__(self, url: str, *, cache_ttl_seconds: float = 0.0, timeout_s: float = 2.0,
                 transport: Any = None, tracer: Any = None) -> None:
        from workloads.features.client import FeastHistoryClient

        self._client = FeastHistoryClient(url, cache_ttl_seconds=cache_ttl_seconds, timeout_s=timeout_s,
                                          transport=transport, tracer=tracer)
        self.name = f"feast feature server {self._client.url}"

    async def histories(self, user_ids: Sequence[str]) -> Sequence[Sequence[int]]:
        from workloads.features.client import FeatureServerError

        try:
            return await self._client.histories(user_ids)
        except FeatureServerError as exc:
            raise HistoryLookupError(exc.message) from None

    async def aclose(self) -> None:
        await self._client.aclose()


class InMemoryHistorySource:
    """A fixed mapping from user id to recent items."""

    def __init__(self, histories: Mapping[str, Sequence[int]], name: str = "in-memory") -> None:
        self._histories = {str(user): tuple(items) for user, items in histories.items()}
        self.name = name

    async def histories(self, user_ids: Sequence[str]) -> Sequence[Sequence[int]]:
        return [self._histories.get(user, ()) for user in user_ids]

    async def aclose(self) -> None:
        return None
