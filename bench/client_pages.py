"""What a client's options cost: 1,000-item parcels pages from `geo-comuna serve`, plain,
gzip-compressed, filtered with CQL2 (and with the same filter as a property parameter), and
reprojected to REGVEN / UTM 19N (EPSG:2202).

    .venv/bin/python bench/client_pages.py [--requests 50] [--runs 5]

Needs the 200,000 parcels stored (run import_parcels.py first). Each run sends every variant
``--requests`` times, one request at a time on one keep-alive httpx client, variants
interleaved request by request (the same random offsets in the first 10,000 for each), so a
busy moment of the machine falls on all of them. Per variant: the median over runs of each
run's p50 (and the smallest and largest), p95 of all requests, and the bytes on the wire
(what the server sent: compressed bytes when it compressed). A variant the server does not
serve yet (gzip not applied, filter refused, crs ignored) is reported as such, not timed.
The load average before and after is printed: on a shared machine, compare runs taken at a
similar load only.
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from common import OUT, fmt, free_port, header, percentile, prepare_database, table
from serve_pages import start_server, stop_server

PAGE = 1000
UTM19 = "http://www.opengis.net/def/crs/EPSG/0/2202"
#: the parcels still being worked on, as CQL2 (basic: no IN) and as a property parameter,
#: which select the same rows: the difference is the cost of the CQL2 route
CQL2 = "tenure = 'occupied' OR tenure = 'regularizing'"
TENURES = "occupied,regularizing"


@dataclass
class Variant:
    name: str
    params: dict[str, str]
    headers: dict[str, str]
    #: what the response must show for the variant to be served: (header, value prefix)
    proof: tuple[str, str] | None = None
    refused: str | None = None  # why it is not timed
    runs: list[list[float]] = field(default_factory=list)  # latencies (s) per run
    wire: list[int] = field(default_factory=list)  # bytes on the wire per response


def variants() -> list[Variant]:
    plain = {"Accept-Encoding": "identity"}
    gzip = {"Accept-Encoding": "gzip"}
    return [
        Variant("plain page", {}, plain),
        Variant("gzip (Accept-Encoding: gzip)", {}, gzip, ("content-encoding", "gzip")),
        Variant("tenure=...: property parameters", {"tenure": TENURES}, plain),
        Variant("filter=CQL2, the same tenures", {"filter": CQL2}, plain),
        Variant("crs=EPSG:2202", {"crs": UTM19}, plain, ("content-crs", f"<{UTM19}>")),
    ]


def check(client: httpx.Client, variant: Variant, offset: int) -> None:
    """Is the variant served? Sets ``refused`` (and says why) when it is not."""
    r = client.get(
        "/collections/parcels/items",
        params={"limit": PAGE, "offset": offset, **variant.params},
        headers=variant.headers,
    )
    if r.status_code != 200:
        detail = (
            r.json().get("detail", "")
            if r.headers.get("content-type", "").endswith("json")
            else r.text
        )
        variant.refused = f"not served: {r.status_code}, {detail[:50]}"
    elif variant.proof and not r.headers.get(variant.proof[0], "").startswith(variant.proof[1]):
        variant.refused = f"not served: the answer has no {variant.proof[0]}"
    elif r.json()["numberReturned"] != PAGE:
        variant.refused = f"only {r.json()['numberReturned']} features at offset {offset}"


def one_run(client: httpx.Client, served: list[Variant], offsets: list[int]) -> None:
    times: dict[str, list[float]] = {v.name: [] for v in served}
    for offset in offsets:
        for v in served:
            t0 = time.perf_counter()
            r = client.get(
                "/collections/parcels/items",
                params={"limit": PAGE, "offset": offset, **v.params},
                headers=v.headers,
            )
            body = r.content
            times[v.name].append(time.perf_counter() - t0)
            if r.status_code != 200 or not body.startswith(b'{"type":"FeatureCollection"'):
                sys.exit(f"{v.name}: {r.status_code} {body[:200]!r}")
            v.wire.append(r.num_bytes_downloaded)
    for v in served:
        v.runs.append(times[v.name])


def gzipped_here(client: httpx.Client) -> tuple[int, int]:
    """(bytes, gzip -6 bytes) of one plain page, compressed here: what compression would
    save on the wire, whether or not the server compresses yet."""
    body = client.get(
        "/collections/parcels/items",
        params={"limit": PAGE},
        headers={"Accept-Encoding": "identity"},
    ).content
    return len(body), len(gzip.compress(body, compresslevel=6))


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    header("client_pages")
    dsn = prepare_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]
        matched = conn.execute(
            "SELECT count(*) FROM parcels WHERE tenure IN ('occupied', 'regularizing')"
        ).fetchone()[0]
        conn.execute("VACUUM ANALYZE parcels")
    if min(stored, matched) < 10_000 + PAGE:
        sys.exit(f"{stored} parcels stored, {matched} filtered; run bench/import_parcels.py first")
    rng = random.Random(args.seed)
    port = free_port()
    before = loadavg()
    server = start_server(port, OUT / "serve-client-pages.log")
    all_variants = variants()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for v in all_variants:
                check(client, v, 9000)
            size, compressed = gzipped_here(client)
            served = [v for v in all_variants if v.refused is None]
            one_run(client, served, [rng.randrange(0, 9001) for _ in range(10)])  # warm-up
            for v in served:
                v.runs.clear()
                v.wire.clear()
            for _ in range(args.runs):
                one_run(client, served, [rng.randrange(0, 9001) for _ in range(args.requests)])
    finally:
        stop_server(server)
    after = loadavg()
    plain = statistics.median(percentile(r, 50) for r in all_variants[0].runs) * 1000
    rows = []
    for v in all_variants:
        if v.refused:
            rows.append([v.name, "-", "-", "-", "-", "-", v.refused])
            continue
        p50s = [percentile(r, 50) * 1000 for r in v.runs]
        every = [x * 1000 for r in v.runs for x in r]
        p50 = statistics.median(p50s)
        rows.append(
            [
                v.name,
                f"{p50:.1f} ({min(p50s):.1f}-{max(p50s):.1f})",
                f"{percentile(every, 95):.1f}",
                f"{statistics.median(v.wire) / 1024:,.0f}",
                f"{p50 / plain:.2f}x",
                len(every),
                "",
            ]
        )
    print(
        table(
            f"1,000-parcel pages ({fmt(stored)} stored), {args.runs} runs x "
            f"{args.requests} requests per variant",
            ["variant", "p50 ms, median of runs (min-max)", "p95 ms", "KiB on the wire",
             "p50 vs plain", "n", "note"],
            rows,
        )
    )  # fmt: skip
    print(
        f"\nThe first plain page is {size / 1024:,.0f} KiB; gzip -6 here makes it "
        f"{compressed / 1024:,.0f} KiB ({compressed / size:.0%}).\n"
        f"load average before: {before}; after: {after}"
    )


if __name__ == "__main__":
    main()
