"""The request header limit of ``retain serve``: headers over ``RETAIN_MAX_HEADER_BYTES``
(default 64 KiB) get 431, as problem details, and the connection is closed.

uvicorn's httptools parser has no limit of its own: a client could send megabytes of headers
and the server would collect them all in memory before the app sees a byte. The count is made
as the bytes arrive, so a 50 MB header is refused after its first 64 KiB.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from retain.serving.schemas import PROBLEM_MEDIA_TYPE

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
ENV = "RETAIN_MAX_HEADER_BYTES"


def max_header_bytes() -> int:
    value = os.environ.get(ENV, "").strip()
    return int(value) if value.isdigit() else DEFAULT_MAX_HEADER_BYTES


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose headers grow past the limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit = max_header_bytes()
        self._in_headers = True
        self._header_bytes = 0
        self._headers_ended = False

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._headers_ended = True
        self._header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True  # the next request on this connection starts with headers

    def data_received(self, data: bytes) -> None:
        # Only a chunk that ends while the headers are still coming counts: a chunk in which
        # they ended also holds body bytes (a whole small request may come in one chunk).
        counting = self._in_headers
        self._headers_ended = False
        super().data_received(data)
        if not counting or self._headers_ended or self.transport.is_closing():
            return
        self._header_bytes += len(data)
        if self._header_bytes > self._limit:
            self.send_431_response()

    def send_431_response(self) -> None:
        rid = uuid.uuid4().hex
        body = orjson.dumps({
            "type": "about:blank", "title": "Request Header Fields Too Large", "status": 431,
            "detail": f"request headers over {self._limit} bytes", "instance":
            f"urn:retain:request:{rid}", "request_id": rid})
        self.logger.warning("431: request headers over %d bytes [request %s]", self._limit, rid)
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-request-id: " + rid.encode() + b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()
