"""HTTP-level guards of the endpoint, ahead of the routes.

JSON error answers, the body deadline, the request head checks (size, ambiguous framing) and uvicorn's h11
protocol with a deadline for each request head (slowloris guard).
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dogclf.serve.codecs import PayloadTooLarge, RequestError, error_body

log = logging.getLogger("dogclf.serve")

CLOSE = {"Connection": "close"}
BOTH_LENGTHS = "request has both Content-Length and Transfer-Encoding headers; send only one"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Every error leaves the server as {"error": {"status", "message"}}."""
    return Response(error_body(status, message), status_code=status, media_type="application/json", headers=headers)


class BodyTimeout(RequestError):
    """The request body did not arrive in time (a trickled body); the connection is closed after the answer."""

    status = 408


async def read_body(request: Request, limit: int, timeout_s: float, min_rate: int) -> bytes:
    """Read the body, refusing (413) anything over `limit` bytes without buffering it all.

    The body must arrive within `timeout_s` of the head, plus one second per `min_rate` bytes received
    (a minimum rate after a grace period); beyond, BodyTimeout (408).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    start = time.monotonic()
    stream = request.stream()
    while True:
        remaining = start + timeout_s + size / min_rate - time.monotonic()
        try:
            chunk = await asyncio.wait_for(anext(stream), max(remaining, 0.0))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise BodyTimeout(
                f"request body too slow: {size} bytes in {time.monotonic() - start:.1f} s; the body must arrive "
                f"within {timeout_s:g} s plus 1 s per {min_rate} bytes (body_timeout_s, body_min_rate)"
            ) from None
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def head_size(scope: Scope) -> int:
    """Bytes of the request line and headers as sent, less the optional whitespace h11 drops."""
    target = len(scope["raw_path"]) + (len(scope["query_string"]) + 1 if scope["query_string"] else 0)
    line = len(scope["method"]) + 1 + target + len(" HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"]) + 2


def head_refusal(scope: Scope, max_head_bytes: int) -> tuple[int, str] | None:
    """(status, message) for a request head to refuse before any route sees it, else None."""
    names = {name for name, _ in scope["headers"]}
    if b"content-length" in names and b"transfer-encoding" in names:
        return 400, BOTH_LENGTHS
    size = head_size(scope)
    if size > max_head_bytes:
        return 431, f"request head of {size} bytes exceeds the limit of {max_head_bytes} bytes (max_header_bytes)"
    return None


class HeadGuard:
    """ASGI middleware: refuse an oversized head (431) or ambiguous framing (400), then close the connection.

    h11 bounds a head only while it is incomplete, so a large head sent in one write is measured here. A
    request with both Content-Length and Transfer-Encoding may smuggle a second one in its body, so it is
    refused and its connection closed (RFC 9112, section 6.1).
    """

    def __init__(self, app: ASGIApp, max_head_bytes: int) -> None:
        self.app, self.max_head_bytes = app, max_head_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused HTTP request here; pass everything else to the app."""
        refusal = head_refusal(scope, self.max_head_bytes) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.info("refused a request head: %s", refusal[1])
        await error_response(*refusal, headers=CLOSE)(scope, receive, send)


def unparsable_answer(status: int, message: str) -> bytes:
    """A whole JSON error response that closes the connection, written straight to the transport."""
    body = error_body(status, message)
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def oversized_head(max_head_bytes: int) -> tuple[int, str]:
    """The answer to a request head that outgrew the limit before it was complete."""
    return 431, f"request head exceeds the limit of {max_head_bytes} bytes (max_header_bytes)"


class _HeadDeadline:
    """Protocol mixin: a deadline for each request head, and JSON answers to heads the parser refuses.

    The clock starts when the connection opens and again when a response completes; if no new request head
    has arrived when it runs out (nothing sent, or a head trickled in a byte at a time), the connection closes.
    """

    head_timeout_s: float
    max_head_bytes: int
    _head_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: object

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def on_response_complete(self) -> None:
        self._arm()  # before super(), which may already start a pipelined request's cycle
        super().on_response_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def refuse(self, status: int, message: str) -> None:
        """Answer in JSON and close the connection."""
        log.info("refused a request head: %s", message)
        self.transport.write(unparsable_answer(status, message))
        self.transport.close()

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._expire, self.cycle)

    def _expire(self, cycle: object) -> None:
        if self.cycle is cycle and not self.transport.is_closing():
            log.info("closing a connection that sent no complete request head within %g s", self.head_timeout_s)
            self.transport.close()


class _H11Guard(_HeadDeadline):
    """For uvicorn's h11 protocol, which bounds an incomplete head itself."""

    conn: Any

    def send_400_response(self, msg: str) -> None:
        if len(self.conn.trailing_data[0]) > self.max_head_bytes:
            self.refuse(*oversized_head(self.max_head_bytes))
        else:
            self.refuse(400, "invalid HTTP request")


class _HttpToolsGuard(_HeadDeadline):
    """For uvicorn's httptools protocol, plus a bound on an incomplete head, which llhttp lacks.

    Bytes are counted from the end of one request's body (or the connection's start) until the next head is
    complete; past `max_head_bytes` the connection gets 431 and closes.
    """

    parser: Any
    timeout_keep_alive_task: asyncio.TimerHandle | None
    _head_bytes: int | None = 0  # None while a request's body is being read

    def data_received(self, data: bytes) -> None:
        import httptools

        if self.timeout_keep_alive_task is not None:  # a request is arriving: the idle keep-alive clock stops
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            log.info("ignoring a protocol upgrade request: the endpoint speaks HTTP/1.1 only")
        except httptools.HttpParserError as exc:
            self._unparsable(str(exc))
        else:
            if self._head_bytes is not None and self._head_bytes > self.max_head_bytes:
                self.refuse(*oversized_head(self.max_head_bytes))

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()  # type: ignore[misc]

    def on_message_complete(self) -> None:
        self._head_bytes = 0
        super().on_message_complete()  # type: ignore[misc]

    def _unparsable(self, reason: str) -> None:
        if "Content-Length" in reason and "Transfer-Encoding" in reason:  # llhttp refuses the pair itself
            self.refuse(400, BOTH_LENGTHS)
        elif self._head_bytes is not None and self._head_bytes > self.max_head_bytes:
            self.refuse(*oversized_head(self.max_head_bytes))
        else:
            self.refuse(400, "invalid HTTP request")


def guarded_protocol(stack: str, head_timeout_s: float, max_head_bytes: int) -> type[asyncio.Protocol]:
    """The uvicorn protocol for `stack` (h11 or httptools) with the slowloris guard and JSON answers to bad heads."""
    if stack == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        protocol: type = type("GuardedHttpToolsProtocol", (_HttpToolsGuard, HttpToolsProtocol), {})
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        protocol = type("GuardedH11Protocol", (_H11Guard, H11Protocol), {})
    protocol.head_timeout_s, protocol.max_head_bytes = head_timeout_s, max_head_bytes
    return protocol
