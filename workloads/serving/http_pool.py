"""A small keep-alive HTTP/1.1 client for one upstream server: what the activator forwards with.

Contract:

- ``ConnectionPool(host, port)`` keeps up to ``max_idle`` idle connections (reused last in,
  first out) and opens a new one when none is idle, so there is one connection per request in
  flight. A pool serves one address; the activator makes a new pool for each server start.
- ``await pool.request(method, target, headers, body, timeout_seconds)`` sends one request
  (``headers`` without Host or Content-Length, which the pool writes) and returns a ``Reply``
  once the status line and headers have arrived. A body of at most ``INLINE_BODY_BYTES`` with a
  Content-Length is read with the head and is in ``reply.body``; any other body is read by
  iterating ``reply.chunks()`` (Content-Length, chunked, or until the server closes), which
  returns the connection to the pool when the body ends. ``reply.headers`` are the upstream's,
  names lower-cased, framing headers (Transfer-Encoding) included.
- Errors: ``UpstreamTimeout`` when connecting plus the head, or one body read, took longer
  than ``timeout_seconds``; ``UpstreamError`` when the server cannot be reached or breaks the
  protocol. A connection that the server closed while idle in the pool is replaced once,
  transparently, if nothing of the reply had arrived (the request was not read); a connection
  with an error is closed, never reused.
- Interim 1xx replies are skipped; 101 (protocol switch) is an ``UpstreamError``.

Deliberately not done: HTTP/2, TLS, proxies, pipelining, request bodies streamed (the activator
has each body whole, bounded, before it knows the server is up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

INLINE_BODY_BYTES = 64 * 1024
"""Replies up to this size (with a Content-Length) are read together with their head."""
READ_CHUNK_BYTES = 64 * 1024
HEAD_LIMIT_BYTES = 64 * 1024
"""Longest status line plus headers accepted from the server."""


class UpstreamError(Exception):
    """The server could not be reached, or its reply broke HTTP/1.1."""


class UpstreamTimeout(UpstreamError):
    """The server did not answer in time."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class Reply:
    """Status, headers and (small replies) the whole body of one upstream reply."""

    __slots__ = ("_chunked", "_conn", "_keep_alive", "_length", "_pool", "_timeout", "body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers
        self.body: bytes | None = None
        """The whole body when it was read with the head, else None (use ``chunks()``)."""
        self._pool: ConnectionPool | None = None
        self._conn: _Connection | None = None
        self._length: int | None = None  # bytes left; None: chunked or until close
        self._chunked = False
        self._keep_alive = True
        self._timeout = 0.0

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece (all of it at once if it was read with the head)."""
        if self.body is not None:
            if self.body:
                yield self.body
            return
        conn, pool = self._conn, self._pool
        assert conn is not None and pool is not None, "chunks() iterates once"
        self._conn = None
        done = False
        try:
            reader = conn.reader
            if self._chunked:
                while True:
                    async with asyncio.timeout(self._timeout):
                        line = await reader.readuntil(b"\r\n")
                        size = int(line.split(b";", 1)[0].strip(), 16)
                        if size == 0:
                            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, dropped
                                pass
                            break
                        data = await reader.readexactly(size)
                        if await reader.readexactly(2) != b"\r\n":
                            raise UpstreamError("chunk not followed by CRLF")
                    yield data
            elif self._length is not None:
                left = self._length
                while left:
                    async with asyncio.timeout(self._timeout):
                        data = await reader.read(min(left, READ_CHUNK_BYTES))
                    if not data:
                        raise UpstreamError(f"server closed the connection {left} bytes before the end of the body")
                    left -= len(data)
                    yield data
            else:  # delimited by the server closing the connection
                self._keep_alive = False
                while True:
                    async with asyncio.timeout(self._timeout):
                        data = await reader.read(READ_CHUNK_BYTES)
                    if not data:
                        break
                    yield data
            done = True
        except TimeoutError:
            raise UpstreamTimeout(f"no body data within {self._timeout:g}s") from None
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            raise UpstreamError(f"bad reply body: {type(exc).__name__}") from None
        finally:
            pool._release(conn, reusable=done and self._keep_alive)


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections to ``host``:``port``."""

    def __init__(self, host: str, port: int, *, max_idle: int = 64, connect_timeout_seconds: float = 5.0) -> None:
        self.host, self.port = host, port
        self.max_idle = max_idle
        self.connect_timeout_seconds = connect_timeout_seconds
        self._idle: list[_Connection] = []
        self._host_header = f"{host}:{port}".encode()
        self.opened = 0
        """Connections opened so far (a measure of reuse)."""
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def request(self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes,
                      timeout_seconds: float) -> Reply:
        """Send one request and return its reply's head (and small bodies); see the module doc."""
        lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method.encode(), target, self._host_header)]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            lines.append(b"content-length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        head = b"".join(lines)
        for attempt in (1, 2):
            conn, reused, received = self._idle_connection(), True, False
            try:
                async with asyncio.timeout(timeout_seconds):
                    if conn is None:
                        conn, reused = await self._connect(), False
                    if body and len(body) > INLINE_BODY_BYTES:
                        conn.writer.writelines((head, body))  # no concatenated copy of a large body
                    else:
                        conn.writer.write(head + body)
                    reply = await self._read_head(conn, method)
                    received = True
                    if reply.body is None and reply._length is not None and reply._length <= INLINE_BODY_BYTES:
                        reply.body = await conn.reader.readexactly(reply._length) if reply._length else b""
            except TimeoutError:
                if conn is not None:
                    conn.close()
                raise UpstreamTimeout(f"no reply within {timeout_seconds:g}s") from None
            except asyncio.IncompleteReadError as exc:
                conn.close()  # type: ignore[union-attr]
                if reused and not received and not exc.partial and attempt == 1:
                    continue  # the server closed this idle connection; the request was not read
                raise UpstreamError("server closed the connection before replying" if not received
                                    else "server closed the connection in the middle of the body") from None
            except ConnectionError as exc:
                if conn is not None:
                    conn.close()
                if reused and not received and attempt == 1:
                    continue  # as above: a stale idle connection, reset
                raise UpstreamError(type(exc).__name__) from None
            except (OSError, asyncio.LimitOverrunError, ValueError) as exc:
                if conn is not None:
                    conn.close()
                raise UpstreamError(f"{type(exc).__name__}: {exc}") from None
            reply._timeout = timeout_seconds
            if reply.body is not None:
                self._release(conn, reusable=reply._keep_alive)
            else:
                reply._pool, reply._conn = self, conn
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close the idle connections; later requests are refused."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise ConnectionAbortedError("the pool is closed")
        try:
            async with asyncio.timeout(self.connect_timeout_seconds):
                reader, writer = await asyncio.open_connection(self.host, self.port, limit=HEAD_LIMIT_BYTES)
        except TimeoutError:
            raise ConnectionRefusedError(f"connect timed out after {self.connect_timeout_seconds:g}s") from None
        self.opened += 1
        return _Connection(reader, writer)

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and not self._closed and len(self._idle) < self.max_idle and conn.usable:
            self._idle.append(conn)
        else:
            conn.close()

    @staticmethod
    async def _read_head(conn: _Connection, method: str) -> Reply:
        while True:
            raw = await conn.reader.readuntil(b"\r\n\r\n")
            lines = raw[:-4].split(b"\r\n")
            version, _, rest = lines[0].partition(b" ")
            status = int(rest[:3])
            if status == 101:
                raise ValueError("the server switched protocols (101), which the activator does not forward")
            if 100 <= status < 200:
                continue  # interim reply (100 Continue, 103 Early Hints): the final one follows
            break
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ValueError(f"malformed header line {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                tokens = value.lower()
                keep_alive = b"close" not in tokens and (keep_alive or b"keep-alive" in tokens)
            headers.append((name, value))
        reply = Reply(status, headers)
        reply._keep_alive = keep_alive
        if method == "HEAD" or status in (204, 304):
            reply.body = b""
        elif chunked:
            reply._chunked = True
        else:
            reply._length = length
        return reply
