"""A small HTTP client of the Feast feature server: each user's last N items, for a model server.

Contract:

- ``FeastHistoryClient(url)`` POSTs ``{"features": ["user_last_items:last_items"],
  "entities": {"user_id": [...]}}`` to ``{url}/get-online-features`` (Feast's HTTP feature
  server, ``feast serve``) and returns, per requested user and in request order, the list of
  item ids (oldest first). One request per call, whatever the batch size.
- It never imports Feast (its import costs seconds of a model server's cold start); it needs
  only httpx.
- Errors are typed so that the model server can answer with the right status: a user id that
  is not an integer -> ``InvalidUserIdError`` (400); users the store does not know ->
  ``UnknownUserError`` naming every one of them (404); an unreachable, slow or failing feature
  server -> ``FeatureServerError`` (503). All three subclass ``HistoryError``, which carries
  ``status``, so a server maps any of them to a 4xx/5xx OIP error, never an unhandled 500.
- ``histories(user_ids)`` is the lenient form that ``workloads.serving.history`` expects of a
  history source: invalid or unknown users get an empty history (the model server then
  answers 400 for them), and only a feature-server failure raises.
- Optional in-process cache: with ``cache_ttl_seconds > 0``, known users' histories are
  reused for that long (bounded LRU of ``cache_max_entries``); only the misses are fetched.
  Unknown users are not cached, so a newly materialised user is found on the next call.
- Optional tracing: given an OpenTelemetry ``tracer``, each request to the feature server is a
  CLIENT span ``POST /get-online-features`` (child of the caller's current span) and carries its
  W3C ``traceparent``; without one nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import httpx

LAST_ITEMS_FEATURE = "user_last_items:last_items"
INT64_MAX = 2**63 - 1


class HistoryError(Exception):
    """A history lookup that failed; ``status`` is the HTTP status a server should answer with."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidUserIdError(HistoryError, ValueError):
    """A user id that is not a non-negative 64-bit integer."""

    status = 400


class UnknownUserError(HistoryError, LookupError):
    """Users the feature store has no history for; ``user_ids`` lists them."""

    status = 404

    def __init__(self, user_ids: Sequence[int]) -> None:
        shown = ", ".join(str(u) for u in list(user_ids)[:10]) + (" ..." if len(user_ids) > 10 else "")
        super().__init__(
            f"unknown user_id ({len(user_ids)}): {shown}. The feature store has no history for "
            "them; send their recent items as item_ids instead, or materialise their events first."
        )
        self.user_ids = list(user_ids)


class FeatureServerError(HistoryError):
    """The feature server could not be reached, timed out or answered with an error."""

    status = 503


def parse_user_id(value: Any) -> int:
    """A user id as int64: ints, or strings / bytes of decimal digits (OIP BYTES inputs)."""
    raw = value
    if isinstance(value, bytes | bytearray):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidUserIdError(f"user_id={raw!r} is not a decimal integer") from None
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise InvalidUserIdError(f"user_id={raw!r} is not a decimal integer (user ids are int64 >= 0)")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidUserIdError(f"user_id={raw!r} has type {type(raw).__name__}; send an INT64 or a decimal string")
    if not 0 <= value <= INT64_MAX:
        raise InvalidUserIdError(f"user_id={raw!r} is outside 0..{INT64_MAX}")
    return value


class FeastHistoryClient:
    """Last items per user from a Feast feature server (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        feature: str = LAST_ITEMS_FEATURE,
        timeout_s: float = 2.0,
        cache_ttl_seconds: float = 0.0,
        cache_max_entries: int = 100_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        tracer: Any = None,
    ) -> None:
        if ":" not in feature:
            raise ValueError(f"FeastHistoryClient: feature={feature!r} must be 'feature_view:feature'")
        if cache_ttl_seconds < 0 or cache_max_entries < 1:
            raise ValueError(
                f"FeastHistoryClient: cache_ttl_seconds={cache_ttl_seconds} must be >= 0 and "
                f"cache_max_entries={cache_max_entries} >= 1"
            )
        self.url = url.rstrip("/")
        self.feature = feature
        self._feature_name = feature.split(":", 1)[1]
        self.timeout_s = timeout_s
        self.cache_ttl_seconds = cache_ttl_seconds
        self.cache_max_entries = cache_max_entries
        self._cache: OrderedDict[int, tuple[float, list[int]]] = OrderedDict()
        self._clock = clock
        self._tracer = tracer
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self.requests_sent = 0
        """Requests sent to the feature server (cache hits send none)."""

    async def last_items(self, user_ids: Sequence[Any]) -> list[list[int]]:
        """Each user's last items, oldest first, in the order of ``user_ids``.

        Raises ``InvalidUserIdError`` for a non-integer id and ``UnknownUserError`` (naming all
        of them) for users the store does not know.
        """
        ids = [parse_user_id(u) for u in user_ids]
        found = await self._lookup(ids)
        unknown = list(dict.fromkeys(u for u in ids if found[u] is None))
        if unknown:
            raise UnknownUserError(unknown)
        return [list(found[u] or ()) for u in ids]

    async def histories(self, user_ids: Sequence[Any]) -> list[tuple[int, ...]]:
        """Lenient form for a model server's history source: an id that is not an integer or
        that the store does not know gets an empty history (the server answers 4xx for it)."""
        parsed: list[int | None] = []
        for raw in user_ids:
            try:
                parsed.append(parse_user_id(raw))
            except InvalidUserIdError:
                parsed.append(None)
        found = await self._lookup([u for u in parsed if u is not None])
        return [tuple(found.get(u) or ()) if u is not None else () for u in parsed]

    async def _lookup(self, ids: list[int]) -> dict[int, list[int] | None]:
        """Cache hits plus one request for the misses; ``None`` for unknown users."""
        found: dict[int, list[int] | None] = {}
        now = self._clock()
        if self.cache_ttl_seconds > 0:
            for uid in ids:
                entry = self._cache.get(uid)
                if entry is not None and entry[0] > now:
                    found[uid] = entry[1]
                    self._cache.move_to_end(uid)
        misses = list(dict.fromkeys(u for u in ids if u not in found))
        if misses:
            fetched = await self._fetch(misses)
            for uid in misses:
                items = fetched.get(uid)
                found[uid] = items
                if items is not None and self.cache_ttl_seconds > 0:
                    self._remember(uid, items, now)
        return found

    def _remember(self, uid: int, items: list[int], now: float) -> None:
        self._cache[uid] = (now + self.cache_ttl_seconds, items)
        self._cache.move_to_end(uid)
        while len(self._cache) > self.cache_max_entries:
            self._cache.popitem(last=False)

    async def _fetch(self, user_ids: list[int]) -> dict[int, list[int] | None]:
        body = {"features": [self.feature], "entities": {"user_id": user_ids}}
        endpoint = f"{self.url}/get-online-features"
        self.requests_sent += 1
        if self._tracer is None:
            response = await self._post(endpoint, body)
        else:
            response = await self._traced_post(endpoint, body, len(user_ids))
        if response.status_code != 200:
            raise FeatureServerError(
                f"feature server {endpoint} answered {response.status_code}: {response.text[:300]}"
            )
        try:
            return self._parse(response.json(), user_ids)
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise FeatureServerError(f"feature server {endpoint} sent an unexpected reply: {err}") from err

    async def _post(self, endpoint: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            return await self._client.post(endpoint, json=body, headers=headers)
        except httpx.TimeoutException as err:
            raise FeatureServerError(f"feature server {endpoint} timed out after {self.timeout_s} s: {err}") from err
        except httpx.TransportError as err:
            raise FeatureServerError(f"feature server {endpoint} is unreachable: {err!r}") from err

    async def _traced_post(self, endpoint: str, body: dict[str, Any], users: int) -> httpx.Response:
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attributes = {"http.request.method": "POST", "url.full": endpoint, "gpuplane.users": users}
        with self._tracer.start_as_current_span("POST /get-online-features", kind=SpanKind.CLIENT,
                                                attributes=attributes) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)  # W3C traceparent (and tracestate) of this span
            response = await self._post(endpoint, body, headers)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
            return response

    def _parse(self, payload: dict[str, Any], user_ids: list[int]) -> dict[int, list[int] | None]:
        names = payload["metadata"]["feature_names"]
        column = payload["results"][names.index(self._feature_name)]
        values, statuses = column["values"], column["statuses"]
        if len(values) != len(user_ids):
            raise ValueError(f"{len(values)} values for {len(user_ids)} users")
        out: dict[int, list[int] | None] = {}
        for uid, value, status in zip(user_ids, values, statuses, strict=True):
            out[uid] = [int(v) for v in value] if status == "PRESENT" and value is not None else None
        return out

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> FeastHistoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
