"""`geo-comuna db`: the embedded cluster and the schema."""

from __future__ import annotations

import json
from typing import Any

import typer

from geo_comuna.cli.common import Lang, die, group_lang, language, load_settings, run, tell
from geo_comuna.errors import GeoComunaError, Said, said
from geo_comuna.settings import Settings

db_app = typer.Typer(
    help="The database: the embedded cluster and the schema.",
    no_args_is_help=True,
    callback=group_lang,
)

#: what --verbose and `db status` show of GEO_COMUNA_DATABASE_URL: never its password
_SHOWN = ("host", "hostaddr", "port", "dbname", "user")


def which_database(settings: Settings) -> Said:
    """The database every command run with these settings connects to, in words."""
    if settings.database_url:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(settings.database_url)
        except ProgrammingError:
            die(
                Said(
                    "GEO_COMUNA_DATABASE_URL is not a libpq connection string or URL",
                    "GEO_COMUNA_DATABASE_URL no es una cadena de conexión libpq ni una URL",
                )
            )
        named = ", ".join(f"{k} {parts[k]}" for k in _SHOWN if parts.get(k))
        return Said(
            f"the server at GEO_COMUNA_DATABASE_URL ({named})",
            f"el servidor de GEO_COMUNA_DATABASE_URL ({named})",
        )
    from geo_comuna.db import cluster

    return cluster.describe(settings)


@db_app.command("start")
def db_start(lang: Lang = None) -> None:
    """Create (first time) and start the embedded PostgreSQL + PostGIS cluster."""
    from geo_comuna.db import cluster

    settings = load_settings()
    if settings.database_url:
        die(
            Said(
                "GEO_COMUNA_DATABASE_URL is set: the embedded cluster is not used",
                "GEO_COMUNA_DATABASE_URL está definida: no se usa el clúster integrado",
            )
        )
    try:
        was = cluster.status(settings)["running"]
        found = cluster.ensure_running(settings)
    except GeoComunaError as exc:
        die(exc)
    if was:
        tell(
            Said(f"already running: {found.conninfo()}", f"ya estaba en marcha: {found.conninfo()}")
        )
    else:
        tell(Said(f"started: {found.conninfo()}", f"en marcha: {found.conninfo()}"))


@db_app.command("stop")
def db_stop(lang: Lang = None) -> None:
    """Stop the embedded cluster."""
    from geo_comuna.db import cluster

    settings = load_settings()
    try:
        made = cluster.status(settings)["initialised"]  # status creates nothing (locate would)
        was = made and cluster.shutdown(settings)
    except GeoComunaError as exc:
        die(exc)
    if not made:
        where = settings.data_dir.resolve()
        tell(
            Said(
                f"no database here: {where} holds no cluster (check GEO_COMUNA_DATA_DIR)",
                f"no hay base de datos aquí: {where} no contiene ningún clúster (revise "
                "GEO_COMUNA_DATA_DIR)",
            )
        )
        return
    tell(Said("stopped", "detenido") if was else Said("was not running", "no estaba en marcha"))


@db_app.command("status")
def db_status(lang: Lang = None) -> None:
    """Where the embedded cluster lives and whether it runs (exit 3 when stopped)."""
    from geo_comuna.db import cluster

    settings = load_settings()
    if settings.database_url:
        where = which_database(settings)
        tell(Said(f"using {where}", f"se usa {where.es}"))
        return
    try:
        info = cluster.status(settings)
    except GeoComunaError as exc:
        die(exc)
    # the keys are for programs; the prose among the values for the person who asked
    shown = {k: said(v, language()) if isinstance(v, str) else v for k, v in info.items()}
    typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    if not info["running"]:
        raise typer.Exit(3)


@db_app.command("upgrade")
def db_upgrade(lang: Lang = None) -> None:
    """Apply pending schema migrations."""
    from geo_comuna.db import migrate

    async def work(conn: Any) -> tuple[int | None, list[str]]:
        # run() has migrated on this very connection: what it applied came after it opened
        cur = await conn.execute(
            "SELECT lpad(version::text, 4, '0') || '_' || name FROM schema_migrations "
            "WHERE applied_at >= (SELECT backend_start FROM pg_stat_activity "
            "WHERE pid = pg_backend_pid()) ORDER BY version"
        )
        return await migrate.current_version(conn), [row[0] for row in await cur.fetchall()]

    version, applied = run(work, load_settings())
    if not applied:
        tell(
            Said(
                f"nothing to apply: schema at version {version}",
                f"nada que aplicar: esquema en la versión {version}",
            )
        )
        return
    names = ", ".join(applied) if len(applied) <= 3 else f"{applied[0]} … {applied[-1]}"
    tell(
        Said(
            f"applied {len(applied)} migration(s) ({names}): schema at version {version}",
            f"se aplicaron {len(applied)} migraciones ({names}): esquema en la versión {version}",
        )
    )
