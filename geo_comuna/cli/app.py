"""The main commands: serve, load-sample, import, export, analyze, backup, restore."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geo_comuna.cli.common import (
    HeldInterrupts,
    Lang,
    cli_lang,
    die,
    language,
    load_settings,
    new_command,
    progress,
    run,
    tell,
    unseen,
)
from geo_comuna.errors import GeoComunaError, Said, said
from geo_comuna.settings import Settings

if TYPE_CHECKING:
    from geo_comuna.io.importer import ImportReport

app = typer.Typer(
    help="geo_comuna: the GIS core for Venezuela's communes.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="say which database the command uses (on stderr) first"
        ),
    ] = False,
    lang: Lang = None,
) -> None:
    """geo_comuna: the GIS core for Venezuela's communes. Options for every command."""
    new_command()
    if lang is not None:  # `geo-comuna --lang en import ...`: new_command forgot it
        cli_lang(lang)
    if verbose:
        from geo_comuna.cli.db import which_database

        where = which_database(load_settings())
        spoken = language()
        typer.secho(
            f"{'base de datos' if spoken == 'es' else 'database'}: {said(where, spoken)}", err=True
        )


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
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="processes answering requests (default: one per CPU)"),
    ] = None,
    lang: Lang = None,
) -> None:
    """Serve the API (OGC API - Features) and maps; starts the embedded database if needed.
    Started as root, it binds the port and then runs as GEO_COMUNA_RUN_AS (default
    GEO_COMUNA_PG_OS_USER), or refuses to start.

    With several workers each process has its own connection pool and caches; the caches are
    keyed by the layers' versions read from the database, so a write through one worker is
    seen by all at once (GEO_COMUNA_TILE_CACHE_DIR shares the tiles between them)."""
    import functools

    import uvicorn

    from geo_comuna.api.app import create_app, shared_by_workers
    from geo_comuna.api.http_head import HeadLimited
    from geo_comuna.cli import privileges
    from geo_comuna.db.pool import resolve_conninfo

    workers = workers or cpu_count()
    settings = load_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    try:
        conninfo = resolve_conninfo(settings)
        user = privileges.server_user(settings, conninfo)
    except GeoComunaError as exc:
        die(exc)
    if load_sample:
        _ensure_samples(settings)
    if workers > 1:
        _check_connections(settings, conninfo, workers)
    config = uvicorn.Config(
        # each worker process builds its own app (a spawned process gets this by pickle)
        functools.partial(create_app, settings, conninfo=conninfo),
        factory=True,
        workers=workers,
        # a worker answers the parent's health checks once it has imported the app, which
        # takes seconds on a busy machine: not a hung worker to kill and restart
        timeout_worker_healthcheck=60,
        host=settings.host,
        port=settings.port,
        log_level="info",
        http=HeadLimited,  # a request's headers bounded (api/http_head.py)
        # X-Forwarded-For only from the proxies named: it is who a client is (rate limits)
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )
    sock = config.bind_socket()  # as root still: a port below 1024 is allowed
    if user is not None:
        privileges.become(user)
    elif os.geteuid() == 0:
        tell(
            Said(
                "warning: answering requests as root, as GEO_COMUNA_RUN_AS=root says",
                "aviso: atiende las peticiones como root, porque así lo dice "
                "GEO_COMUNA_RUN_AS=root",
            ),
            err=True,
            fg=typer.colors.YELLOW,
        )
    url = f"http://{settings.host}:{settings.port}/"
    who = user.pw_name if user is not None else None
    tell(
        Said(
            f"geo_comuna serving at {url} (pages for people: /, API docs: /docs)"
            + (f", as user {who}" if who else "")
            + (f", {workers} workers" if workers > 1 else ""),
            f"geo_comuna sirviendo en {url} (páginas: /, documentación de la API: /docs)"
            + (f", como usuario {who}" if who else "")
            + (f", {workers} procesos" if workers > 1 else ""),
        ),
        fg=typer.colors.GREEN,
    )
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    shared = shared_by_workers()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shared.close()  # the packages the workers kept


def cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_connections(settings: Settings, conninfo: str, workers: int) -> None:
    """Each worker opens a pool of up to pool_max_size connections, on the primary and on
    each standby: warn when they would not fit in the server's max_connections."""
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_setting('max_connections')::int "
                "- current_setting('superuser_reserved_connections')::int"
            ).fetchone()
    except psycopg.Error:
        return  # the workers will say what is wrong, each at its start
    wanted = workers * settings.pool_max_size
    if wanted > row[0]:
        typer.secho(
            f"warning: {workers} workers x GEO_COMUNA_POOL_MAX_SIZE={settings.pool_max_size} "
            f"may open {wanted} connections; the server allows {row[0]}: lower one of them "
            "or raise max_connections",
            err=True,
            fg=typer.colors.YELLOW,
        )


def _ensure_samples(settings: Settings) -> None:
    from geo_comuna.io.sample import load_samples, loaded

    async def work(conn: Any) -> dict[str, int] | None:
        if await loaded(conn):
            return None
        return await load_samples(conn, settings, progress)

    counts = run(work, settings)
    if counts:
        tell(
            Said(
                f"loaded sample territories: {_counted(counts, 'en')}",
                f"territorios de muestra cargados: {_counted(counts, 'es')}",
            )
        )


def _counted(counts: dict[str, int], lang: str) -> str:
    """Layers and their counts as people read them: 'Estados 25, Viviendas 1.895'."""
    from geo_comuna.layers import LAYERS
    from geo_comuna.layers.tenure import COLLECTIONS
    from geo_comuna.maps.templating import number

    others = {  # what the sample holds besides layers and land records
        "parcel_history": {"es": "historial de tenencia", "en": "tenure history"},
        "dems": {"es": "modelos de elevación", "en": "elevation models"},
    }

    def title(name: str) -> str:
        if name in LAYERS:
            return LAYERS[name].title.get(lang)
        if name in COLLECTIONS:
            return COLLECTIONS[name][0].get(lang)
        return others.get(name, {}).get(lang, name)

    written = number(lang)
    return ", ".join(f"{title(k)} {written(n)}" for k, n in counts.items())


@app.command("load-sample")
def load_sample(lang: Lang = None) -> None:
    """Load Venezuela's states and the illustrative sample communes (replaces earlier ones)."""
    from geo_comuna.io.sample import load_samples

    settings = load_settings()
    counts = run(lambda conn: load_samples(conn, settings, progress), settings)
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
    upsert: Annotated[
        bool,
        typer.Option(
            "--upsert",
            help="update the stored feature of the same natural key (a parcel's code in its "
            "commune) instead of refusing the import; unchanged features are left as they are",
        ),
    ] = False,
    allow_copies: Annotated[
        bool,
        typer.Option(
            "--allow-copies",
            help="add features the layer holds already instead of refusing the import: into a "
            "layer without a natural key, the same in every field and shape; into one with a "
            "key, without their key in the shape of a stored feature",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="make the whole import, with every check, then undo it: the report says what "
            "it would write (insert, update, leave unchanged)",
        ),
    ] = False,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--rename", help="COLUMN=PROPERTY: the file's column holding a property (repeatable)"
        ),
    ] = None,
    value_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="PROPERTY:VALUE=CODE: a value of the file meaning a code or label (repeatable)",
        ),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="es or en: the language of the messages (default: the locale's, else es)",
        ),
    ] = None,
    note: Annotated[
        str | None,
        typer.Option(
            "--note",
            help="why the change is made: the parcels' tenure history and the audit record it",
        ),
    ] = None,
) -> None:
    """Import a file into a layer: all features or none. A feature whose natural key is
    already stored is refused, or with --upsert updates the stored one. Coded values may be
    given by code or by their Spanish or English label."""
    # pyogrio imports pandas and geopandas whenever they are installed (for its GeoDataFrame
    # functions), and pyarrow looks for pandas when it first converts a Python list: an import
    # keeps Arrow data from GDAL to COPY and uses neither, so they stay unloaded, ~0.2 s of the
    # command's start-up (bench/README.md)
    with unseen("pandas", "geopandas"):
        report = _import(
            layer, file, crs, commune, repair, upsert, rename or [], value_map or [], lang,
            allow_copies, dry_run, note,
        )  # fmt: skip
    from geo_comuna.io.importer import done_line

    tell(done_line(report), err=True)  # for people; the report on stdout, for programs
    typer.echo(json.dumps(report.__dict__, indent=2, default=str, ensure_ascii=False))


def _import(
    layer: str,
    file: Path,
    crs: str | None,
    commune: str | None,
    repair: bool,
    upsert: bool,
    rename: list[str],
    value_map: list[str],
    lang: str | None,
    allow_copies: bool = False,
    dry_run: bool = False,
    note: str | None = None,
) -> ImportReport:
    from geo_comuna.io import reading
    from geo_comuna.io.importer import Mapping
    from geo_comuna.layers import get_layer

    lang = cli_lang(lang)
    settings = load_settings()
    try:
        target = get_layer(layer)
        mapping = Mapping.parse(target, rename, value_map)
    except GeoComunaError as exc:
        die(exc, 2)
    # GDAL reads the file while the importer's modules load and the database connects
    pending = reading.start(file, target, settings)
    from geo_comuna.io.importer import import_file

    return run(
        lambda conn: import_file(
            conn,
            target,
            file,
            settings,
            crs=crs,
            commune=commune,
            repair=repair,
            progress=progress,
            reading=pending,
            mode="upsert" if upsert else "insert",
            mapping=mapping,
            lang=lang,
            allow_copies=allow_copies,
            dry_run=dry_run,
            note=note,
        ),
        settings,
    )


@contextlib.contextmanager
def _all_or_none(file: Path, targets: list[Any], fmt: Any, overwrite_layer: bool) -> Iterator[Path]:
    """Where export writes: ``file``, or for several layers into one GeoPackage a copy beside
    it, moved in place once every layer is in (layer by layer, a refusal at the third layer
    or a Ctrl-C left the file holding the first ones). A layer the file holds already, or a
    file that is no GeoPackage, is refused before any layer is written."""
    from geo_comuna.io.exporter import existing_geopackage

    if len(targets) < 2 or fmt.name != "gpkg" or file.is_dir():
        yield file
        return
    into = file.with_name(f".{file.stem}.{os.getpid()}.partial.gpkg")
    if file.exists():
        try:
            for target in targets:
                existing_geopackage(file, target, overwrite_layer)
        except GeoComunaError as exc:
            die(exc, 2)
        shutil.copyfile(file, into)  # the layers it holds stay, as one layer's export keeps them
    try:
        yield into
        os.replace(into, file)
    finally:
        into.unlink(missing_ok=True)


@app.command("export")
def export(
    layer: Annotated[
        str,
        typer.Argument(
            help="layer name (e.g. parcels), several separated by commas, or 'all' (every "
            "layer; with --commune, everything of that commune)"
        ),
    ],
    file: Annotated[
        Path,
        typer.Argument(
            help="file to write (replaced if it exists; a GeoPackage gets the layers added), "
            "or a directory to write <layer><suffix> into"
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
    overwrite_layer: Annotated[
        bool,
        typer.Option(
            "--overwrite-layer",
            help="replace a layer the GeoPackage already holds (its other layers stay)",
        ),
    ] = False,
    lang: Lang = None,
) -> None:
    """Export layers to a file. A CSV holds no CRS: import it back with the same --crs.
    Several layers go into one GeoPackage, or one file each into a directory."""
    from geo_comuna.accounts import EVERYWHERE
    from geo_comuna.features.query import require_commune
    from geo_comuna.io.exporter import check_crs, export_layer, format_for
    from geo_comuna.layers import LAYERS, get_layer
    from geo_comuna.maps.templating import number

    settings = load_settings()
    try:
        names = list(LAYERS) if layer == "all" else [n.strip() for n in layer.split(",")]
        targets = [get_layer(name) for name in names]
        fmt = format_for(file, format_)
        check_crs(fmt, crs)
    except GeoComunaError as exc:
        die(exc, 2)
    if len(targets) > 1 and fmt.name != "gpkg" and not file.is_dir():
        die(
            Said(
                f"{len(targets)} layers go into one GeoPackage (.gpkg) or a directory, not {file}",
                f"{len(targets)} capas van en un GeoPackage (.gpkg) o en una carpeta, no en {file}",
            ),
            2,
        )

    async def work(conn: Any) -> Any:
        commune_id = None
        if commune is not None:
            commune_id = await require_commune(conn, commune)
        reports = []
        for n, target in enumerate(targets, 1):
            progress(
                Said(
                    f"exporting {target.name} as {fmt.name} in {crs} ({n}/{len(targets)})",
                    f"exportando {target.name} como {fmt.name} en {crs} ({n}/{len(targets)})",
                )
            )
            # whoever runs the CLI holds the database: the file holds everything
            reports.append(
                await export_layer(
                    conn,
                    target,
                    into,
                    fmt,
                    crs=crs,
                    commune_id=commune_id,
                    access=EVERYWHERE,
                    overwrite_layer=overwrite_layer,
                )
            )
        return reports

    with _all_or_none(file, targets, fmt, overwrite_layer) as into:
        reports = run(work, settings)
    for report in reports:
        report.file = str(file) if into != file else report.file
        for note in report.notes:
            tell(
                Said(f"note: {note}", f"nota: {said(note, 'es')}"), err=True, fg=typer.colors.YELLOW
            )
        n = report.features
        tell(  # for people; the JSON on stdout is for programs
            Said(
                f"{report.layer}: {number('en')(n)} feature{'s' if n != 1 else ''} written to "
                f"{report.file}",
                f"{report.layer}: {number('es')(n)} entidad{'es' if n != 1 else ''} escrita"
                f"{'s' if n != 1 else ''} en {report.file}",
            ),
            err=True,
        )
    written = [r.__dict__ for r in reports]
    out = written[0] if len(written) == 1 else written
    typer.echo(json.dumps(out, indent=2, default=str, ensure_ascii=False))


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="archive to write (replaced once complete)")],
    lang: Lang = None,
) -> None:
    """Back up the whole database to FILE (pg_dump custom format): every layer, the parcel
    history, the audit trail, users. Safe while `serve` runs."""
    from geo_comuna.db import backup as backups
    from geo_comuna.db.pool import resolve_conninfo

    settings = load_settings()
    try:
        report = backups.backup(settings, resolve_conninfo(settings), file)
    except GeoComunaError as exc:
        die(exc, 2)
    typer.echo(json.dumps(report.__dict__, indent=2))


@app.command()
def restore(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="archive made by `geo-comuna backup`"
        ),
    ],
    lang: Lang = None,
) -> None:
    """Replace the database's contents with FILE's, in one transaction: all or nothing.
    Tokens revoked since the backup stay revoked; a running `serve` sees the restored data
    at once."""
    from geo_comuna.db import backup as backups
    from geo_comuna.db import migrate
    from geo_comuna.db.pool import resolve_conninfo

    settings = load_settings()
    file = file.resolve()  # pg_restore runs elsewhere (as postgres, from its own folder)
    interrupts = HeldInterrupts()
    with interrupts.installed():
        try:
            report = backups.restore(
                settings, resolve_conninfo(settings), file, on_commit=interrupts.hold
            )
        except GeoComunaError as exc:
            die(exc, 2)
        except KeyboardInterrupt:
            die(
                Said(
                    "interrupted before the restore was committed: nothing was restored",
                    "interrumpido antes de confirmar la restauración: no se restauró nada",
                ),
                130,
            )
        run(migrate.current_version, settings)  # an older archive is migrated forward
        notes = {
            "revocations_kept": Said(
                "tokens revoked since the backup stay revoked",
                "los tokens revocados desde el respaldo siguen revocados",
            ),
            "rotations_kept": Said(
                "tokens rotated since the backup: the new one stays, the old revoked",
                "tokens renovados desde el respaldo: queda el nuevo, el viejo revocado",
            ),
            "users_not_in_backup": Said(
                "users made since the backup are gone, and so are their tokens",
                "los usuarios creados desde el respaldo ya no existen, ni sus tokens",
            ),
        }
        for key, note in notes.items():
            if getattr(report, key):
                names = ", ".join(getattr(report, key))
                tell(
                    Said(f"note: {note}: {names}", f"nota: {note.es}: {names}"),
                    err=True,
                    fg=typer.colors.YELLOW,
                )
        typer.echo(json.dumps(report.__dict__, indent=2, ensure_ascii=False))
        if interrupts.held:  # Ctrl-C after the COMMIT was sent: the restore was finished first
            tell(
                Said(
                    f"interrupted after the restore was committed: {file.name} is restored",
                    f"interrumpido después de confirmar la restauración: {file.name} quedó "
                    "restaurado",
                ),
                err=True,
                fg=typer.colors.YELLOW,
            )
            raise typer.Exit(130)
