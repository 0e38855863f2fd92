"""Shared helpers for the benchmarks: where the bench database lives, how to call the CLI,
and how figures are summarised and printed.

Every benchmark uses its own embedded cluster in bench/out/pg (gitignored), so it never
touches a developer's .geo_comuna/. Set GEO_COMUNA_DATA_DIR to move it, or
GEO_COMUNA_DATABASE_URL to run against an existing disposable PostGIS database instead.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
#: the CLI of the virtualenv running the bench, else the repository's .venv
CLI = next(
    (
        str(d / "geo-comuna")
        for d in (Path(sys.executable).parent, REPO / ".venv" / "bin")
        if (d / "geo-comuna").exists()
    ),
    "geo-comuna",
)
PARCELS_GPKG = OUT / "parcels_200k.gpkg"


#: the end of a statement making synthetic parcels: CTE ``c`` holds the commune's id and
#: ``rings`` a closed-to-be line per parcel number ``g``; tenures and uses take turns
RINGS_TO_PARCELS = """
INSERT INTO parcels (commune_id, code, tenure, land_use, geom)
SELECT c.id, %(code)s || '-' || g,
       (ARRAY['abandoned', 'occupied', 'regularizing', 'regularized', 'disputed'])[1 + g %% 5],
       (ARRAY['crops', 'pasture', 'forest', 'idle'])[1 + g %% 4],
       ST_Multi(ST_MakePolygon(ST_AddPoint(line, ST_StartPoint(line))))
FROM rings, c
"""


def parcels_gpkg(count: int) -> Path:
    """make_parcels.py's file of ``count`` parcels: parcels_1k.gpkg ... parcels_1m.gpkg."""
    if count % 1_000_000 == 0:
        return OUT / f"parcels_{count // 1_000_000}m.gpkg"
    if count % 1_000 == 0:
        return OUT / f"parcels_{count // 1_000}k.gpkg"
    return OUT / f"parcels_{count}.gpkg"


PARCEL_COMMUNES_GPKG = OUT / "parcel_communes.gpkg"
#: code prefixes of what the benches write, so each can replace its own rows only
PARCEL_COMMUNE_PREFIX = "BENCH-P-"
NATIONAL_COMMUNE_PREFIX = "BENCH-C-"


def env() -> dict[str, str]:
    """The environment every CLI call gets: the bench's own data directory unless told, and
    no per-client rate limit (one client asks thousands of times: the speed of a page, not of
    a refusal, is measured here)."""
    out = dict(os.environ)
    if not out.get("GEO_COMUNA_DATABASE_URL"):
        out.setdefault("GEO_COMUNA_DATA_DIR", str(OUT / "pg"))
    out.setdefault("GEO_COMUNA_RATE_PER_MINUTE", "0")
    out.setdefault("GEO_COMUNA_HEAVY_RATE_PER_MINUTE", "0")
    return out


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``geo-comuna ARGS``; on failure print its output and stop the bench."""
    proc = subprocess.run([CLI, *args], capture_output=True, text=True, env=env(), cwd=REPO)
    if check and proc.returncode != 0:
        sys.exit(
            f"geo-comuna {' '.join(args)} failed (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


def conninfo() -> str:
    """libpq connection string of the bench database (starts the embedded cluster)."""
    url = os.environ.get("GEO_COMUNA_DATABASE_URL")
    if url:
        return url
    cli("db", "start")
    return json.loads(cli("db", "status").stdout)["conninfo"]


def server_cpu_reader() -> Callable[[], float] | None:
    """A function giving the CPU seconds (user + system) the embedded cluster's processes have
    used so far, or None when the database is not the local embedded cluster.

    Wall clock on a busy machine also counts time spent waiting for a core; CPU seconds do
    not, so they compare tools fairly when other work shares the machine. The sum covers the
    postmaster, its live children (backends, WAL writer, checkpointer...) and the children it
    has already reaped (a CLI's backend that exited), from /proc/<pid>/stat."""
    if os.environ.get("GEO_COMUNA_DATABASE_URL"):
        return None
    pgdata = Path(json.loads(cli("db", "status").stdout)["data_directory"])
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int | str) -> list[str]:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()  # fields from state (3rd) on

    def read() -> float:
        own = fields(postmaster)
        ticks = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    child = fields(entry.name)
                except (OSError, ValueError):
                    continue  # exited meanwhile
                if child[1] == str(postmaster):
                    ticks += int(child[11]) + int(child[12])
        return ticks / tick

    return read


def prepare_database() -> str:
    """Migrated bench database with the states and the sample communes; its conninfo.

    First geo_comuna's bytecode is brought up to date, as scripts/setup.sh leaves it, so that
    a CLI timed after an edit is not also compiling the edited modules at every start."""
    import psycopg

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "geo_comuna")], check=True)
    dsn = conninfo()
    cli("db", "upgrade")
    with psycopg.connect(dsn) as conn:
        states = conn.execute("SELECT count(*) FROM states").fetchone()[0]
        samples = conn.execute(
            "SELECT count(*) FROM communes WHERE code = '5-DE-MARZO'"
        ).fetchone()[0]
    if not states or not samples:
        cli("load-sample")
    return dsn


def require_parcels_file() -> None:
    if not PARCELS_GPKG.exists() or not PARCEL_COMMUNES_GPKG.exists():
        sys.exit(f"{PARCELS_GPKG} is missing: run `.venv/bin/python bench/make_parcels.py` first")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def fmt(value: float | int | str | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes straight into bench/README.md)."""
    cells = [[str(h) for h in headers]] + [
        [c if isinstance(c, str) else fmt(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([f"\n### {title}\n", line(cells[0]), sep, *map(line, cells[1:])])


def header(name: str) -> None:
    """What ran where: enough to compare figures between machines."""
    print(f"## {name}\n")
    print(f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
        f"{platform.python_version()}"
    )
    where = (
        "GEO_COMUNA_DATABASE_URL"
        if os.environ.get("GEO_COMUNA_DATABASE_URL")
        else f"embedded cluster in {env()['GEO_COMUNA_DATA_DIR']}"
    )
    print(f"- database: {where}")
    print(
        f"- load average at start (1/5/15 min): {load()} (other work on the machine "
        "shows here; figures taken under load are slower and noisier)"
    )


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())
