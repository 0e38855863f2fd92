"""Sizes: zip bombs (declared and compressible), bodies over the limit (declared or chunked)
and numbers that overflow a computation or a parser are refused with a 4xx before the
work starts, and nothing is written.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.api.app import create_app
from geo_comuna.api.deps import get_conn
from geo_comuna.settings import Settings
from tests.factories import feature
from tests.hostile import PARCELS, PROBLEM, assert_answer, rows

pytestmark = pytest.mark.anyio


def _declared_bomb(path: Path) -> Path:
    """A zipped Shapefile whose directory declares a 9 GiB .shp (GDAL would try to read it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in ("bomb.shx", "bomb.dbf"):
            zf.writestr(part, b"\0" * 100)
        with zf.open("bomb.shp", "w", force_zip64=True) as fh:
            fh.write(b"\0" * 1024)
        zf.infolist()[-1].file_size = 9 * 1024**3  # what the central directory will say
    return path


def _compressible_bomb(path: Path) -> Path:
    """100 MB of zeros as the .shp, deflated to about 100 kB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.prj", 'GEOGCS["WGS 84"]')
        with zf.open("bomb.shp", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(100):
                fh.write(chunk)
    return path


@pytest.mark.parametrize("build", [_declared_bomb, _compressible_bomb])
async def test_zip_bombs(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, build: Any
) -> None:
    bomb = build(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 1_000_000
    before = await rows(conn, "parcels")
    r = await client.post(
        "/collections/parcels/import", files={"file": ("bomb.zip", bomb.read_bytes())}
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert await rows(conn, "parcels") == before


async def test_huge_bodies_are_413(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    """Declared (Content-Length) or streamed (chunked): refused before it is parsed."""
    app = create_app(settings.model_copy(update={"max_body_bytes": 64 * 1024}))

    async def same_conn():  # noqa: ANN202
        yield conn

    app.dependency_overrides[get_conn] = same_conn
    collection = {
        "type": "FeatureCollection",
        "features": [feature(PARCELS, "EL-MAIZAL", code=f"BIG-{i}") for i in range(400)],
    }
    body = json.dumps(collection).encode()
    assert len(body) > 64 * 1024

    async def chunks():  # noqa: ANN202
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = await rows(conn, "parcels")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as c:
        for content in (body, chunks()):
            r = await c.post("/collections/parcels/items", content=content)
            assert r.status_code == 413, r.text
            assert r.headers["content-type"].startswith(PROBLEM)
            assert "over the limit" in r.json()["detail"]
    assert await rows(conn, "parcels") == before


async def test_what_a_probe_found_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    """Parameters and bodies that overflowed: a budget buying an infinite pipe, a sliver width
    below any double PostgreSQL keeps, an integer of 5,000 digits in a PATCH."""
    for url in (
        "/communes/5-DE-MARZO/analyses/water-hookups?budget_money=1e12&cost_per_m=1e-300",
        "/communes/5-DE-MARZO/analyses/water-hookups?budget_money=1e12&cost_per_m=0.01",
        "/communes/EL-MAIZAL/analyses/land-recovery?sliver_width_m=5e-324",
    ):
        r = await client.get(url)
        assert r.status_code == 400, (url, r.text)
        assert_answer(r)
    digits = b'{"properties": {"workers": ' + b"9" * 5000 + b"}}"
    r = await client.patch(
        "/collections/production_units/items/1",
        content=digits,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "too long to be read" in r.json()["detail"]
