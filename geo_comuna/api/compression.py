"""Compressed bodies for clients that accept gzip: a page of 1,000 parcels is ~417 KB of
GeoJSON, over three seconds on a 1 Mbit/s link, the kind many communes have.

Starlette's gzip responder does the work (bodies over 128 KiB on a worker thread, never on
the event loop), its deflate done by ISA-L (the isal package: Intel's compression library)
rather than zlib: the same gzip stream format, which every client decodes, ~4x faster at the
same level and a few per cent smaller. A 22 MB stair-access answer took 79 ms at zlib's level
1 for 2.27 MB and takes 20 ms at ISA-L's level 1 for 2.22 MB (bench/README.md). zlib's levels
were measured on a 1,000-parcel page (bench/compression.py): level 1 took ~2 ms and gave
79 KB (5.3x); level 6 took ~8 ms for 65 KB, level 9 ~45 ms for 63 KB. Over loopback no level
saves time, so the cheapest that keeps most of the gain is used, and saves 2.7 s of that
page at 1 Mbit/s. Brotli at quality 1 would save 7 KB and 1 ms more, but only some clients
ask for it and gzip is what QGIS, GDAL, OWSLib and browsers all accept.

Bodies under 1 KB go as they are: with the response's headers they fit in one TCP segment
anyway, so compressing them saves no packet. Images and archives are not compressed again.

A compressed body is another representation of the same resource, so a strong ETag on it
becomes weak (as nginx does): a client comparing it byte for byte would be wrong.
If-None-Match compares weakly, and If-Match takes the weak form too (features/write.py).
"""

from __future__ import annotations

from isal import isal_zlib
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipResponder,
    IdentityResponder,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: what is not compressed again: Starlette's list, and zips (a package, a zipped Shapefile),
#: which gzip does not shrink and whose Content-Length a download's progress shows
EXCLUDED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/zip")
#: gzip level (ISA-L's 0-3): see the module's docstring
LEVEL = 1
#: bytes under which a body goes out uncompressed
MINIMUM_SIZE = 1024


class IsalResponder(GZipResponder):
    """Starlette's gzip responder with ISA-L's deflate (same stream, same flushes)."""

    @property
    def compressor(self) -> isal_zlib._Compress:  # type: ignore[override]
        if self._compressor is None:
            self._compressor = isal_zlib.compressobj(
                self.compresslevel, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS
            )
        return self._compressor


def accepts_gzip(header: str) -> bool:
    """Does an Accept-Encoding admit gzip: named with a q above 0, or (not named) admitted by
    ``*`` with a q above 0 (RFC 9110). ``gzip;q=0`` refuses it: it was sent gzip anyway."""
    if "gzip" not in header.lower() and "*" not in header:
        return False  # the usual answer, without parsing
    admitted: dict[str, float] = {}
    for part in header.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        admitted.setdefault(coding.lower(), quality)
    if "gzip" in admitted:
        return admitted["gzip"] > 0
    return admitted.get("*", 0.0) > 0


class Compression:
    """GZipMiddleware's choice of responder (gzip when the client accepts it, with
    ``Vary: Accept-Encoding`` either way) with ISA-L's deflate, weak ETags on what it
    compressed, and ``Vary: Accept-Encoding`` on 304s too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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

        responder: ASGIApp
        if accepts_gzip(Headers(scope=scope).get("Accept-Encoding", "")):
            responder = IsalResponder(
                self.app,
                MINIMUM_SIZE,
                compresslevel=LEVEL,  # read as a request comes (bench/compression.py sets it)
                exclude_content_types=EXCLUDED,
            )
        else:
            responder = IdentityResponder(self.app, MINIMUM_SIZE, exclude_content_types=EXCLUDED)
        await responder(scope, receive, weakened)
