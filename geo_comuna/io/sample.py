"""Loads Venezuela's states and the illustrative sample territories (package data under
geo_comuna/data/, or wherever Settings.states_path and Settings.sample_dir point).

Which layers the demo holds, from which file, comes from the registry (``Layer.sample``).
Everything goes in one transaction through the ordinary import path, so the samples are
validated like any planner's file. Loading again replaces the sample communes and what
belongs to them (each layer's ``commune_filter``); other data is left alone.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
from psycopg import AsyncConnection, sql
from pyarrow import csv as arrow_csv

from geo_comuna.errors import InvalidFile, Said
from geo_comuna.features.filters import commune_sql
from geo_comuna.features.query import require_commune, resolve_commune
from geo_comuna.io import dems
from geo_comuna.io.importer import Progress, import_file, read, to_wgs84, write_frame
from geo_comuna.layers import COMMUNES, LAYERS, Layer
from geo_comuna.settings import Settings

#: the sample commune whose DEM the demo holds (dem_5_de_marzo.tif in the sample folder);
#: that it is stored tells that the sample is loaded
DEM_COMMUNE = "5-DE-MARZO"
#: the real boundaries, reloaded by code (the states)
BY_CODE = [layer for layer in LAYERS.values() if layer.sample and layer.sample.by_code]
#: the sample territories' layers, in registry order: a referenced layer comes first
TERRITORIES = [layer for layer in LAYERS.values() if layer.sample and not layer.sample.by_code]
#: the names of those kept as GeoJSON, one file each (data/boundaries/make_samples.py)
SAMPLE_LAYERS = tuple(layer.name for layer in TERRITORIES if not layer.geometry_optional)


def sample_file(layer: Layer, settings: Settings) -> Path:
    """Where a layer's demo features are: the states' real boundaries at
    Settings.states_path, the sample territories' files in Settings.sample_dir."""
    assert layer.sample is not None
    if layer.sample.by_code:
        return settings.states_path
    return settings.sample_dir / layer.sample.file


async def loaded(conn: AsyncConnection) -> bool:
    """Is the sample in the store already?"""
    return await resolve_commune(conn, DEM_COMMUNE) is not None


async def load_by_code(conn: AsyncConnection, layer: Layer, settings: Settings) -> int:
    """(Re)load a layer's real boundaries (the 25 state polygons), keyed by their codes."""
    assert layer.sample is not None
    table, geometries, fmt = read(sample_file(layer, settings), layer, settings)
    renames = dict(layer.sample.columns)
    table = table.rename_columns([renames.get(c, c) for c in table.column_names])
    async with conn.transaction():
        codes = table.column("code").to_pylist()
        await conn.execute(
            sql.SQL("DELETE FROM {} WHERE code = ANY(%s)").format(sql.Identifier(layer.table)),
            (codes,),
        )
        geometries = to_wgs84(geometries, fmt, None)
        count = (await write_frame(conn, layer, table, geometries, settings)).features
    return count


async def _sample_communes(conn: AsyncConnection, settings: Settings) -> list[int]:
    codes = (
        pd.read_json(sample_file(COMMUNES, settings))["features"]
        .map(lambda f: f["properties"]["code"])
        .tolist()
    )
    cur = await conn.execute(
        sql.SQL("SELECT id FROM {} WHERE code = ANY(%s)").format(sql.Identifier(COMMUNES.table)),
        (codes,),
    )
    return [r[0] for r in await cur.fetchall()]


async def _remove_samples(conn: AsyncConnection, ids: list[int]) -> None:
    """What the sample communes hold, and then the communes: their land records first (a
    parcel keeps its rights and documents: migration 0032), then the layers naming another
    before it, and the communes' parties before them."""
    await conn.execute("DELETE FROM documents WHERE commune_id = ANY(%s)", (ids,))
    await conn.execute(
        "DELETE FROM rights r USING parcels p WHERE r.parcel_id = p.id AND p.commune_id = ANY(%s)",
        (ids,),
    )
    for layer in reversed(TERRITORIES):
        if layer is COMMUNES:
            await conn.execute("DELETE FROM parties WHERE commune_id = ANY(%s)", (ids,))
        await conn.execute(
            sql.SQL("DELETE FROM {} t WHERE {}").format(
                sql.Identifier(layer.table), commune_sql(layer, sql.SQL("ANY(%(ids)s)"))
            ),
            {"ids": ids},
        )


async def _load_territory(conn: AsyncConnection, layer: Layer, settings: Settings) -> int:
    path = sample_file(layer, settings)
    if layer.geometry_optional:  # properties only: the database draws the geometry
        table = arrow_csv.read_csv(path)
        count = (await write_frame(conn, layer, table, [None] * table.num_rows, settings)).features
        return count
    return (await import_file(conn, layer, path, settings)).features


async def _load_history(conn: AsyncConnection, samples: Path) -> int:
    """Replace the trigger's 'registered today' rows with the sample's dated history.

    The import recorded the parcels' first tenures as one row per tenure naming its parcels
    (``parcel_ids``, migration 0011), parcels of other communes included: the sample's
    parcels are taken out of those rows (and their count), and a row naming no other parcel
    goes, so every other parcel keeps its first tenure and no sample parcel has two."""
    with open(samples / "parcel_history.csv", newline="", encoding="utf-8") as fh:
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


async def _load_records(conn: AsyncConnection, samples: Path) -> tuple[int, int]:
    """The illustrative land records (parties with fictional names, their rights on sample
    parcels), marked ``illustrative``; how many parties and rights. They agree with the
    parcels' tenure, so the tenure rule (migration 0021) changes none and the sample's
    history stays as it is."""
    doc = json.loads((samples / "tenure_records.json").read_text(encoding="utf-8"))
    keys: dict[str, int] = {}
    for p in doc["parties"]:
        cur = await conn.execute(
            "INSERT INTO parties (commune_id, kind, name, id_number, contact, illustrative) "
            "SELECT id, %s, %s, %s, %s, true FROM communes WHERE code = %s RETURNING id",
            (p["kind"], p["name"], p.get("id_number"), p.get("contact"), p["commune"]),
        )
        keys[p["key"]] = (await cur.fetchone())[0]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO rights (parcel_id, party_id, kind, status, share, starts_on, note, "
            "illustrative) SELECT id, %s, %s, %s, %s, %s, %s, true FROM parcels WHERE code = %s",
            [
                (
                    keys[r["party"]],
                    r["kind"],
                    r["status"],
                    r.get("share", 1),
                    r.get("starts_on"),
                    r.get("note"),
                    r["parcel"],
                )
                for r in doc["rights"]
            ],
        )
    return len(doc["parties"]), len(doc["rights"])


async def load_samples(
    conn: AsyncConnection, settings: Settings, progress: Progress | None = None
) -> dict[str, int]:
    """States plus every sample layer, in one transaction; returns features per layer."""
    say = progress or (lambda _msg: None)
    samples = settings.sample_dir
    if not sample_file(COMMUNES, settings).exists():
        raise InvalidFile(
            f"sample data missing in {samples} (GEO_COMUNA_SAMPLE_DIR); the package ships "
            "them, a checkout makes them with `python data/boundaries/make_samples.py`"
        )
    counts: dict[str, int] = {}
    async with conn.transaction():
        for layer in BY_CODE:
            say(Said(f"layer {layer.name}", f"capa {layer.name}"))
            counts[layer.name] = await load_by_code(conn, layer, settings)
        await _remove_samples(conn, await _sample_communes(conn, settings))
        for layer in TERRITORIES:
            say(Said(f"layer {layer.name}", f"capa {layer.name}"))
            counts[layer.name] = await _load_territory(conn, layer, settings)
        counts["parcel_history"] = await _load_history(conn, samples)
        counts["parties"], counts["rights"] = await _load_records(conn, samples)
        say(Said(f"DEM of {DEM_COMMUNE}", f"modelo de elevación de {DEM_COMMUNE}"))
        commune_id = await require_commune(conn, DEM_COMMUNE)
        await dems.register(conn, commune_id, samples / "dem_5_de_marzo.tif")
        counts["dems"] = 1
    await conn.execute("ANALYZE")
    return counts
