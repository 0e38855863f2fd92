"""Write services behind the API (OGC API - Features Part 4): parse, validate, write, in one
transaction. Each returns what the response needs; errors are typed (errors.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import shapely
from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.accounts import EVERYWHERE, User, writing
from geo_comuna.errors import (
    Forbidden,
    InvalidGeometry,
    InvalidInput,
    NotFound,
    Said,
)
from geo_comuna.features import attributes, geojson, references, validate, write
from geo_comuna.features.crs import CRS84, Crs, check_coordinates, to_storage, xy_order
from geo_comuna.features.crs import parse as parse_crs
from geo_comuna.features.query import ETAG_SQL, one, require_commune
from geo_comuna.layers import Layer
from geo_comuna.preconditions import NO_CONDITIONS, Preconditions
from geo_comuna.settings import Settings


@dataclass
class Written:
    ids: list[int]
    repairs: list[dict[str, Any]] = field(default_factory=list)
    etag: str | None = None  # the new version, for single-feature writes


def _writer(user: User) -> None:
    if not user.may_write:
        raise Forbidden(
            Said(
                f"user {user.name!r} is a {user.role}; writing needs an editor or admin token",
                f"el usuario {user.name!r} tiene el rol {user.role}; para escribir hace falta "
                "un token de editor o de admin",
            )
        )


async def _etag(conn: AsyncConnection, layer: Layer, feature_id: int) -> str | None:
    """The new version only (building the whole feature to read it would be wasted work)."""
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM {} t WHERE t.id = %s").format(
            ETAG_SQL, sql.Identifier(layer.table)
        ),
        (feature_id,),
    )
    row = await cur.fetchone()
    return row[0] if row else None


def _validate(
    layer: Layer, parsed: geojson.Parsed, settings: Settings, repair: bool, lang: str = "es"
) -> validate.Checked:
    attrs = attributes.check_attributes(layer, parsed.properties, parsed.labels, lang=lang)
    geoms, repairs = validate.check_geometries(
        layer, parsed.geometries, parsed.labels, service_bbox=settings.service_bbox, repair=repair
    )
    return validate.Checked(attrs, geoms, repairs)


async def _checked(
    conn: AsyncConnection,
    layer: Layer,
    parsed: geojson.Parsed,
    settings: Settings,
    repair: bool,
    lang: str = "es",
    commune: str | None = None,
) -> tuple[validate.Checked, dict]:
    """Attributes and geometries checked (and repaired) off the event loop, within the
    request's deadline; references resolved in the database. ``lang``: the language of the
    labels an unknown value's message lists. ``commune``: the ``?commune=`` of the client's
    connection (an editor's QGIS sends it with every request): a feature that names no
    commune is of that one, and one that names another is refused."""
    checked = await work.cpu(_validate, layer, parsed, settings, repair, lang)
    ref = layer.reference("commune")
    if commune is None or ref is None:
        refs = await references.resolve(conn, layer, parsed.properties, parsed.labels)
        return checked, refs
    commune_id = await require_commune(conn, commune)
    refs = await references.resolve(
        conn, layer, parsed.properties, parsed.labels, {ref.name: commune_id}
    )
    given = attributes.python_values(parsed.properties.column(ref.name).combine_chunks())
    for label, named, value in zip(parsed.labels, refs[ref.column], given, strict=True):
        if named != commune_id:
            raise InvalidInput(
                Said(
                    f"the feature is of commune {value} and the request's commune={commune}: "
                    "leave commune out, or give that one",
                    f"la entidad es de la comuna {value} y la petición dice commune={commune}: "
                    "omita commune, o dé esa",
                ),
                feature=label,
                layer=layer.name,
            )
    return checked, refs


async def _in_storage_crs(
    conn: AsyncConnection, layer: Layer, parsed: geojson.Parsed, body_crs: Crs
) -> geojson.Parsed:
    """``parsed``'s geometries, written in ``body_crs`` (Content-Crs), as stored: lon/lat in
    EPSG:4326, transformed by PostGIS as every output in that CRS is, so that a feature read
    in a CRS and written back in it lands where it was."""
    if body_crs.uri == CRS84.uri or not parsed.geometry_given:
        return parsed
    at = [i for i, g in enumerate(parsed.geometries) if g is not None]
    await work.cpu(_placeable, layer, parsed, at, body_crs)
    stored = to_storage(sql.SQL("ST_GeomFromWKB(w)"), body_crs)
    cur = await conn.execute(
        sql.SQL(
            "SELECT ST_AsBinary({}) FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(w, n) ORDER BY n"
        ).format(stored),
        ([shapely.to_wkb(parsed.geometries[i]) for i in at],),
    )
    geometries = parsed.geometries.copy()
    for i, (wkb,) in zip(at, await cur.fetchall(), strict=True):
        geometries[i] = shapely.from_wkb(wkb)
    return dataclasses.replace(parsed, geometries=geometries)


def _placeable(layer: Layer, parsed: geojson.Parsed, at: list[int], body_crs: Crs) -> None:
    """Every coordinate of the geometries ``at`` is one ``body_crs`` can take to lon/lat: all
    at once (one transformer for a FeatureCollection of 10,000), then, when some is not,
    feature by feature to name it."""
    try:
        pairs = shapely.get_coordinates(parsed.geometries[at]).tolist()
        check_coordinates(xy_order(pairs, body_crs), body_crs, "geometry")
        return
    except InvalidInput:
        pass
    for i in at:
        pairs = shapely.get_coordinates(parsed.geometries[i]).tolist()
        try:
            check_coordinates(xy_order(pairs, body_crs), body_crs, "geometry")
        except InvalidInput as exc:
            raise InvalidGeometry(exc.reason, feature=parsed.labels[i], layer=layer.name) from None


def _parse(layer: Layer, body: bytes, crs: Crs = CRS84, **options: Any) -> geojson.Parsed:
    doc = geojson.loads(body)
    if options.get("single_id") is not None:  # PUT: the feature of the path
        _same_id(doc, options["single_id"])
    _crs_member(doc, crs)
    return geojson.parse(layer, doc, **options)


def _crs_member(doc: Any, body_crs: Crs) -> None:
    """A body's GeoJSON 2008 ``crs`` member (RFC 7946 has none): taken as the body's CRS
    when it is the one Content-Crs names (CRS84 without the header; EPSG:4326, as old
    writers labelled lon/lat, too), else refused. It was ignored: a body declaring
    EPSG:2202 with lon/lat coordinates was stored as CRS84, and one with UTM metres
    refused for coordinates it did not have."""
    member = doc.get("crs") if isinstance(doc, dict) else None
    if member is None:
        return
    props = member.get("properties") if isinstance(member, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if not isinstance(name, str):
        raise InvalidInput(
            Said(
                "the body's crs member names no CRS; leave it out and send the CRS in the "
                "Content-Crs header",
                "el miembro crs del cuerpo no nombra ningún CRS; quítelo y envíe el CRS en la "
                "cabecera Content-Crs",
            )
        )
    named = parse_crs(name, "the body's crs member")
    if named.srid != body_crs.srid:
        raise InvalidInput(
            Said(
                f"the body's crs member names {named.uri} but its coordinates are read in "
                f"{body_crs.uri} (Content-Crs): send that CRS in the Content-Crs header",
                f"el miembro crs del cuerpo nombra {named.uri}, pero sus coordenadas se leen "
                f"en {body_crs.uri} (Content-Crs): envíe ese CRS en la cabecera Content-Crs",
            )
        )


async def create(
    conn: AsyncConnection,
    layer: Layer,
    body: bytes,
    settings: Settings,
    user: User,
    *,
    repair: bool = False,
    lang: str = "es",
    crs: Crs = CRS84,
    commune: str | None = None,
    note: str | None = None,
) -> Written:
    """POST: one Feature or a FeatureCollection, all or nothing; ``crs``: the body's;
    ``commune``: the connection's (_checked); ``note``: why (accounts.writing)."""
    _writer(user)
    parsed = await work.cpu(
        _parse,
        layer,
        body,
        crs,
        max_features=work.limits().max_features_per_write,
        creating=True,
    )
    async with writing(conn, user, note=note):
        parsed = await _in_storage_crs(conn, layer, parsed, crs)
        checked, refs = await _checked(conn, layer, parsed, settings, repair, lang, commune)
        ids = await write.insert(conn, layer, checked, refs, parsed.labels)
        etag = await _etag(conn, layer, ids[0]) if len(ids) == 1 else None
    return Written(ids, checked.repairs, etag)


async def replace(
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    body: bytes,
    settings: Settings,
    user: User,
    *,
    repair: bool = False,
    conditions: Preconditions = NO_CONDITIONS,
    lang: str = "es",
    crs: Crs = CRS84,
    commune: str | None = None,
    note: str | None = None,
) -> Written:
    """PUT: the feature becomes exactly the body (absent properties become null; a missing
    commune the connection's, ``commune``)."""
    _writer(user)
    parsed = await work.cpu(_parse, layer, body, crs, max_features=1, single_id=feature_id)
    if not parsed.geometry_given and not layer.geometry_optional:
        raise InvalidGeometry(
            Said("missing geometry", "falta la geometría"), feature=feature_id, layer=layer.name
        )
    async with writing(conn, user, note=note):
        await write.check_version(conn, layer, feature_id, conditions)
        parsed = await _in_storage_crs(conn, layer, parsed, crs)
        checked, refs = await _checked(conn, layer, parsed, settings, repair, lang, commune)
        await write.replace(conn, layer, feature_id, checked, refs)
        etag = await _etag(conn, layer, feature_id)
    return Written([feature_id], checked.repairs, etag)


async def patch(
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    body: bytes,
    settings: Settings,
    user: User,
    *,
    repair: bool = False,
    conditions: Preconditions = NO_CONDITIONS,
    lang: str = "es",
    crs: Crs = CRS84,
    commune: str | None = None,
    note: str | None = None,
) -> Written:
    """PATCH: only the properties (and geometry) given change; null clears a property (the
    commune, when the connection names one, ``commune``, becomes that one)."""
    _writer(user)
    parsed = await work.cpu(_parse_patch, layer, body, feature_id, crs)
    if not parsed.present and not parsed.geometry_given:
        return await _unchanged(conn, layer, feature_id, user, conditions)
    async with writing(conn, user, note=note):
        await write.check_version(conn, layer, feature_id, conditions)
        current = await _current(conn, layer, feature_id)
        given = {
            name: attributes.python_values(parsed.properties.column(name).combine_chunks())[0]
            for name in parsed.present
        }
        merged = {**current["properties"], **given}
        parsed = await _in_storage_crs(conn, layer, parsed, crs)
        geometry = parsed.geometries if parsed.geometry_given else None
        if geometry is None:  # validate the stored geometry as is: cheap, and keeps one path
            geometry = geojson.parse(
                layer,
                {"type": "Feature", "geometry": current["geometry"], "properties": {}},
                max_features=1,
                single_id=feature_id,
            ).geometries
        full = geojson.Parsed(
            geojson.properties_table([merged], layer.property_names),
            geometry,
            [feature_id],
            set(merged),
            True,
        )
        checked, refs = await _checked(conn, layer, full, settings, repair, lang, commune)
        columns = [r.column for r in layer.references if r.name in parsed.present] + [
            a.name for a in layer.attributes if a.name in parsed.present
        ]
        if parsed.geometry_given:
            columns.append("geom")
        await write.replace(conn, layer, feature_id, checked, refs, only=columns)
        etag = await _etag(conn, layer, feature_id)
    return Written([feature_id], checked.repairs, etag)


async def _unchanged(
    conn: AsyncConnection, layer: Layer, feature_id: int, user: User, conditions: Preconditions
) -> Written:
    """A PATCH that names nothing to change ({}, or no properties and no geometry): nothing
    is written, nor audited, and the answer is the feature's version, provided the writer
    could have changed it (404, 412 and 403 as for any PATCH)."""
    async with writing(conn, user):
        await write.check_version(conn, layer, feature_id, conditions)
        await write.lock_to_change(conn, layer, feature_id)
        etag = await _etag(conn, layer, feature_id)
    return Written([feature_id], [], etag)


def _same_id(doc: Any, feature_id: int) -> None:
    """A body may repeat the feature's id (QGIS sends it, as text); another id is a mistake
    the client must hear about, not a change to another feature or a silent no-op."""
    if isinstance(doc, dict) and "id" in doc and doc["id"] is not None:
        given = doc["id"]
        if isinstance(given, bool) or str(given) != str(feature_id):
            shown = repr(given) if len(repr(given)) <= 40 else repr(given)[:40] + "…"
            raise InvalidInput(
                Said(
                    f"the body's id {shown} is not the id in the path ({feature_id}); an id "
                    "cannot be changed",
                    f"el id {shown} del cuerpo de la petición no es el id de la ruta "
                    f"({feature_id}); un id no se puede cambiar",
                )
            )


#: what a PATCH's Feature may hold: what a feature read from here holds, and its CRS
PATCH_MEMBERS = frozenset({"type", "id", "geometry", "properties", "links", "bbox", "crs"})


def _parse_patch(layer: Layer, body: bytes, feature_id: int, crs: Crs = CRS84) -> geojson.Parsed:
    doc = geojson.loads(body)
    _known_members(doc, layer, feature_id)
    _same_id(doc, feature_id)
    _crs_member(doc, crs)
    _no_derived(layer, doc, feature_id)
    if isinstance(doc, dict) and "type" not in doc:
        doc = {"type": "Feature", **doc}  # {"properties": {...}} alone is a fine patch
    if isinstance(doc, dict):
        if "geometry" in doc and doc["geometry"] is None and not layer.geometry_optional:
            # it was answered 200 and changed nothing
            raise InvalidGeometry(
                Said(
                    f"a feature of {layer.name} has a geometry: a PATCH cannot remove it (leave "
                    "geometry out to keep it; DELETE removes the feature)",
                    f"una entidad de {layer.name} tiene geometría: un PATCH no puede quitarla "
                    "(omita geometry para conservarla; DELETE borra la entidad)",
                ),
                feature=feature_id,
                layer=layer.name,
            )
        doc.setdefault("geometry", None)
    return geojson.parse(layer, doc, max_features=1, single_id=feature_id)


def _known_members(doc: Any, layer: Layer, feature_id: int) -> None:
    """A PATCH member that is none of a Feature's (``propertis``) changes nothing: found from
    outside, it was answered 200, as if the change it meant had been made."""
    unknown = sorted(set(doc) - PATCH_MEMBERS) if isinstance(doc, dict) else []
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise InvalidInput(
            Said(
                f"unknown member {names} of the Feature: a PATCH changes properties "
                '(inside "properties") and the geometry',
                f"miembro desconocido {names} de la entidad: un PATCH cambia campos (dentro de "
                '"properties") y la geometría',
            ),
            feature=feature_id,
            layer=layer.name,
        )


def _no_derived(layer: Layer, doc: Any, feature_id: int) -> None:
    """A PATCH names what it changes: one naming a value PostGIS works out (area_ha) was
    answered 200 and ignored, while an unknown property was a 400. (A PUT carries the whole
    feature as it was read, derived values included: those it may repeat.)"""
    props = doc.get("properties") if isinstance(doc, dict) else None
    named = sorted(set(props) & {d.name for d in layer.derived}) if isinstance(props, dict) else []
    if named:
        raise InvalidInput(
            Said(
                f"{', '.join(named)} of {layer.name} is worked out from the feature "
                "(read-only): a PATCH cannot set it",
                f"{', '.join(named)} de {layer.name} se calcula a partir de la entidad (solo "
                "lectura): un PATCH no puede fijarlo",
            ),
            feature=feature_id,
            layer=layer.name,
        )


async def _current(conn: AsyncConnection, layer: Layer, feature_id: int) -> dict[str, Any]:
    # the whole stored feature, to merge a patch into: never sent back to the writer
    found = await one(conn, layer, feature_id, EVERYWHERE)
    if found is None:
        raise NotFound(
            Said(f"no feature {feature_id}", f"no existe la entidad {feature_id}"), layer=layer.name
        )
    feature = geojson.loads(found[0].encode())
    writable = set(layer.property_names)
    feature["properties"] = {k: v for k, v in feature["properties"].items() if k in writable}
    return feature


async def remove(
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    user: User,
    *,
    conditions: Preconditions = NO_CONDITIONS,
    note: str | None = None,
) -> None:
    _writer(user)
    async with writing(conn, user, note=note):
        await write.check_version(conn, layer, feature_id, conditions)
        await write.delete(conn, layer, feature_id)
