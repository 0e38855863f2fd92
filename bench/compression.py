"""Compressing a 1,000-parcel page: bytes and time per gzip level (and brotli quality when the
brotli package can be imported), and what compression costs end to end over loopback.

    .venv/bin/python bench/compression.py [--runs 30]

Needs the 200,000 parcels stored (run import_parcels.py first). Serves the app with uvicorn
on a free 127.0.0.1 port, in a process of its own per level.

1. The body: five 1,000-item pages (offsets 0, 2,000 ... 8,000), fetched uncompressed once.
   For each gzip level (zlib with a gzip header, as Starlette's GZipMiddleware calls it; and
   ISA-L's levels, what geo_comuna compresses with) and each brotli quality: compressed bytes
   and ratio, compress and decompress time (median over the five pages x ``runs``), and the
   time to send the result over 1 and 10 Mbit/s links (bytes x 8 / rate: the links of
   communes with a radio or mobile uplink).
2. Over loopback: geo_comuna's middleware (api/compression.py) at ISA-L's levels, each
   serving 1,000-item pages at random offsets to pairs of requests for the same page, one
   with ``Accept-Encoding: identity`` and one with gzip (httpx decompresses, as clients
   do); p50s and the median of the pairs' differences: what compressing adds to (or saves
   from) a page's whole latency when the network costs nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx
from common import REPO, env, fmt, free_port, header, percentile, prepare_database, table

PAGE = 1000
OFFSETS = (0, 2000, 4000, 6000, 8000)
LEVELS = (1, 2, 3, 4, 5, 6, 9)
#: ISA-L's levels (isal), what api/compression.py compresses with since 2026-12-04
ISAL_LEVELS = (0, 1, 2, 3)
SERVED_LEVELS = ISAL_LEVELS
LINKS_MBIT = (1, 10)


def gzip(level: int, deflate: Any = zlib) -> Callable[[bytes], bytes]:
    """A gzip stream at ``level`` by ``deflate``: zlib, or ISA-L's isal_zlib (same API)."""

    def run(body: bytes) -> bytes:
        packer = deflate.compressobj(level, deflate.DEFLATED, 16 + deflate.MAX_WBITS)
        return packer.compress(body) + packer.flush()

    return run


def gunzip(data: bytes) -> bytes:
    return zlib.decompress(data, 16 + zlib.MAX_WBITS)


def median_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


#: the app on uvicorn with its gzip level set first (read when the app builds its middleware)
SERVE = """
import sys
import uvicorn
from geo_comuna.api import compression
from geo_comuna.api.app import create_app
compression.LEVEL = int(sys.argv[1])
uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


class Server:
    """geo_comuna's app served by uvicorn in a process of its own (so that the client's
    decompression does not share the server's interpreter), gzip at ``level``."""

    def __init__(self, level: int) -> None:
        self.port = free_port()
        self.args = [sys.executable, "-c", SERVE, str(level), str(self.port)]

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.args, env=env(), cwd=REPO)
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{base}/conformance", timeout=2).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        sys.exit("the server did not answer within 60 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def bodies(base: str) -> list[bytes]:
    with httpx.Client(base_url=base, timeout=60) as http:
        pages = [
            http.get(
                "/collections/parcels/items",
                params={"limit": PAGE, "offset": offset},
                headers={"Accept-Encoding": "identity"},
            )
            for offset in OFFSETS
        ]
    for page in pages:
        if page.status_code != 200 or page.json()["numberReturned"] != PAGE:
            sys.exit(f"no 1,000-parcel page: {page.status_code} {page.text[:200]}")
    return [page.content for page in pages]


def codecs() -> list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    found = [(f"gzip {level}", gzip(level), gunzip) for level in LEVELS]
    from isal import isal_zlib

    found += [(f"gzip {level}, ISA-L", gzip(level, isal_zlib), gunzip) for level in ISAL_LEVELS]
    try:
        import brotli  # type: ignore[import-not-found]
    except ImportError:
        print("\n(brotli is not installed here: gzip only)")
        return found
    for quality in (0, 1, 2, 3, 4, 5, 6, 11):
        found.append(
            (
                f"brotli {quality}",
                lambda body, q=quality: brotli.compress(body, quality=q),
                brotli.decompress,
            )
        )
    return found


def measure_bodies(pages: list[bytes], runs: int) -> str:
    size = statistics.median(len(p) for p in pages)
    rows = [
        [
            "none",
            int(size),
            "1.00",
            0.0,
            0.0,
            *(size * 8 / (mbit * 1e6) * 1000 for mbit in LINKS_MBIT),
        ]
    ]
    for name, pack, unpack in codecs():
        packed = [pack(p) for p in pages]
        assert all(unpack(z) == p for z, p in zip(packed, pages, strict=True))
        small = statistics.median(len(z) for z in packed)
        pack_ms = statistics.median(median_ms(lambda p=p, f=pack: f(p), runs) for p in pages)
        unpack_ms = statistics.median(median_ms(lambda z=z, f=unpack: f(z), runs) for z in packed)
        rows.append(
            [
                name,
                int(small),
                f"{size / small:.2f}",
                pack_ms,
                unpack_ms,
                *(small * 8 / (mbit * 1e6) * 1000 for mbit in LINKS_MBIT),
            ]
        )
    return table(
        f"A 1,000-parcel page (median of {len(pages)} pages x {runs} runs)",
        [
            "encoding",
            "bytes",
            "ratio",
            "compress, ms",
            "decompress, ms",
            *(f"send at {m} Mbit/s, ms" for m in LINKS_MBIT),
        ],
        rows,
    )


def loopback(base: str, requests: int, seed: int) -> dict[str, list[float] | int]:
    """Pairs of requests for one page, identity then gzip (each on its own keep-alive
    client), so that both see the machine in the same state: latencies (s) of each, and
    the bytes each put on the wire."""
    rng = random.Random(seed)
    found: dict[str, list[float] | int] = {"identity": [], "gzip": [], "extra": []}
    clients = {
        encoding: httpx.Client(base_url=base, timeout=60, headers={"Accept-Encoding": encoding})
        for encoding in ("identity", "gzip")
    }
    try:
        for i in range(requests + 10):
            url = f"/collections/parcels/items?limit={PAGE}&offset={rng.randrange(0, 9001)}"
            pair = {}
            for encoding, http in clients.items():
                t0 = time.perf_counter()
                r = http.get(url)
                r.read()
                pair[encoding] = time.perf_counter() - t0
                if r.status_code != 200:
                    sys.exit(f"GET {url} -> {r.status_code}")
                found[f"{encoding} bytes"] = int(r.headers["content-length"])
            if i >= 10:  # the first ten warm up
                found["identity"].append(pair["identity"])  # type: ignore[union-attr]
                found["gzip"].append(pair["gzip"])  # type: ignore[union-attr]
                found["extra"].append(pair["gzip"] - pair["identity"])  # type: ignore[union-attr]
    finally:
        for http in clients.values():
            http.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    os.environ.update(env())
    prepare_database()
    header("compression")
    with Server(1) as base:
        print(measure_bodies(bodies(base), args.runs))
    rows = []
    for level in SERVED_LEVELS:
        with Server(level) as base:
            got = loopback(base, args.requests, level)
        rows.append(
            [
                f"gzip {level}",
                got["gzip bytes"],
                percentile(got["identity"], 50) * 1000,  # type: ignore[arg-type]
                percentile(got["gzip"], 50) * 1000,  # type: ignore[arg-type]
                statistics.median(got["extra"]) * 1000,  # type: ignore[arg-type]
                percentile(got["gzip"], 90) * 1000,  # type: ignore[arg-type]
            ]
        )
    print(
        table(
            f"1,000-item pages over loopback, {args.requests} pairs of requests per level, ms",
            [
                "served at",
                "gzip bytes",
                "identity p50",
                "gzip p50",
                "gzip - identity, median of pairs",
                "gzip p90",
            ],
            rows,
        )
    )
    print(f"\nload average at the end: {' / '.join(fmt(x, 2) for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
