"""Self-check: reads the written files back and asserts what SOURCE.md promises."""

from __future__ import annotations

import csv
import json

import rasterio
import shapely
from shapely.geometry import shape as geojson_shape
from shapely.geometry.base import BaseGeometry

from .communes.cinco_de_marzo import CINCO_DE_MARZO
from .constants import (
    DEM_CELL_M,
    DEM_NODATA,
    FOUNDING,
    LAST_DAY,
    LAYERS,
    OUT_DIR,
    SOURCE_NOTE,
    STEP_RISE_M,
)
from .generate import ALL_SPECS
from .geometry import Frame, geodesic_ha
from .placement import load_states


def read_layer(name: str) -> list[tuple[dict[str, object], BaseGeometry]]:
    data = json.loads((OUT_DIR / f"{name}.geojson").read_text(encoding="utf-8"))
    return [(f["properties"], geojson_shape(f["geometry"])) for f in data["features"]]


def read_csv(name: str) -> list[dict[str, str]]:
    with (OUT_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def state_split(geom: BaseGeometry, states: dict[str, BaseGeometry]) -> dict[str, float]:
    """Geodesic ha of ``geom`` in each state it touches."""
    return {
        code: geodesic_ha(part)
        for code, s in states.items()
        if not (part := geom.intersection(s)).is_empty and part.area > 0
    }


def check_geometries(
    layers: dict[str, list[tuple[dict, BaseGeometry]]], communes: dict[str, BaseGeometry]
) -> None:
    expected = {
        "communes": "MultiPolygon",
        "parcels": "MultiPolygon",
        "greenhouses": "Polygon",
        "production_units": "Point",
        "dwellings": "Point",
        "facilities": "Point",
        "water_mains": "LineString",
        "power_lines": "LineString",
        "paths": "LineString",
    }
    for name, feats in layers.items():
        for props, g in feats:
            assert g.is_valid and not g.is_empty, (name, props)
            assert g.geom_type == expected[name], (name, g.geom_type)
            if name != "communes":
                home = communes[str(props["commune"])]
                assert home.buffer(1e-6).covers(g), (name, props, "outside its commune")
    text = "".join((OUT_DIR / f"{n}.geojson").read_text(encoding="utf-8") for n in layers)
    assert "\\u" not in text, "write UTF-8, not ASCII escapes"


def check_communes(
    feats: list[tuple[dict, BaseGeometry]], states: dict[str, BaseGeometry]
) -> dict[str, object]:
    by_code = {p["code"]: (p, g) for p, g in feats}
    assert set(by_code) == {s.code for s in ALL_SPECS}, sorted(by_code)
    assert all(p["source"] == SOURCE_NOTE for p, _ in feats), "every commune is illustrative"
    figures: dict[str, object] = {}
    for spec in ALL_SPECS:
        _, g = by_code[spec.code]
        ha = geodesic_ha(g)
        split = state_split(g, states)
        figures[spec.code] = (ha, split)
        tol = {"EL-MAIZAL": 0.02, "5-DE-MARZO": 0.03}.get(spec.code, 0.05)
        assert abs(ha / spec.area_ha - 1) <= tol, (spec.code, ha)
        if spec.other_state:
            share = split.get(spec.state, 0) / ha
            assert 0.55 <= share <= 0.75, (spec.code, share)
            assert sum(split.get(c, 0) for c in (spec.state, spec.other_state)) / ha > 0.999
        else:
            assert states[spec.state].contains(g), (spec.code, "not inside", spec.state)
    assert abs(figures["5-DE-MARZO"][0] / 11.0 - 1) <= 0.03  # type: ignore[index]
    geoms = [g for _, g in feats]
    assert not any(a.intersects(b) for i, a in enumerate(geoms) for b in geoms[i + 1 :])
    return figures


def check_parcels(feats: list[tuple[dict, BaseGeometry]]) -> None:
    """Codes unique; no two parcels of a commune share interior area."""
    codes = [p["code"] for p, _ in feats]
    assert len(codes) == len(set(codes)), "parcel codes repeat"
    geoms = [g for _, g in feats]
    tree = shapely.STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="intersects"), strict=True):
        if i < j and feats[i][0]["commune"] == feats[j][0]["commune"]:
            assert not shapely.relate_pattern(geoms[i], geoms[j], "2********"), (codes[i], codes[j])


def check_history(parcels: list[tuple[dict, BaseGeometry]], rows: list[dict[str, str]]) -> None:
    current = {p["code"]: p for p, _ in parcels}
    by_code: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_code.setdefault(r["parcel_code"], []).append(r)
    for code, hist in by_code.items():
        assert hist[0]["from_status"] == "", code
        for a, b in zip(hist[:-1], hist[1:], strict=True):
            assert a["to_status"] == b["from_status"] and a["changed_on"] < b["changed_on"], code
        assert hist[-1]["to_status"] == current[code]["tenure"], code
        rec = current[code]["recovered_on"]
        assert rec is None or any(
            r["to_status"] == "occupied" and r["changed_on"] == rec for r in hist
        ), code
        assert all(FOUNDING.isoformat() <= r["changed_on"] <= LAST_DAY.isoformat() for r in hist)


def check_units(
    units: list[tuple[dict, BaseGeometry]], parcels: list[tuple[dict, BaseGeometry]]
) -> None:
    by_code = {p["code"]: g for p, g in parcels}
    for p, g in units:
        if p["parcel"] is not None:
            assert by_code[p["parcel"]].contains(g), p
    maizal = [p for p, _ in units if p["commune"] == "EL-MAIZAL"]
    workers = sum(p["workers"] for p in maizal)
    assert len(maizal) == 14 and 110 <= workers <= 130, ("El Maizal units", len(maizal), workers)
    hill = sum(p["commune"] == "5-DE-MARZO" for p, _ in units)
    assert hill == 19, ("5 de Marzo units", hill)


def check_dwellings(feats: list[tuple[dict, BaseGeometry]]) -> None:
    hill = [g for p, g in feats if p["commune"] == "5-DE-MARZO"]
    residents = sum(p["residents"] for p, _ in feats if p["commune"] == "5-DE-MARZO")
    assert 1200 <= len(hill) <= 1500, ("5 de Marzo dwellings", len(hill))
    assert abs(residents / 6000 - 1) <= 0.05, ("5 de Marzo residents", residents)
    frame = Frame(*CINCO_DE_MARZO.anchor)
    pts = [frame.to_metres(g) for g in hill]
    tree = shapely.STRtree(pts)
    close = tree.query(pts, predicate="dwithin", distance=3.0)
    assert (close[0] == close[1]).all(), "dwellings closer than 3 m"


def check_network(paths: list[tuple[dict, BaseGeometry]]) -> None:
    """5 de Marzo's paths: one connected, noded network (lines meet only at end points)."""
    hill = [(p, g) for p, g in paths if p["commune"] == "5-DE-MARZO"]
    parent: dict[tuple[float, float], tuple[float, float]] = {}

    def root(k: tuple[float, float]) -> tuple[float, float]:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    for _, g in hill:
        a, b = (tuple(round(c, 6) for c in g.coords[i]) for i in (0, -1))
        parent[root(a)] = root(b)
    assert len({root(k) for k in list(parent)}) == 1, "5 de Marzo paths are not connected"
    ends = [{g.coords[0], g.coords[-1]} for _, g in hill]
    for i, (_, a) in enumerate(hill):
        for j in range(i + 1, len(hill)):
            meet = a.intersection(hill[j][1])
            pts = {tuple(c) for part in shapely.get_parts(meet) for c in part.coords}
            assert pts <= (ends[i] & ends[j]), ("unnoded crossing", hill[i][0], hill[j][0])
    kinds = {p["kind"] for p, _ in hill}
    assert kinds == {"road", "footpath", "stairway"}
    assert any(p["transit"] for p, _ in hill) and any(
        p["vehicles"] and not p["transit"] for p, _ in hill
    )


def check_dem(paths: list[tuple[dict, BaseGeometry]], commune: BaseGeometry) -> None:
    path = OUT_DIR / "dem_5_de_marzo.tif"
    assert path.stat().st_size < 2_000_000
    frame = Frame(*CINCO_DE_MARZO.anchor)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32619 and src.res == (DEM_CELL_M, DEM_CELL_M)
        assert src.dtypes[0] == "float32" and src.nodata == DEM_NODATA
        assert src.compression.name.lower() == "deflate"
        z = src.read(1)
        low, high = float(z.min()), float(z.max())
        assert 890 <= low <= 910 and 1010 <= high <= 1030, ("DEM range", low, high)
        b = frame.to_metres(commune).bounds
        west, south, east, north = src.bounds
        assert west <= b[0] - 100 and south <= b[1] - 100, "DEM margin < 100 m"
        assert east >= b[2] + 100 and north >= b[3] + 100, "DEM margin < 100 m"
        for p, g in paths:
            if p["commune"] != "5-DE-MARZO" or p["kind"] != "stairway":
                continue
            ends = [frame.xy(*g.coords[i]) for i in (0, -1)]
            za, zb = (float(v[0]) for v in src.sample(ends))
            expect = abs(zb - za) / STEP_RISE_M
            assert abs(p["steps"] - expect) <= max(3, 0.05 * expect), (p, expect)


def check(states: dict[str, BaseGeometry] | None = None) -> dict[str, object]:
    """Assert the promises of SOURCE.md on the files on disk; return the key figures."""
    states = states or load_states()
    layers = {n: read_layer(n) for n in LAYERS}
    communes = {p["code"]: g for p, g in layers["communes"]}
    check_geometries(layers, communes)
    figures = check_communes(layers["communes"], states)
    check_parcels(layers["parcels"])
    check_history(layers["parcels"], read_csv("parcel_history.csv"))
    check_units(layers["production_units"], layers["parcels"])
    check_dwellings(layers["dwellings"])
    check_network(layers["paths"])
    check_dem(layers["paths"], communes["5-DE-MARZO"])
    for p, g in layers["greenhouses"]:
        assert 300 <= geodesic_ha(g) * 1e4 <= 2000, p
    exchanges = read_csv("exchanges.csv")
    assert 12 <= len(exchanges) <= 20, ("exchanges", len(exchanges))
    assert all(r["from_commune"] in communes and r["to_commune"] in communes for r in exchanges)
    total = sum(f.stat().st_size for f in OUT_DIR.iterdir())
    assert total < 3_000_000, total
    figures["counts"] = {n: len(v) for n, v in layers.items()}
    figures["bytes"] = total
    return figures


def report(figures: dict[str, object]) -> None:
    for code, value in figures.items():
        if isinstance(value, tuple):
            ha, split = value
            parts = ", ".join(f"{k} {v:.1f} ha ({100 * v / ha:.1f} %)" for k, v in split.items())
            print(f"  {code}: {ha:.2f} ha [{parts}]")
    print(f"  counts: {figures['counts']}")
    print(f"  total size: {figures['bytes']:,} bytes")
