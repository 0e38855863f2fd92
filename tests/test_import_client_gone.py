"""An upload whose client leaves before the import ends: the import is cancelled and nothing
is written. An import has no deadline (it is long by nature); one whose client had gone went
on reading for 40 s and held a heavy request's slot.

Against a real `geo-comuna serve` (tests/live.py): only a real connection can go away."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from tests.clients import Live
from tests.factories import LAT, LON
from tests.live import add_user

PARCELS = 200_000


def parcels_file(path: Path) -> Path:
    """200,000 small parcels: an import of a second or more, long enough to leave during."""
    i = np.arange(PARCELS)
    x, y = LON + (i % 400) * 1e-4, LAT + (i // 400) * 1e-4
    gpd.GeoDataFrame(
        {"code": [f"GONE-{n}" for n in i], "tenure": ["occupied"] * PARCELS},
        geometry=shapely.box(x, y, x + 1e-4, y + 1e-4),
        crs="EPSG:4326",
    ).to_file(path, layer="parcels", driver="GPKG")
    return path


def count(live: Live) -> int:
    with psycopg.connect(live.dsn) as conn:
        return conn.execute("SELECT count(*) FROM parcels WHERE code LIKE 'GONE-%'").fetchone()[0]


def imports_running(live: Live) -> int:
    with psycopg.connect(live.dsn) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%parcels%%' "
            "AND state <> 'idle'"
        ).fetchone()[0]


def _post(live: Live, token: str, data: bytes) -> tuple[socket.socket, bytes]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="many.gpkg"\r\nContent-Type: application/geopackage+sqlite3\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    url = urlsplit(live.base)
    sock = socket.create_connection((url.hostname, url.port))
    head = (
        "POST /collections/parcels/import?commune=EL-MAIZAL HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock, body


def test_an_import_whose_client_leaves_is_cancelled(live: Live, tmp_path: Path) -> None:
    token = add_user(live.dsn, f"gone-{uuid.uuid4().hex[:6]}", "admin")
    data = parcels_file(tmp_path / "many.gpkg").read_bytes()
    sock, _ = _post(live, token, data)
    sock.close()  # the client leaves as soon as the file is sent
    time.sleep(1)  # the server saves the file and starts the import
    deadline = time.monotonic() + 60
    while imports_running(live) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    assert count(live) == 0  # cancelled, rolled back: nothing of it stays

    # the same file, its client waiting: all of it (so the zero above was the cancellation)
    sock, _ = _post(live, token, data)
    with sock:
        sock.settimeout(300)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert count(live) == PARCELS
