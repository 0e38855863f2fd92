"""Hostile input on the import path: random frames into the service below every import, random
and unusable CRSs on an upload and an export, references beyond every integer. A bad value,
geometry or CRS is a typed 4xx naming the feature, and nothing is written.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from geo_comuna.errors import GeoComunaError
from geo_comuna.features.geojson import properties_table
from geo_comuna.io.importer import write_frame
from geo_comuna.settings import Settings
from tests.factories import LAT, LON, feature
from tests.hostile import BOUNDED, PARCELS, assert_answer, geometries, json_leaf, rows

pytestmark = pytest.mark.anyio


@BOUNDED
@given(
    values=st.lists(
        st.one_of(
            json_leaf,
            st.just("\x00"),
            st.sampled_from(["abandoned", "occupied", "9999-99-99", "2020-01-01", 2**64]),
        ),
        min_size=1,
        max_size=4,
    ),
    column=st.sampled_from(
        ["code", "tenure", "land_use", "recovered_on", "notes", "commune", "other"]
    ),
    geometry=geometries,
)
async def test_random_frames_to_write_frame(
    conn: AsyncConnection, settings: Settings, values: list, column: str, geometry: Any
) -> None:
    """The service below every import: a bad value or geometry is a typed 4xx error naming
    the feature (1-based position) and nothing is written."""
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, "parcels")
        good = feature(PARCELS, "EL-MAIZAL")["properties"]
        sent = [{**good, column: v} for v in values]
        frame = properties_table(sent, list(sent[0]))  # as a request body's
        geoms = np.array(
            [shapely.from_geojson(json.dumps(feature(PARCELS)["geometry"]))] * len(values),
            dtype=object,
        )
        try:
            geoms[-1] = shapely.from_geojson(json.dumps(geometry), on_invalid="ignore")
        except (shapely.errors.GEOSException, ValueError, TypeError):
            geoms[-1] = None
        try:
            count = (await write_frame(conn, PARCELS, frame, geoms, settings)).features
        except GeoComunaError as exc:
            assert 400 <= exc.status < 500, exc.message
            if exc.code in ("invalid-geometry", "invalid-attribute"):
                assert exc.feature in range(1, len(values) + 1), exc.message
            assert await rows(conn, "parcels") == before
        else:
            assert await rows(conn, "parcels") == before + count == before + len(values)


crs_strings = st.one_of(
    st.text(max_size=40),
    st.builds("EPSG:{}".format, st.integers(min_value=-10, max_value=10**7)),
    st.sampled_from(
        [
            "EPSG:2202",
            "EPSG:3857",
            "EPSG:4326",
            "EPSG:32619",
            "ESRI:102100",
            "+proj=utm +zone=19 +datum=WGS84",
            "+proj=longlat +a=1 +b=1",
            "+proj=ortho +lat_0=90",
            "urn:ogc:def:crs:EPSG::4326",
            'PROJCS["broken"',
            'GEOGCS["x",DATUM["y",SPHEROID["z",0,0]]]',
            "+proj=pipeline +step +proj=axisswap +order=2,1",
            "IAU_2015:30100",
            "+proj=geos +h=1 +lon_0=0",
            "EPSG:0",
            "EPSG:99999999999999999999",
        ]
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(crs=crs_strings)
async def test_random_crs_on_upload(
    client: httpx.AsyncClient, conn: AsyncConnection, crs: str
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, "parcels")
        collection = {
            "type": "FeatureCollection",
            "features": [feature(PARCELS, "EL-MAIZAL", code=f"CRS-{i}") for i in range(2)],
        }
        r = await client.post(
            "/collections/parcels/import",
            params={"crs": crs},
            files={"file": ("p.geojson", json.dumps(collection).encode())},
        )
        assert_answer(r)
        assert await rows(conn, "parcels") == before + (2 if r.status_code == 201 else 0)


async def test_a_crs_of_another_planet(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """IAU_2015:30100 (the Moon) parses, but PROJ cannot transform it to or from WGS 84."""
    before = await rows(conn, "parcels")
    body = json.dumps(
        {"type": "FeatureCollection", "features": [feature(PARCELS, "EL-MAIZAL")]}
    ).encode()
    r = await client.post(
        "/collections/parcels/import",
        params={"crs": "IAU_2015:30100"},
        files={"file": ("p.geojson", body)},
    )
    assert r.status_code == 422 and "cannot transform" in r.json()["detail"], r.text
    r = await client.get(
        "/collections/parcels/export", params={"format": "gpkg", "crs": "IAU_2015:30100"}
    )
    assert r.status_code == 422 and "cannot transform" in r.json()["detail"], r.text
    assert await rows(conn, "parcels") == before


@pytest.mark.parametrize("commune", [2**64, -(2**63) - 1, 2**31, 1e300])
async def test_a_reference_beyond_every_integer_is_refused_not_a_500(
    conn: AsyncConnection, settings: Settings, commune: Any
) -> None:
    """Found by the random frames: a commune of 2**64 overflowed Arrow's int64 (a 500)."""
    frame = properties_table(
        [{"code": "BIG-1", "tenure": "occupied", "land_use": "crops", "commune": commune}],
        ["code", "tenure", "land_use", "commune"],
    )
    square = shapely.box(LON, LAT, LON + 0.001, LAT + 0.001)
    with pytest.raises(GeoComunaError) as refused:
        await write_frame(conn, PARCELS, frame, [square], settings)
    assert refused.value.status == 422 and refused.value.feature == 1


async def test_an_upload_takes_its_form_fields_once_each_and_no_others(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: a 'crs' form field beside the file was ignored (coordinates read
    as lon/lat), and of two 'file' parts the last was read without a word about the first.
    Options go in the query; the form holds the file, once."""
    cur = await conn.execute("SELECT count(*) FROM facilities")
    before = (await cur.fetchone())[0]
    body = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"kind": "school", "commune": "EL-MAIZAL"},
                    "geometry": {"type": "Point", "coordinates": [-69.146, 9.695]},
                }
            ],
        }
    ).encode()
    one = ("f.geojson", body, "application/geo+json")
    for files, data, says in (
        ([("file", one)], {"crs": "EPSG:2202"}, "unknown form field 'crs'"),
        ([("file", one), ("file", one)], {}, "'file' given more than once"),
    ):
        r = await client.post(
            "/collections/facilities/import?allow_copies=true&lang=en", files=files, data=data
        )
        assert r.status_code == 400 and says in r.json()["detail"], r.text
    r = await client.post(
        "/communes/EL-MAIZAL/dems", files=[("file", one)], data={"mode": "upsert"}
    )
    assert r.status_code == 400 and "unknown form field 'mode'" in r.json()["detail"], r.text
    r = await client.post(
        "/communes/EL-MAIZAL/sync?dry_run=true&lang=es", files=[("file", one)], data={"x": "1"}
    )
    assert r.status_code == 400 and "campo de formulario desconocido 'x'" in r.json()["detail"]
    cur = await conn.execute("SELECT count(*) FROM facilities")
    assert (await cur.fetchone())[0] == before
