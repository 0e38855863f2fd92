"""A bound on a request's head (its request line and headers), which uvicorn's httptools
protocol does not have: found from outside, a GET followed by 1 GB of header lines was read
whole into a worker's memory (300 MB of them took it from 394 MB to 754 MB), and a few such
requests, with no token, would exhaust the machine. Past ``MAX_HEAD`` bytes before the head
ends, the connection is answered 431 and closed; what the parser holds is then at most that
and one read from the socket.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: the most a request's line and headers may take (nginx reads 32 KB at most by default; a
#: CQL2 filter in the URL takes up to 20,000 characters)
MAX_HEAD = 64 * 1024

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: 48\r\n"
    b"\r\n"
    b"the request's headers are over 65536 bytes long\n"
)


class HeadLimited(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a head over MAX_HEAD bytes with a 431."""

    _in_head = True
    _head = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header of the head; a chunked body's trailers are left out (found from outside:
        uvicorn kept them all, past any bound, 1 GB of them in a worker)."""
        if self._in_head:
            super().on_header(name, value)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head += len(data)
        super().data_received(data)
        if self._in_head and self._head > MAX_HEAD and not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()
