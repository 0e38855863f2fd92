"""The geo-comuna command line: serve, db, load-sample, import, export, backup, restore, users."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from geo_comuna.errors import GeoComunaError
from geo_comuna.settings import Settings

app = typer.Typer(
    help="geo_comuna: the GIS core for Venezuela's communes.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(
    help="The database: the embedded cluster and the schema.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
map_app = typer.Typer(
    help="Maps as one self-contained HTML file each (work offline).", no_args_is_help=True
)
app.add_typer(map_app, name="map")
users_app = typer.Typer(help="Accounts: tokens for editors and admins.", no_args_is_help=True)
app.add_typer(users_app, name="users")
dem_app = typer.Typer(
    help="Elevation models (DEMs) per commune, for terrain analyses and hillshades.",
    no_args_is_help=True,
)
app.add_typer(dem_app, name="dem")
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        _die(f"invalid settings: {exc}")


def _die(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _progress(message: str) -> None:
    typer.secho(f"  … {message}", err=True, fg=typer.colors.BLUE)


def _run(work: Callable[[Any], Awaitable[T]], settings: Settings) -> T:
    """Run ``work(conn)`` on one connection; typed errors become a message and exit 2."""
    from geo_comuna.db import migrate
    from geo_comuna.db.pool import connect

    async def main() -> T:
        conn = await connect(settings)
        try:
            await migrate.upgrade(conn)
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except GeoComunaError as exc:
        _die(exc.message, 2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    load_sample: Annotated[
        bool,
        typer.Option(
            "--load-sample", help="load the sample territories first if they are not there"
        ),
    ] = False,
) -> None:
    """Serve the API (OGC API - Features) and maps; starts the embedded database if needed."""
    import uvicorn

    from geo_comuna.api.app import create_app
    from geo_comuna.db.pool import resolve_conninfo

    settings = _settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    try:
        conninfo = resolve_conninfo(settings)
    except GeoComunaError as exc:
        _die(exc.message)
    if load_sample:
        _ensure_samples(settings)
    typer.secho(
        f"geo_comuna serving at http://{settings.host}:{settings.port}/ (API docs: /docs)",
        fg=typer.colors.GREEN,
    )
    uvicorn.run(
        create_app(settings, conninfo=conninfo),
        host=settings.host,
        port=settings.port,
        log_level="info",
    )


def _ensure_samples(settings: Settings) -> None:
    from geo_comuna.io.sample import load_samples

    async def work(conn: Any) -> dict[str, int] | None:
        cur = await conn.execute("SELECT count(*) FROM communes WHERE code = '5-DE-MARZO'")
        if (await cur.fetchone())[0]:
            return None
        return await load_samples(conn, settings, _progress)

    counts = _run(work, settings)
    if counts:
        typer.echo("loaded sample territories: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command("load-sample")
def load_sample() -> None:
    """Load Venezuela's states and the illustrative sample communes (replaces earlier ones)."""
    from geo_comuna.io.sample import load_samples

    settings = _settings()
    counts = _run(lambda conn: load_samples(conn, settings, _progress), settings)
    typer.echo(json.dumps(counts, indent=2))


@app.command("import")
def import_(
    layer: Annotated[str, typer.Argument(help="layer name, e.g. parcels")],
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="GeoJSON, GeoPackage, zipped Shapefile, KML, CSV",
        ),
    ],
    crs: Annotated[
        str | None,
        typer.Option(
            help="CRS of the data when the file does not say (or says wrong), e.g. EPSG:2202"
        ),
    ] = None,
    commune: Annotated[
        str | None, typer.Option(help="commune code or id for features without one")
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="make invalid geometries valid and report each change")
    ] = False,
) -> None:
    """Import a file into a layer: all features or none."""
    from geo_comuna.io.importer import import_file
    from geo_comuna.layers import get_layer

    settings = _settings()
    try:
        target = get_layer(layer)
    except GeoComunaError as exc:
        _die(exc.message, 2)
    report = _run(
        lambda conn: import_file(
            conn,
            target,
            file,
            settings,
            crs=crs,
            commune=commune,
            repair=repair,
            progress=_progress,
        ),
        settings,
    )
    typer.echo(json.dumps(report.__dict__, indent=2, default=str, ensure_ascii=False))


@app.command("export")
def export(
    layer: Annotated[str, typer.Argument(help="layer name, e.g. parcels")],
    file: Annotated[
        Path,
        typer.Argument(
            help="file to write (replaced if it exists), or a "
            "directory to write <layer><suffix> into"
        ),
    ],
    format_: Annotated[
        str | None,
        typer.Option(
            "--format", help="geojson, gpkg, shp (zipped), kml or csv; default: from FILE's suffix"
        ),
    ] = None,
    crs: Annotated[
        str,
        typer.Option(
            help="CRS to write, e.g. EPSG:2202 (REGVEN / UTM 19N); "
            "GeoJSON and KML are EPSG:4326 only"
        ),
    ] = "EPSG:4326",
    commune: Annotated[
        str | None, typer.Option(help="only this commune's features (code or id)")
    ] = None,
) -> None:
    """Export a layer to a file. A CSV holds no CRS: import it back with the same --crs."""
    from geo_comuna.errors import NotFound
    from geo_comuna.features.query import resolve_commune
    from geo_comuna.io.exporter import check_crs, export_layer, format_for
    from geo_comuna.layers import get_layer

    settings = _settings()
    try:
        target = get_layer(layer)
        fmt = format_for(file, format_)
        check_crs(fmt, crs)
    except GeoComunaError as exc:
        _die(exc.message, 2)

    async def work(conn: Any) -> Any:
        commune_id = None
        if commune is not None:
            commune_id = await resolve_commune(conn, commune)
            if commune_id is None:
                raise NotFound(f"no commune with id or code {commune!r}")
        _progress(f"exporting {layer} as {fmt.name} in {crs}")
        return await export_layer(conn, target, file, fmt, crs=crs, commune_id=commune_id)

    report = _run(work, settings)
    for note in report.notes:
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
    typer.echo(json.dumps(report.__dict__, indent=2, default=str, ensure_ascii=False))


@app.command()
def analyze(
    name: Annotated[str, typer.Argument(help="analysis, e.g. water-hookups; see --list")],
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="analysis parameter as key=value (repeatable)"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, geojson or csv")] = "json",
    out: Annotated[Path | None, typer.Option(help="write to this file, not stdout")] = None,
) -> None:
    """Run a planning analysis for a commune (parameters: GET /communes/X/analyses)."""
    from geo_comuna.analysis.registry import get_analysis
    from geo_comuna.api.analyses import parse_params
    from geo_comuna.features.query import resolve_commune

    settings = _settings()
    if fmt not in ("json", "geojson", "csv"):
        _die(f"unknown format {fmt!r}; use json, geojson or csv", 2)
    try:
        analysis = get_analysis(name)
        values = dict(p.split("=", 1) for p in param or [] if "=" in p)
        if len(values) != len(param or []):
            _die("parameters are key=value", 2)
        params = parse_params(analysis.params, values)
    except GeoComunaError as exc:
        _die(exc.message, 2)

    async def work(conn: Any) -> Any:
        commune_id = await resolve_commune(conn, commune)
        if commune_id is None:
            _die(f"no commune with id or code {commune!r}", 2)
        _progress(f"{name} for {commune}")
        return await analysis.run(conn, commune_id, params)

    result = _run(work, settings)
    if fmt == "csv":
        text = result.csv()
    elif fmt == "geojson":
        text = json.dumps(result.feature_collection(), default=str, ensure_ascii=False)
    else:
        text = json.dumps(
            {"summary": result.summary, "warnings": result.warnings},
            default=str,
            indent=2,
            ensure_ascii=False,
        )
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="a name people recognise")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin")] = "editor",
    commune: Annotated[
        list[str] | None, typer.Option(help="commune code an editor may change (repeatable)")
    ] = None,
) -> None:
    """Create a user and print its token once (only its hash is stored)."""
    from geo_comuna import accounts

    async def work(conn: Any) -> tuple[Any, str]:
        return await accounts.add_user(conn, name, role, commune or [])

    user, token = _run(work, _settings())
    typer.echo(f"user {user.name} ({user.role}) created. Its token, shown only now:")
    typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """Users, roles, communes; revoked ones too."""
    from geo_comuna import accounts

    rows = _run(accounts.list_users, _settings())
    typer.echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="the user's name")]) -> None:
    """Revoke a user's token at once."""
    from geo_comuna import accounts

    _run(lambda conn: accounts.revoke(conn, name), _settings())
    typer.echo(f"revoked {name}")


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="archive to write (replaced once complete)")],
) -> None:
    """Back up the whole database to FILE (pg_dump custom format): every layer, the parcel
    history, the audit trail, users. Safe while `serve` runs."""
    from geo_comuna.db import backup as backups
    from geo_comuna.db.pool import resolve_conninfo

    settings = _settings()
    try:
        report = backups.backup(settings, resolve_conninfo(settings), file)
    except GeoComunaError as exc:
        _die(exc.message, 2)
    typer.echo(json.dumps(report.__dict__, indent=2))


@app.command()
def restore(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="archive made by `geo-comuna backup`"
        ),
    ],
) -> None:
    """Replace the database's contents with FILE's, in one transaction: all or nothing.
    Restart `serve` afterwards."""
    from geo_comuna.db import backup as backups
    from geo_comuna.db import migrate
    from geo_comuna.db.pool import resolve_conninfo

    settings = _settings()
    try:
        report = backups.restore(settings, resolve_conninfo(settings), file)
    except GeoComunaError as exc:
        _die(exc.message, 2)
    _run(migrate.current_version, settings)  # an older archive is migrated forward
    typer.echo(json.dumps(report.__dict__, indent=2))


@db_app.command("start")
def db_start() -> None:
    """Create (first time) and start the embedded PostgreSQL + PostGIS cluster."""
    from geo_comuna.db import cluster

    settings = _settings()
    if settings.database_url:
        _die("GEO_COMUNA_DATABASE_URL is set: the embedded cluster is not used")
    try:
        found = cluster.ensure_running(settings)
    except GeoComunaError as exc:
        _die(exc.message)
    typer.echo(f"running: {found.conninfo()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    from geo_comuna.db import cluster

    try:
        was = cluster.shutdown(_settings())
    except GeoComunaError as exc:
        _die(exc.message)
    typer.echo("stopped" if was else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Where the embedded cluster lives and whether it runs (exit 3 when stopped)."""
    from geo_comuna.db import cluster

    settings = _settings()
    if settings.database_url:
        typer.echo("using the server at GEO_COMUNA_DATABASE_URL")
        return
    try:
        info = cluster.status(settings)
    except GeoComunaError as exc:
        _die(exc.message)
    typer.echo(json.dumps(info, indent=2))
    if not info["running"]:
        raise typer.Exit(3)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations."""
    from geo_comuna.db import migrate

    async def work(conn: Any) -> int | None:
        return await migrate.current_version(conn)

    version = _run(work, _settings())
    typer.echo(f"schema at version {version}")


def _write_map(build: Callable[[Any], Awaitable[str]], out: Path) -> None:
    html = _run(build, _settings())
    out.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {out} ({len(html.encode()) / 1e6:.2f} MB)")


def _map_page(lang: str) -> Any:
    from geo_comuna.maps.page import Page

    if lang not in ("es", "en"):
        _die(f"unknown language {lang!r}; use es or en", 2)
    return Page(lang=lang, standalone=True, tile_threshold=_settings().map_tile_threshold)


MapOut = Annotated[Path, typer.Option("--out", help="HTML file to write (replaced)")]
MapLang = Annotated[str, typer.Option("--lang", help="es or en")]


@map_app.command("commune")
def map_commune(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    out: MapOut,
    lang: MapLang = "es",
    analysis: Annotated[
        str | None, typer.Option(help="an analysis map instead, e.g. water-hookups")
    ] = None,
) -> None:
    """A commune's map (or one analysis' map) as one self-contained HTML file."""
    from geo_comuna.errors import NotFound
    from geo_comuna.features.query import resolve_commune
    from geo_comuna.maps.analysis_map import analysis_map
    from geo_comuna.maps.commune import commune_map

    page = _map_page(lang)

    async def build(conn: Any) -> str:
        commune_id = await resolve_commune(conn, commune)
        if commune_id is None:
            raise NotFound(f"no commune with id or code {commune!r}")
        _progress(f"drawing {commune}" + (f" / {analysis}" if analysis else ""))
        if analysis:
            return await analysis_map(conn, commune_id, analysis, page)
        return await commune_map(conn, commune_id, page)

    _write_map(build, out)


@map_app.command("analysis")
def map_analysis(
    name: Annotated[str, typer.Argument(help="analysis, e.g. water-hookups")],
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    out: MapOut,
    lang: MapLang = "es",
) -> None:
    """One analysis' map of a commune as one self-contained HTML file."""
    map_commune(commune, out, lang, name)


@map_app.command("national")
def map_national(out: MapOut, lang: MapLang = "es") -> None:
    """The national map (communes by state and status, exchanges) as one HTML file."""
    from geo_comuna.maps.national import national_map

    page = _map_page(lang)
    _write_map(lambda conn: national_map(conn, page), out)


@dem_app.command("add")
def dem_add(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    file: Annotated[
        Path, typer.Argument(help="single-band GeoTIFF in any CRS, elevations in metres")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help="name to keep it under (default: the file "
            "name without suffix); replaces a DEM of that "
            "name"
        ),
    ] = None,
) -> None:
    """Store a DEM for a commune (in the database: backups hold it)."""
    from geo_comuna.accounts import local_admin, writing
    from geo_comuna.analysis import dem
    from geo_comuna.features.query import resolve_commune

    settings = _settings()
    if not file.is_file():
        _die(f"{file}: no such file", 2)

    async def work(conn: Any) -> list[dict]:
        commune_id = await resolve_commune(conn, commune)
        if commune_id is None:
            _die(f"no commune with id or code {commune!r}", 2)
        async with writing(conn, local_admin(), row_security=False):
            added = await dem.register(conn, commune_id, file, name)
        return [d for d in await dem.listing(conn, commune_id) if d["id"] == added.id]

    typer.echo(json.dumps(_run(work, settings)[0], indent=2, default=str))


@dem_app.command("list")
def dem_list(
    commune: Annotated[str | None, typer.Argument(help="commune code or id (default: all)")] = None,
) -> None:
    """The DEMs stored (name, CRS, cell size in m, lon/lat bounds), finest first."""
    from geo_comuna.analysis import dem
    from geo_comuna.features.query import resolve_commune

    async def work(conn: Any) -> list[dict]:
        commune_id = None
        if commune is not None:
            commune_id = await resolve_commune(conn, commune)
            if commune_id is None:
                _die(f"no commune with id or code {commune!r}", 2)
        return await dem.listing(conn, commune_id)

    typer.echo(json.dumps(_run(work, _settings()), indent=2, default=str))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
