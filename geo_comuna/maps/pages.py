"""Pages for people: the landing page, the index of communes and of maps, and the HTML view
of the OGC API - Features documents (collections, a layer, its items, one item), as pygeoapi
and tipg give with ``f=html``.

The pages are built from the same documents the API answers with JSON (the routes hand them
over), so a page never shows what the reader could not read as JSON. Every word comes from
WORDS in Spanish and English; coded values and field names use the layer registry's labels,
numbers the language's format (templating.number). Nothing is loaded from another origin:
the item maps use the Leaflet copy the app serves under /static/.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote_plus, urlsplit

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.features import breakdown
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.layers.model import Label
from geo_comuna.layers.tenure import COLLECTIONS, RECORD_PROPERTIES, RecordProperty
from geo_comuna.maps.analysis_map import NEEDS_DEM, analysis_title
from geo_comuna.maps.assets import LEAFLET, VECTORGRID
from geo_comuna.maps.sheet.words import value_label, why
from geo_comuna.maps.sheet.words import words as sheet_words
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.sync_summary import LABELS
from geo_comuna.maps.templating import day, environment, number

LANGS = ("es", "en")

WORDS: dict[str, dict[str, str]] = {
    "es": dict(
        home="Inicio",
        communes="Comunas",
        maps="Mapas",
        collections="Capas",
        api_docs="Documentación de la API",
        tagline="El sistema de información geográfica de las comunas de Venezuela: estados, "
        "comunas a través de los límites estatales, parcelas y su tenencia, producción, "
        "viviendas con sus servicios, redes, escaleras e intercambios entre comunas.",
        holds="Qué contiene",
        features="entidades",
        commune="Comuna",
        code="Código",
        kind="Tipo",
        status="Estatus",  # the layer's own word (layers/territory.py)
        states="Estados",
        area_ha="Superficie (ha)",
        map="Mapa",
        report="Informe",
        analyses="Análisis",
        package="Paquete para campo",
        national_map="Mapa nacional",
        national_note="Todas las comunas por estado y situación, y la red de intercambios.",
        across="a través de un límite estatal",
        no_communes="Todavía no hay comunas registradas.",
        filter="Filtrar por nombre o código",
        filter_none="Ninguna comuna coincide con lo escrito.",
        connect="Conectar QGIS, GDAL o un programa",
        connect_qgis="En QGIS: Capa › Añadir capa › Añadir capa WFS / OGC API – Features; "
        "«Nueva» y, como URL, esta dirección:",
        connect_gdal="Con GDAL:",
        connect_edit="Para editar la comuna propia, añada ?commune=CÓDIGO a la URL y su token "
        "como encabezado «Authorization: Bearer …».",
        other_formats="Otros formatos",
        properties="Atributos",
        no_place="Sin ubicación registrada.",
        no_place_home="Sin una ubicación que usted pueda ver: la de una vivienda solo la ven "
        "los miembros de su comuna.",
        property="Campo",
        value="Valor",
        sheet="Ficha para imprimir (PDF)",
        its_rights="Sus derechos y restricciones",
        its_history="Historial de tenencia (JSON)",
        its_states="Sus estados (JSON)",
        its_parcels="Sus parcelas",
        shown="Se muestran",  # "100 mostrados" said parcels (parcelas) in the masculine
        shown_one="Se muestra",
        of="de",
        next="Siguiente",
        prev="Anterior",
        first_page="Primera página",
        collection="Capa",
        items="Entidades",
        queryables="Campos para filtrar",
        extent="Extensión",
        no_features="Ninguna.",
        geometry="Geometría",
        none="—",
        yes="sí",
        no="no",
        other_lang="English",
        footer="geo_comuna · datos abiertos de las comunas; lo reservado a los miembros de "
        "una comuna solo se muestra a ellos.",
        maps_of="Mapas de",
        communes_count_one="1 comuna",
        communes_count="{n} comunas",
        sync="Devolver paquete",
        sync_title="Devolver el paquete de campo",
        sync_lead="Trae de vuelta lo editado en QGIS o QField en el paquete de la comuna: "
        "primero se revisa (no se guarda nada) y, si todo está bien, se guarda todo de una "
        "vez. Una entidad con id actualiza la guardada; una sin id es nueva.",
        sync_file="El comuna.gpkg editado, o el zip del paquete",
        sync_token="Token de un editor de la comuna",
        sync_token_note="Se envía solo al servidor y se recuerda hasta cerrar esta pestaña.",
        sync_options="Opciones",
        sync_delete_missing=LABELS["es"]["delete_missing"],
        sync_repair="Corregir las geometrías no válidas (se informa cada cambio)",
        sync_conflicts="Si una entidad cambió en el servidor y en el paquete",
        sync_conflicts_none="no guardarla y mostrar ambas versiones",
        sync_theirs=LABELS["es"]["theirs"],
        sync_ours=LABELS["es"]["ours"],
        sync_check="Revisar (no guarda nada)",
        sync_write="Guardar",
        sync_checking="Revisando…",
        sync_writing="Guardando…",
        sync_checked="Revisado: esto es lo que se guardaría",
        sync_written="Guardado",
        sync_refused="No se guardó nada",
        sync_no_file="Elija el archivo del paquete.",
        sync_unreachable="No se pudo conectar con el servidor",
        sync_unknown="No se sabe si se guardó: cuando vuelva la conexión, pulse «Revisar» para "
        "verlo.",
        sync_no_token="Escriba el token de un editor de la comuna.",
        sync_too_big="El archivo pasa del tamaño que este servidor acepta; pida a quien lo "
        "administra que lo aumente (GEO_COMUNA_MAX_UPLOAD_BYTES).",
        sync_again="Cambió el archivo o una opción: revise de nuevo antes de guardar.",
    ),
    "en": dict(
        home="Home",
        communes="Communes",
        maps="Maps",
        collections="Layers",
        api_docs="API documentation",
        tagline="The geographic information system of Venezuela's communes: states, communes "
        "across state lines, parcels and their tenure, production, dwellings and their "
        "services, networks, stairways and exchanges between communes.",
        holds="What it holds",
        features="features",
        commune="Commune",
        code="Code",
        kind="Kind",
        status="Status",
        states="States",
        area_ha="Area (ha)",
        map="Map",
        report="Report",
        analyses="Analyses",
        package="Field package",
        national_map="National map",
        national_note="Every commune by state and status, and the exchange network.",
        across="across a state line",
        no_communes="No communes registered yet.",
        filter="Filter by name or code",
        filter_none="No commune matches what you typed.",
        connect="Connect QGIS, GDAL or a program",
        connect_qgis="In QGIS: Layer › Add Layer › Add WFS / OGC API – Features Layer; "
        "“New” and, as URL, this address:",
        connect_gdal="With GDAL:",
        connect_edit="To edit your own commune, add ?commune=CODE to the URL and your token as "
        "the header “Authorization: Bearer …”.",
        other_formats="Other formats",
        properties="Properties",
        no_place="No location recorded.",
        no_place_home="No location you may see: a home's is seen only by its commune's members.",
        property="Property",
        value="Value",
        sheet="Printable sheet (PDF)",
        its_rights="Its rights and restrictions",
        its_history="Tenure history (JSON)",
        its_states="Its states (JSON)",
        its_parcels="Its parcels",
        shown="Showing",
        shown_one="Showing",
        of="of",
        next="Next",
        prev="Previous",
        first_page="First page",
        collection="Layer",
        items="Features",
        queryables="Properties to filter by",
        extent="Extent",
        no_features="None.",
        geometry="Geometry",
        none="—",
        yes="yes",
        no="no",
        other_lang="Español",
        footer="geo_comuna · open data of the communes; what is reserved to a commune's "
        "members is shown only to them.",
        maps_of="Maps of",
        communes_count_one="1 commune",
        communes_count="{n} communes",
        sync="Send package back",
        sync_title="Send the field package back",
        sync_lead="Brings back what was edited in QGIS or QField in the commune's package: it "
        "is checked first (nothing is saved) and, if all is well, saved all at once. A "
        "feature with an id updates the stored one; one without an id is new.",
        sync_file="The edited comuna.gpkg, or the package's zip",
        sync_token="A token of one of the commune's editors",
        sync_token_note="Sent to the server only, and remembered until this tab is closed.",
        sync_options="Options",
        sync_delete_missing=LABELS["en"]["delete_missing"],
        sync_repair="Fix invalid geometries (each change reported)",
        sync_conflicts="When a feature changed both on the server and in the package",
        sync_conflicts_none="leave it unsaved and show both versions",
        sync_theirs=LABELS["en"]["theirs"],
        sync_ours=LABELS["en"]["ours"],
        sync_check="Check (saves nothing)",
        sync_write="Save",
        sync_checking="Checking…",
        sync_writing="Saving…",
        sync_checked="Checked: this is what would be saved",
        sync_written="Saved",
        sync_refused="Nothing was saved",
        sync_no_file="Choose the package's file.",
        sync_unreachable="The server could not be reached",
        sync_unknown="Whether it was saved is unknown: once the connection is back, press "
        "“Check” to see.",
        sync_no_token="Type a token of one of the commune's editors.",
        sync_too_big="The file is larger than this server takes; ask whoever runs it to raise "
        "the limit (GEO_COMUNA_MAX_UPLOAD_BYTES).",
        sync_again="The file or an option changed: check again before saving.",
    ),
}


def page_language(asked: str | None, accept_language: str | None) -> str:
    """``lang`` when given, else the first of Spanish or English the browser prefers
    (Accept-Language, by q), else Spanish."""
    if asked in LANGS:
        return asked
    best, best_q = "es", 0.0
    for part in (accept_language or "").split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        primary = tag.split("-")[0].lower()
        if primary not in LANGS:
            continue
        try:
            q = float(next((p[2:] for p in params if p.startswith("q=")), "1"))
        except ValueError:
            continue
        if q > best_q:
            best, best_q = primary, q
    return best


def other_lang_path(path: str, other: str) -> str:
    """``path`` (with its query, as the request gave it) in the other language: its own
    ``lang`` left out, every other parameter as it was (found from outside: a page of
    features reached by a link carrying lang= switched to ``?lang=es&lang=en``, a 400)."""
    where, kept = _path_without(path, "lang")
    return f"{where}?{'&'.join([*kept, f'lang={other}'])}"


def _path_without(path: str, name: str) -> tuple[str, list[str]]:
    """``path``'s place, and its query's parameters as the request gave them, but ``name``."""
    where, _, query = path.partition("?")
    return where, [p for p in query.split("&") if p and unquote_plus(p.split("=")[0]) != name]


def _render(template: str, lang: str, base: str, path: str, **context: Any) -> str:
    other = "en" if lang == "es" else "es"
    return (
        environment()
        .get_template(template)
        .render(
            lang=lang,
            t=WORDS[lang],
            num=number(lang),
            base=base,
            other_lang_href=f"{base}{other_lang_path(path, other)}",
            leaflet=LEAFLET,
            vectorgrid=VECTORGRID,
            **context,
        )
    )


def count_communes(n: int, lang: str) -> str:
    """ "1 comuna", "3.600 comunas": the plural, and the number in the language's format."""
    words = WORDS[lang]
    if n == 1:
        return words["communes_count_one"]
    return words["communes_count"].format(n=number(lang)(n))


async def communes(
    conn: AsyncConnection, access: Access, styles: Styles, lang: str
) -> list[dict[str, Any]]:
    """Every commune the reader may see, by name: code, name, kind and status as labels, the
    states it touches (the breakdown's, largest first) and its area (ha, geodesic)."""
    layer = LAYERS["communes"]
    kinds = layer.attribute("kind").domain
    statuses = layer.attribute("status").domain
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, code, name, kind, status, "
            "EXISTS (SELECT FROM dems d WHERE d.commune_id = c.id) AS has_dem "
            "FROM communes c ORDER BY name, code"
        )
        rows = await cur.fetchall()
    parts = {entry["id"]: entry for entry in await breakdown.communes(conn, None, access)}
    out = []
    for row in rows:
        entry = parts.get(row["id"], {"states": [], "area_ha": None})
        states = [s["name"] for s in entry["states"] if s["code"]]
        out.append(
            {
                "code": row["code"],
                "name": row["name"],
                "href": quote(row["code"], safe=""),
                "kind": styles.value_label(kinds, row["kind"], lang) if row["kind"] else None,
                "status": styles.value_label(statuses, row["status"], lang)
                if row["status"]
                else None,
                "states": states,
                "across": len(states) > 1,
                "area_ha": entry["area_ha"],
                "has_dem": row["has_dem"],
            }
        )
    return out


async def layer_counts(conn: AsyncConnection) -> dict[str, int]:
    """Features per layer (every reader sees every row; read rules hide properties, not
    rows), kept while no layer is written (work.cache)."""

    async def count() -> dict[str, int]:
        parts = [
            sql.SQL("SELECT {name}, count(*) FROM {table}").format(
                name=sql.Literal(layer.name), table=sql.Identifier(layer.table)
            )
            for layer in LAYERS.values()
        ]
        cur = await conn.execute(sql.SQL(" UNION ALL ").join(parts))
        return {name: n for name, n in await cur.fetchall()}

    cache = work.cache()
    if cache is None:
        return await count()
    return await cache.get_or_compute(conn, ("layer-counts",), list(LAYERS), count)


def analysis_maps(styles: Styles, lang: str) -> list[tuple[str, str]]:
    """(name, title) of every installed analysis, for the links to its map."""
    return [(name, analysis_title(name, styles, lang)) for name in sorted(all_analyses())]


def landing(
    base: str, lang: str, rows: list[dict[str, Any]], counts: dict[str, int], styles: Styles
) -> str:
    layers = [
        {"name": layer.name, "title": layer.title.get(lang), "count": counts.get(layer.name)}
        for layer in LAYERS.values()
    ]
    return _render(
        "landing.html",
        lang,
        base,
        "/",
        communes=rows,
        communes_count=count_communes(len(rows), lang),
        layers=layers,
        analyses=analysis_maps(styles, lang),
        title="geo_comuna",
    )


def communes_index(base: str, lang: str, rows: list[dict[str, Any]], styles: Styles) -> str:
    return _render(
        "communes.html",
        lang,
        base,
        "/communes",
        communes=rows,
        communes_count=count_communes(len(rows), lang),
        analyses=analysis_maps(styles, lang),
        title=WORDS[lang]["communes"],
    )


def maps_index(base: str, lang: str, rows: list[dict[str, Any]], styles: Styles) -> str:
    return _render(
        "maps.html",
        lang,
        base,
        "/maps",
        communes=rows,
        communes_count=count_communes(len(rows), lang),
        analyses=analysis_maps(styles, lang),
        needs_dem=NEEDS_DEM,
        title=WORDS[lang]["maps"],
    )


def sync_page(base: str, lang: str, code: str, name: str) -> str:
    """The page that sends a commune's field package back: the file, an editor's token and
    the sync's options, checked first (a dry run), then written. Its script posts to
    ``POST /communes/{code}/sync`` as any client would (the token in the Authorization
    header) and shows the answer's ``summary``, or the error page's reasons."""
    return _render(
        "sync.html",
        lang,
        base,
        f"/communes/{quote(code, safe='')}/sync",
        title=f"{WORDS[lang]['sync_title']} · {name}",
        commune={"code": code, "name": name},
        post_url=f"{base}/communes/{quote(code, safe='')}/sync",
    )


def collections(base: str, lang: str, doc: dict[str, Any]) -> str:
    return _render(
        "collections.html",
        lang,
        base,
        "/collections",
        collections=doc["collections"],
        title=WORDS[lang]["collections"],
    )


def collection(base: str, lang: str, doc: dict[str, Any]) -> str:
    return _render(
        "collection.html",
        lang,
        base,
        f"/collections/{doc['id']}",
        collection=doc,
        title=doc.get("title") or doc["id"],
    )


@dataclass(frozen=True)
class Records:
    """Land records (parties, rights: layers/tenure.py) shown as a layer's features are."""

    name: str
    title: Label
    properties: tuple[RecordProperty, ...]
    spatial: bool


def records(kind: str) -> Records:
    """``parties`` (no geometry) or ``rights`` (drawn as their parcels)."""
    return Records(kind, COLLECTIONS[kind][0], RECORD_PROPERTIES[kind], kind != "parties")


def _fields(layer: Layer | Records, styles: Styles, lang: str) -> dict[str, tuple[str, Any]]:
    """Property name -> (its label, its domain or None)."""
    described = (
        layer.properties
        if isinstance(layer, Records)
        else (*layer.references, *layer.attributes, *layer.derived)
    )
    out: dict[str, tuple[str, Any]] = {}
    for item in described:
        out[item.name] = (item.title.get(lang), getattr(item, "domain", None))
        if getattr(item, "places", None) is not None:  # a measure (layers/model.py Derived)
            out[item.name] = (item.title.get(lang), Places(item.places))
        if (layer.name, item.name) in AS_PERCENT:
            out[item.name] = (AS_PERCENT[layer.name, item.name].get(lang), PERCENT)
    return out


#: a share stored as a fraction (0-1) that a page writes as a percentage, with its label:
#: a right's page read "Cuota (0–1) 1" where its printed sheet says "100 %"
AS_PERCENT = {("rights", "share"): Label("Cuota", "Share")}
#: the "domain" _fields gives such a value
PERCENT = "percent"


class Places(int):
    """The "domain" _fields gives a measure written with that many decimals, always, as the
    API gives it (found from outside: 0.2022 ha read "0,2", and a column of lengths did not
    line up: 623.9 over 1,075.83)."""


def _spatial(layer: Layer | Records) -> bool:
    return layer.spatial if isinstance(layer, Records) else True


def _shown(value: Any, domain: Any, styles: Styles, lang: str) -> str:
    words = WORDS[lang]
    if value is None:
        return words["none"]
    if isinstance(value, bool):
        return words["yes"] if value else words["no"]
    if domain is PERCENT and isinstance(value, (int, float)):
        return f"{number(lang)(round(value * 100, 2))} %"
    if isinstance(domain, Places):  # a measure, with as many decimals as the API gives
        return number(lang)(value, int(domain)) if isinstance(value, int | float) else str(value)
    if domain is not None and isinstance(value, str) and value in domain:
        return styles.value_label(domain, value, lang)
    if isinstance(value, (int, float)):
        return number(lang)(value)
    if isinstance(value, list):  # as the maps' popups write them: "Lara (65 %), Portuguesa"
        return ", ".join(_one_of(v, styles, lang) for v in value) or words["none"]
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v, None, styles, lang)}" for k, v in value.items())
    if isinstance(value, str) and _ISO_DATE.match(value):  # 5 de marzo de 2009, not 2009-03-05
        try:
            when = (
                dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
            )
        except ValueError:
            return value
        return day(lang)(when)
    return str(value)


#: a date, or a moment, as the features' JSON writes it
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?)?$")


def _one_of(value: Any, styles: Styles, lang: str) -> str:
    """An item of a list: a record by its name (or code) and its share, else the value."""
    if not isinstance(value, dict):
        return _shown(value, None, styles, lang)
    name = str(value.get("name") or value.get("code") or _shown(value, None, styles, lang))
    share = value.get("share_pct")
    return name if share is None else f"{name} ({number(lang)(share)} %)"


def _href(layer: Layer | Records, name: str, value: Any, base: str, lang: str) -> str | None:
    """The page a property's value names: a right's parcel and party, a feature's commune,
    a production unit's parcel (found from outside: ids and codes a person following a land
    record had to type into the address bar). None for any other value."""
    if value is None or isinstance(value, bool) or isinstance(value, (list, dict)):
        return None
    if isinstance(layer, Records):
        table = {"parcel": "parcels", "party": "parties", "commune": "communes"}.get(name)
        key = "code" if name == "commune" else "id"
    else:
        ref = layer.reference(name)
        table, key = (ref.table, ref.key) if ref is not None else (None, "")
    if table == "communes" and key == "code":
        return f"{base}/communes/{quote(str(value), safe='')}?f=html&lang={lang}"
    if table is not None and key == "id" and isinstance(value, int):
        return f"{base}/collections/{table}/items/{value}?f=html&lang={lang}"
    return None


def _rows(
    layer: Layer | Records,
    features: list[dict[str, Any]],
    styles: Styles,
    lang: str,
    base: str,
) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns (labels) and each feature's id and shown values, in the registry's order."""
    fields = _fields(layer, styles, lang)
    names: list[str] = []
    for feature in features:
        for name in feature.get("properties") or {}:
            if name not in names:
                names.append(name)
    names.sort(key=lambda n: list(fields).index(n) if n in fields else len(fields))
    rows = []
    for feature in features:
        props = feature.get("properties") or {}
        rows.append(
            {
                "id": feature.get("id"),
                # (text, is a number: right-aligned, the page it names or None)
                "values": [
                    (
                        _shown(props.get(n), fields.get(n, (n, None))[1], styles, lang),
                        isinstance(props.get(n), (int, float))
                        and not isinstance(props.get(n), bool),
                        _href(layer, n, props.get(n), base, lang),
                    )
                    for n in names
                ],
            }
        )
    return [fields.get(n, (n, None))[0] for n in names], rows


def _links(doc: dict[str, Any], rel: str) -> str | None:
    return next((link["href"] for link in doc.get("links", []) if link.get("rel") == rel), None)


def _paged(base: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Where a page stands among the others (found from outside: past a "Siguiente" a page
    said "10 of 186", not which 10, and had no way back): by offset, the first and last it
    shows; by key (``after``, what the next links carry, which has no page before it), a
    link to the first page."""
    asked = parse_qs(urlsplit(path).query)
    offset = asked.get("offset", ["0"])[0]
    first = offset.isdigit() and int(offset) > 0 and doc.get("numberReturned")
    if "after" not in asked:
        return {"first_shown": int(offset) + 1 if first else None, "first_href": None}
    where, kept = _path_without(path, "after")
    return {"first_shown": None, "first_href": f"{base}{where}?{'&'.join(kept)}"}


def items(
    base: str, lang: str, layer: Layer | Records, doc: dict[str, Any], path: str, styles: Styles
) -> str:
    columns, rows = _rows(layer, doc["features"], styles, lang, base)
    return _render(
        "items.html",
        lang,
        base,
        path,
        layer={"name": layer.name, "title": layer.title.get(lang)},
        columns=columns,
        rows=rows,
        matched=doc.get("numberMatched"),
        returned=doc.get("numberReturned"),
        next_href=_links(doc, "next"),
        prev_href=_links(doc, "prev"),
        **_paged(base, path, doc),
        geojson=_script_json(doc),
        spatial=_spatial(layer),
        # found from outside: the public's list of homes (which it reads without their
        # places), or an empty list, drew an empty map of the whole country
        placed=any(f.get("geometry") is not None for f in doc["features"]),
        of=_listed_of(layer, path, base, lang),
        title=layer.title.get(lang),
    )


#: whose rights a list of rights shows, as its page says it
_OF = {
    "parcel": (Label("De la parcela", "Of parcel"), "parcels"),
    "party": (Label("Del sujeto de derecho", "Of party"), "parties"),
}


def _listed_of(layer: Layer | Records, path: str, base: str, lang: str) -> list[tuple[str, str]]:
    """Whose records a filtered list of rights shows, each with its page: found from
    outside, a parcel's 'its rights' led to a page titled for every right there is."""
    if layer.name != "rights":
        return []
    asked = parse_qs(urlsplit(path).query)
    return [
        (
            f"{words.get(lang)} {value}",
            f"{base}/collections/{table}/items/{value}?f=html&lang={lang}",
        )
        for name, (words, table) in _OF.items()
        for value in asked.get(name, [])[:1]
        if value.isdigit()
    ]


#: one feature of each collection, as a feature's page is titled ("Parcela EM-P016": it read
#: "Parcelas EM-P016")
ONE = {
    "states": Label("Estado", "State"),
    "communes": Label("Comuna", "Commune"),
    "parcels": Label("Parcela", "Parcel"),
    "production_units": Label("Unidad de producción", "Production unit"),
    "greenhouses": Label("Invernadero", "Greenhouse"),
    "dwellings": Label("Vivienda", "Dwelling"),
    "water_mains": Label("Tubería de agua", "Water main"),
    "power_lines": Label("Línea eléctrica", "Power line"),
    "paths": Label("Vía, vereda o escalera", "Road, footpath or stairway"),
    "facilities": Label("Servicio", "Facility"),
    "exchanges": Label("Intercambio", "Exchange"),
    "parties": Label("Sujeto de derecho", "Party"),
    "rights": Label("Derecho o restricción", "Right or restriction"),
}


def item(
    base: str,
    lang: str,
    layer: Layer | Records,
    feature: dict[str, Any],
    styles: Styles,
    history: list[dict[str, Any]] | None = None,
) -> str:
    """A feature's page; ``history``: a parcel's tenure changes, oldest first
    (features/audit.py tenure_history), shown as a table under its properties."""
    fields = _fields(layer, styles, lang)
    props = feature.get("properties") or {}
    # in the collection's order: a right's page read "Hasta" before "Desde", the database
    # having sorted its JSON keys
    names = [n for n in fields if n in props] + [n for n in props if n not in fields]
    shown = [
        (
            fields.get(n, (n, None))[0],
            _shown(props[n], fields.get(n, (n, None))[1], styles, lang),
            _href(layer, n, props[n], base, lang),
        )
        for n in names
    ]
    # a feature by its code where it has one ("Parcela EM-P016", not "Parcelas 60"); a
    # commune or a state by its name ("Comuna El Maizal")
    code = props.get("code")
    named = props.get("name") if layer.name in ("communes", "states") else None
    one = ONE.get(layer.name, layer.title).get(lang)
    title = f"{one} {named or code or feature.get('id')}"
    return _render(
        "item.html",
        lang,
        base,
        f"/collections/{layer.name}/items/{feature.get('id')}",
        layer={"name": layer.name, "title": layer.title.get(lang)},
        feature_id=feature.get("id"),
        properties=shown,
        geojson=_script_json(feature),
        spatial=_spatial(layer),
        # found from outside: a home's page drew an empty map of the whole country for the
        # public, who read it without its place
        placed=feature.get("geometry") is not None,
        title=title,
        sheet=layer.name == "parcels",  # its printable sheet, linked from its page
        commune=_commune_href(layer, feature),  # its map, report, package, parcels, states
        history=None if history is None else _history(history, lang),
        said=sheet_words(lang),
    )


def _commune_href(layer: Layer | Records, feature: dict[str, Any]) -> str | None:
    """A commune's own pages' path part (its map, report, package...), by its code as people
    name it (None: not a commune)."""
    if layer.name != "communes":
        return None
    code = (feature.get("properties") or {}).get("code")
    return quote(str(code or feature.get("id")), safe="")


def _history(
    history: list[dict[str, Any]], lang: str
) -> list[tuple[str, str, str, str, int | None]]:
    """A parcel's tenure changes as its sheet prints them: the day, the tenure before and
    after by their labels ("(inicial)" before the first, "(eliminada)" after a delete), why
    the tenure rule made it, and the note (empty when the reader may not read it); and the
    right the rule followed, which the page links."""
    w, written = sheet_words(lang), day(lang)
    return [
        (
            written(_day_or_moment(h["changed_at"])),
            value_label("tenure", h["from_status"], lang) or w["first"],
            value_label("tenure", h["to_status"], lang) or w["deleted"],
            why(h, lang),
            None if h.get("rule_event") == "deleted" else h.get("rule_right"),  # gone: no link
        )
        for h in history
    ]


def _day_or_moment(when: Any) -> Any:
    """A change recorded as a day (the sample's dated history, a survey's: midnight UTC)
    is written as the day, not "5 de marzo de 2009, 00:00 UTC" (found from outside)."""
    if isinstance(when, dt.datetime) and when.astimezone(dt.UTC).time() == dt.time(0):
        return when.astimezone(dt.UTC).date()
    return when


def _script_json(doc: dict[str, Any]) -> str:
    """A document for a <script type="application/json">: every "<" written as \\u003c (it
    can only be inside a JSON string), so that no value can close the element."""
    return json.dumps(doc, ensure_ascii=False).replace("<", "\\u003c")
