"""Compressed bodies for clients that accept gzip: a page of 1,000 parcels is ~417 KB of
GeoJSON, over three seconds on a 1 Mbit/s link, the kind many communes have.

Starlette's GZipMiddleware does the work (bodies over 128 KiB on a worker thread, never on
the event loop) at the level chosen by measurement (bench/compression.py, figures in
bench/README.md). On a 1,000-parcel page gzip level 1 takes ~2 ms and gives 79 KB (5.3x);
level 6 takes ~8 ms for 65 KB, level 9 ~45 ms for 63 KB. Over loopback no level saves
time, so the cheapest that keeps most of the gain is used: level 1 adds ~3 ms to a 25 ms
page there (compressing and the client's decompressing), and saves 2.7 s at 1 Mbit/s. Brotli
at quality 1 would save 7 KB and 1 ms more, but only some clients ask for it and gzip is
what QGIS, GDAL, OWSLib and browsers all accept.

Bodies under 1 KB go as they are: with the response's headers they fit in one TCP segment
anyway, so compressing them saves no packet. Images and archives are not compressed again.

A compressed body is another representation of the same resource, so a strong ETag on it
becomes weak (as nginx does): a client comparing it byte for byte would be wrong.
If-None-Match compares weakly, and If-Match takes the weak form too (features/write.py).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: gzip level: see the module's docstring
LEVEL = 1
#: bytes under which a body goes out uncompressed
MINIMUM_SIZE = 1024


class Compression:
    """GZipMiddleware, weak ETags on what it compressed, and ``Vary: Accept-Encoding`` on
    304s too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = GZipMiddleware(
            app,
            minimum_size=MINIMUM_SIZE,
            compresslevel=LEVEL,  # read as the app builds its middleware (bench/compression.py)
            exclude_content_types=DEFAULT_EXCLUDED_CONTENT_TYPES,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def weakened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                etag = headers.get("etag")
                if etag and "content-encoding" in headers and not etag.startswith("W/"):
                    headers["ETag"] = f"W/{etag}"
                if message["status"] == 304:  # says what the 200 it stands for would say
                    headers.add_vary_header("Accept-Encoding")
            await send(message)

        await self.app(scope, receive, weakened)
