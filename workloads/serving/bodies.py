"""Request bodies over the limit: answer 413 the client can read, not a connection reset.

A server that replies 413 without reading the body and then closes the connection leaves a
client that is still sending (urllib, tritonclient, any client that writes the whole body before
reading) with ECONNRESET instead of the reply: the kernel resets a socket closed with unread
data. Like nginx's lingering close (``lingering_time`` / ``lingering_timeout``), the server
reads and discards the rest of an over-limit body, within a byte and a time budget, before it
replies, and then closes the connection (``Connection: close``).

Not discarded: a body announced with ``Expect: 100-continue`` (the client has not sent it and
waits for our answer), and a body announced above ``DISCARD_MAX_BYTES`` (not worth reading).
Those clients may still see a reset if they send anyway; the reply is sent first regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from starlette.types import Receive

DISCARD_MAX_BYTES = 256 * 1024 * 1024
"""Most bytes of an over-limit body read and discarded before the 413."""
DISCARD_MAX_SECONDS = 10.0
"""Longest spent discarding one over-limit body."""


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length header as an int, or None (absent or not a number)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def expects_continue(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in headers)


def worth_discarding(headers: list[tuple[bytes, bytes]], received: int = 0) -> bool:
    """Whether to read the rest of an over-limit body before replying."""
    if expects_continue(headers):
        return False
    declared = declared_length(headers)
    return (declared if declared is not None else received) <= DISCARD_MAX_BYTES


async def discard_rest(receive: Receive, received: int = 0) -> bool:
    """Read and drop the rest of a request body (ASGI ``http.request`` messages).

    ``received`` bytes were already read. Returns True when the body ended within the budget,
    False when the client left or a budget ran out (then the connection should just close).
    """
    size = received
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCARD_MAX_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return False
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
                if size > DISCARD_MAX_BYTES:
                    return False
    return False


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def read_whole_body(headers: list[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes | None:
    """The whole request body (ASGI), or None when it exceeds ``limit`` bytes.

    An over-limit body is discarded within the budget above first, so the client reads the
    413 the caller sends; ``ClientGone`` when the client left."""
    declared = declared_length(headers)
    if declared is not None and declared > limit:
        if worth_discarding(headers):
            await discard_rest(receive)
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if chunk:
            size += len(chunk)
            if size > limit:
                if more and worth_discarding(headers, size):
                    await discard_rest(receive, size)
                return None
            chunks.append(chunk)
        if not more:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
