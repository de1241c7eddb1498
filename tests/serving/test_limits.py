"""The header limit of `retain serve` (serving/limits.py), driven byte by byte as uvicorn does."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from uvicorn.server import ServerState

from retain.serving.limits import HeaderLimitedProtocol


async def ok_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def write(self, data) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def exchange(chunks: list[bytes], limit: int, monkeypatch) -> bytes:
    monkeypatch.setenv("RETAIN_MAX_HEADER_BYTES", str(limit))

    async def run() -> bytes:
        config = uvicorn.Config(ok_app, log_level="warning", lifespan="off")
        protocol = HeaderLimitedProtocol(config=config, server_state=ServerState(),
                                         app_state={})
        transport = Transport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
            await asyncio.sleep(0)
        for _ in range(50):
            await asyncio.sleep(0.01)
            if transport.written:
                break
        return transport.written

    return asyncio.run(run())


def request(body: bytes, extra_header: bytes = b"") -> bytes:
    return (b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + extra_header + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.mark.parametrize("split", [False, True])
def test_a_large_body_is_not_counted_as_headers(monkeypatch, split):
    """A 200 KB body arriving with its headers in one chunk (as on a quiet loopback) is a
    normal request; only header bytes count against the limit."""
    raw = request(b"x" * 200_000)
    chunks = [raw[:100], raw[100:]] if split else [raw]
    assert exchange(chunks, 1024, monkeypatch).startswith(b"HTTP/1.1 200 ")


def test_headers_over_the_limit_get_431_before_they_end(monkeypatch):
    raw = request(b"{}", b"X-Big: " + b"a" * 5000 + b"\r\n")
    answer = exchange([raw[:3000], raw[3000:]], 1024, monkeypatch)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"application/problem+json" in answer
