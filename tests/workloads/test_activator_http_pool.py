"""The activator's upstream HTTP/1.1 client (workloads/serving/http_pool.py), against scripted
asyncio servers on loopback: framing (Content-Length, chunked, close-delimited, HEAD, 1xx),
connection reuse, stale idle connections, timeouts and protocol errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from workloads.serving.http_pool import INLINE_BODY_BYTES, ConnectionPool, Reply, UpstreamError, UpstreamTimeout

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length framing); b"" head at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b"", b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


async def serve(handler: Handler) -> tuple[asyncio.Server, ConnectionPool]:
    """A server on a free loopback port running ``handler`` per connection, and a pool to it."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, ConnectionPool("127.0.0.1", port)


def replying(*responses: bytes, heads: list[bytes] | None = None, keep_open: bool = True) -> Handler:
    """Answers each request on a connection with the next of ``responses`` (then closes)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            head, body = await read_request(reader)
            if not head:
                return
            if heads is not None:
                heads.append(head + body)
            writer.write(response)
            await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes

    return handler


async def body_of(reply: Reply) -> bytes:
    return b"".join([chunk async for chunk in reply.chunks()])


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_sequential_requests_reuse_one_connection_and_send_host_and_length() -> None:
    async def scenario() -> None:
        heads: list[bytes] = []
        server, pool = await serve(replying(ok(b"one"), ok(b"two"), ok(b"three"), heads=heads))
        async with server:
            bodies = []
            for n in range(3):
                reply = await pool.request("POST", b"/v2/x?q=1", [(b"authorization", b"Bearer t")], b"n=%d" % n, 5)
                assert reply.status == 200 and (b"content-type", b"text/plain") in reply.headers
                bodies.append(await body_of(reply))
            await pool.close()
        assert bodies == [b"one", b"two", b"three"]
        assert pool.opened == 1
        assert heads[0] == (b"POST /v2/x?q=1 HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nauthorization: Bearer t\r\n"
                            b"content-length: 3\r\n\r\nn=0" % pool.port)

    run(scenario)


def test_chunked_reply_with_trailers_is_reassembled() -> None:
    chunked = (b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: dropped\r\n\r\n")

    async def scenario() -> None:
        server, pool = await serve(replying(chunked, ok(b"next")))
        async with server:
            reply = await pool.request("GET", b"/", [], b"", 5)
            assert (reply.status, reply.body) == (201, None)
            assert (b"transfer-encoding", b"chunked") in reply.headers
            assert await body_of(reply) == b"hello, world"
            assert await body_of(await pool.request("GET", b"/", [], b"", 5)) == b"next"  # same connection, in sync
            await pool.close()
        assert pool.opened == 1

    run(scenario)


def test_large_reply_is_streamed_in_pieces_and_small_one_comes_whole() -> None:
    big = bytes(range(256)) * (INLINE_BODY_BYTES // 256 * 3)

    async def scenario() -> None:
        server, pool = await serve(replying(ok(big), ok(b"small")))
        async with server:
            reply = await pool.request("GET", b"/big", [], b"", 5)
            assert reply.body is None
            pieces = [chunk async for chunk in reply.chunks()]
            small = await pool.request("GET", b"/small", [], b"", 5)
            await pool.close()
        assert b"".join(pieces) == big and len(pieces) > 1
        assert small.body == b"small"

    run(scenario)


def test_close_delimited_reply_is_read_to_the_end_and_the_connection_not_reused() -> None:
    async def scenario() -> None:
        server, pool = await serve(replying(b"HTTP/1.0 200 OK\r\n\r\nuntil close", keep_open=False))
        async with server:
            reply = await pool.request("GET", b"/", [], b"", 5)
            assert await body_of(reply) == b"until close"
            await pool.close()
        assert pool.idle == 0

    run(scenario)


def test_head_and_204_have_no_body_and_interim_replies_are_skipped() -> None:
    async def scenario() -> None:
        server, pool = await serve(replying(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            ok(b"after")))
        async with server:
            head = await pool.request("HEAD", b"/", [], b"", 5)
            empty = await pool.request("DELETE", b"/", [], b"", 5)
            after = await pool.request("GET", b"/", [], b"", 5)
            await pool.close()
        assert (head.status, head.body, (b"content-length", b"1234") in head.headers) == (200, b"", True)
        assert (empty.status, empty.body) == (204, b"")
        assert after.body == b"after"
        assert pool.opened == 1

    run(scenario)


def test_an_idle_connection_the_server_closed_is_replaced_transparently() -> None:
    async def scenario() -> None:
        server, pool = await serve(replying(ok(b"first"), keep_open=False))  # one reply per connection
        async with server:
            assert (await pool.request("POST", b"/", [], b"a", 5)).body == b"first"
            await asyncio.sleep(0.05)  # the server's close reaches the idle connection
            assert (await pool.request("POST", b"/", [], b"b", 5)).body == b"first"
            await pool.close()
        assert pool.opened == 2

    run(scenario)


def test_a_reused_connection_closed_as_the_request_is_sent_is_retried_once() -> None:
    async def scenario() -> None:
        server, pool = await serve(replying(ok(b"first"), keep_open=False))
        async with server:
            assert (await pool.request("POST", b"/", [], b"a", 5)).body == b"first"
            conn = pool._idle[-1]
            conn.reader.at_eof = lambda: False  # type: ignore[method-assign]  # looks usable, is closed
            await asyncio.sleep(0.05)
            assert (await pool.request("POST", b"/", [], b"b", 5)).body == b"first"
            await pool.close()
        assert pool.opened == 2

    run(scenario)


def test_a_fresh_connection_closed_without_a_reply_is_an_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def scenario() -> None:
        server, pool = await serve(hang_up)
        async with server:
            with pytest.raises(UpstreamError, match="server closed the connection before replying"):
                await pool.request("POST", b"/", [], b"x", 5)
            await pool.close()
        assert pool.opened == 1  # not retried: the server did read this request

    run(scenario)


def test_slow_server_times_out_and_unreachable_server_is_an_error() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def scenario() -> None:
        server, pool = await serve(slow)
        async with server:
            with pytest.raises(UpstreamTimeout, match=r"no reply within 0\.2s"):
                await pool.request("GET", b"/", [], b"", 0.2)
            await pool.close()
        closed_port = pool.port  # the server is gone now
        with pytest.raises(UpstreamError, match="ConnectionRefusedError"):
            await ConnectionPool("127.0.0.1", closed_port).request("GET", b"/", [], b"", 5)

    run(scenario)


@pytest.mark.parametrize(("response", "message"), [
    (b"HTTP/1.1 abc OK\r\n\r\n", "ValueError"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "in the middle of the body"),
])
def test_malformed_replies_are_errors(response: bytes, message: str) -> None:
    async def scenario() -> None:
        server, pool = await serve(replying(response, keep_open=False))
        async with server:
            with pytest.raises(UpstreamError, match=message):
                await pool.request("GET", b"/", [], b"", 5)
            await pool.close()
        assert pool.idle == 0

    run(scenario)


def test_a_body_cut_short_while_streaming_is_an_error_and_the_connection_is_dropped() -> None:
    big = b"x" * (INLINE_BODY_BYTES + 10)
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(big) + 100, big)

    async def scenario() -> None:
        server, pool = await serve(replying(cut, keep_open=False))
        async with server:
            reply = await pool.request("GET", b"/", [], b"", 5)
            with pytest.raises(UpstreamError, match="100 bytes before the end of the body"):
                await body_of(reply)
            await pool.close()
        assert pool.idle == 0

    run(scenario)
