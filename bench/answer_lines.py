"""What drawing the answer costs: stair-access walk lines (one LineString per home, its
walk along the paths) for 50,000 homes, as run() keeps them (arrays) and as written for a map
or f=geojson, side by side with the same analysis' dwelling features (one Point per home,
written as the API writes them) in the same run.

    .venv/bin/python bench/answer_lines.py [--runs 5] [--homes 50000] [--nodes-per-walk 8]

Synthetic walks, no database: a tree of 50,000 nodes whose walks run ``--nodes-per-walk``
nodes to their road (the 100,000-edge bench network of bench_network.py walks 5 to 10), each
home entering it at a random node. Medians of --runs runs; the load average is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from geo_comuna.analysis.base import to_json  # noqa: E402
from geo_comuna.analysis.stair_access.report import walk_lines  # noqa: E402
from geo_comuna.analysis.stair_access.walks import Walks  # noqa: E402
from geo_comuna.analysis.toolkit.network import as_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--homes", type=int, default=50_000)
    parser.add_argument("--nodes-per-walk", type=int, default=8)
    args = parser.parse_args()
    common.header("answer_lines")
    rng = np.random.default_rng(1)
    n, k = args.homes, args.nodes_per_walk
    next_node = np.arange(n) - 1
    next_node[::k] = n  # every k-th node is on a road: its walk ends there
    net = types.SimpleNamespace(n_nodes=n, node_lon=rng.random(n), node_lat=rng.random(n))
    dw = types.SimpleNamespace(
        ids=np.arange(n),
        lon=rng.random(n),
        lat=rng.random(n),
        sector=["A"] * n,
        residents=np.ones(n),
        water=["none"] * n,
    )
    homes = types.SimpleNamespace(lon=rng.random(n), lat=rng.random(n))
    minutes = rng.random(n) * 600
    out = Walks({"seconds": minutes}, np.zeros(n, bool), rng.integers(0, n, n), next_node)

    def lines() -> None:
        walk_lines(dw, net, homes, out)

    def written() -> None:
        to_json({"lines": walk_lines(dw, net, homes, out)})

    def points() -> None:
        to_json({"features": as_features(dw, {"minutes": (minutes / 60).tolist()})})

    rows = []
    steps = (
        ("walk lines, kept as arrays (what run() pays)", lines),
        ("walk lines, written as GeoJSON (maps, f=geojson)", written),
        ("dwelling features, written", points),
    )
    for name, call in steps:
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        rows.append([name, statistics.median(times)])
    base = rows[-1][1]
    print(
        common.table(
            f"{n:,} homes, built and written as JSON, median of {args.runs}",
            ["step", "s", "x dwelling features"],
            [[r[0], common.fmt(r[1]), common.fmt(r[1] / base, 1)] for r in rows],
        )
    )


if __name__ == "__main__":
    main()
