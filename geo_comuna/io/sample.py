"""Loads Venezuela's states and the illustrative sample territories (data/boundaries/).

Everything goes in one transaction through the ordinary import path, so the samples are
validated like any planner's file. Loading again replaces the sample communes and what
belongs to them; other data is left alone.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
from psycopg import AsyncConnection

from geo_comuna.errors import InvalidFile
from geo_comuna.io import dems
from geo_comuna.io.importer import Progress, import_file, import_frame, read, to_wgs84
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BOUNDARIES = REPO / "data" / "boundaries"
SAMPLES = BOUNDARIES / "samples"
#: layers with a sample file, in the order references need them
SAMPLE_LAYERS = (
    "communes",
    "parcels",
    "production_units",
    "greenhouses",
    "dwellings",
    "water_mains",
    "power_lines",
    "paths",
    "facilities",
)


async def load_states(conn: AsyncConnection, settings: Settings) -> int:
    """(Re)load the 25 state polygons, keyed by ISO 3166-2 code."""
    table, geometries, fmt = read(BOUNDARIES / "ve_states.geojson", LAYERS["states"], settings)
    table = table.rename_columns(["code" if c == "iso_3166_2" else c for c in table.column_names])
    async with conn.transaction():
        codes = table.column("code").to_pylist()
        await conn.execute("DELETE FROM states WHERE code = ANY(%s)", (codes,))
        count, _ = await import_frame(
            conn, LAYERS["states"], table, to_wgs84(geometries, fmt, None), settings
        )
    return count


async def _sample_communes(conn: AsyncConnection) -> list[int]:
    codes = (
        pd.read_json(SAMPLES / "communes.geojson")["features"]
        .map(lambda f: f["properties"]["code"])
        .tolist()
    )
    cur = await conn.execute("SELECT id FROM communes WHERE code = ANY(%s)", (codes,))
    return [r[0] for r in await cur.fetchall()]


async def _remove_samples(conn: AsyncConnection, ids: list[int]) -> None:
    await conn.execute(
        "DELETE FROM exchanges WHERE from_commune_id = ANY(%(ids)s) "
        "OR to_commune_id = ANY(%(ids)s)",
        {"ids": ids},
    )
    for name in reversed(SAMPLE_LAYERS[1:]):
        await conn.execute(f"DELETE FROM {name} WHERE commune_id = ANY(%s)", (ids,))  # noqa: S608
    await conn.execute("DELETE FROM communes WHERE id = ANY(%s)", (ids,))


async def _load_history(conn: AsyncConnection) -> int:
    """Replace the trigger's 'registered today' rows with the sample's dated history.

    The import recorded the parcels' first tenures as one row per tenure naming its parcels
    (``parcel_ids``, migration 0011), parcels of other communes included: the sample's
    parcels are taken out of those rows (and their count), and a row naming no other parcel
    goes, so every other parcel keeps its first tenure and no sample parcel has two."""
    with open(SAMPLES / "parcel_history.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    codes = {"codes": sorted({r["parcel_code"] for r in rows})}
    await conn.execute(
        "DELETE FROM parcel_history h USING parcels p WHERE h.parcel_id = p.id "
        "AND p.code = ANY(%(codes)s)",
        codes,
    )
    await conn.execute(
        """WITH sample AS (
               SELECT range_agg(int4range(id, nullif(id, 2147483647) + 1)) AS ids
               FROM parcels WHERE code = ANY(%(codes)s)
           ), only_sample AS (
               DELETE FROM parcel_history h USING sample s WHERE s.ids @> h.parcel_ids
           )
           UPDATE parcel_history h
           SET parcel_ids = h.parcel_ids - s.ids,
               parcels = h.parcels - (SELECT count(*) FROM parcels p
                                      WHERE p.code = ANY(%(codes)s) AND h.parcel_ids @> p.id)
           FROM sample s
           WHERE h.parcel_ids && s.ids AND NOT s.ids @> h.parcel_ids""",
        codes,
    )
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO parcel_history (parcel_id, from_status, to_status, changed_at, note) "
            "SELECT id, nullif(%s, ''), %s, %s::date, nullif(%s, '') FROM parcels "
            "WHERE code = %s",
            [
                (r["from_status"], r["to_status"], r["changed_on"], r["note"], r["parcel_code"])
                for r in rows
            ],
        )
    return len(rows)


async def load_samples(
    conn: AsyncConnection, settings: Settings, progress: Progress | None = None
) -> dict[str, int]:
    """States plus every sample layer, in one transaction; returns features per layer."""
    say = progress or (lambda _msg: None)
    if not (SAMPLES / "communes.geojson").exists():
        raise InvalidFile(
            f"sample data missing in {SAMPLES}; run `python data/boundaries/make_samples.py`"
        )
    counts: dict[str, int] = {}
    async with conn.transaction():
        say("states")
        counts["states"] = await load_states(conn, settings)
        await _remove_samples(conn, await _sample_communes(conn))
        for name in SAMPLE_LAYERS:
            say(name)
            report = await import_file(conn, LAYERS[name], SAMPLES / f"{name}.geojson", settings)
            counts[name] = report.features
        exchanges = pd.read_csv(SAMPLES / "exchanges.csv")
        say("exchanges")
        counts["exchanges"], _ = await import_frame(
            conn, LAYERS["exchanges"], exchanges, [None] * len(exchanges), settings
        )
        counts["parcel_history"] = await _load_history(conn)
        say("DEM of 5 de Marzo")
        cur = await conn.execute("SELECT id FROM communes WHERE code = '5-DE-MARZO'")
        await dems.register(conn, (await cur.fetchone())[0], SAMPLES / "dem_5_de_marzo.tif")
        counts["dems"] = 1
    await conn.execute("ANALYZE")
    return counts
