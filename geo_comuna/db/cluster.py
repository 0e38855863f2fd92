"""The embedded PostgreSQL + PostGIS cluster: created on first use in the data directory
(``settings.data_dir``: GEO_COMUNA_DATA_DIR, the one recorded at setup, or the per-user default;
never the working directory, so every command reaches the same database wherever it is run).

It listens on a unix socket only (no TCP), with trust authentication restricted by the socket's
0700 permissions to the cluster's owner (and root). PostgreSQL refuses to run as root, so when we
are root the server runs as an unprivileged OS user (``settings.pg_os_user``, default
``postgres``); if that user cannot traverse to the data directory (a clone under /root, say) the
cluster lives under /var/lib/geo_comuna/<hash> instead and the data directory records where.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from geo_comuna.errors import ClusterError, Said, said
from geo_comuna.settings import Settings

SUPERUSER = "geo_comuna"
PORT = 5432  # only names the socket file; nothing listens on TCP
INSTALL_HINT = Said(
    "PostgreSQL with PostGIS was not found. On Debian/Ubuntu run `bash scripts/setup.sh` "
    "(or `sudo apt-get install postgresql postgresql-15-postgis-3`, matching your PostgreSQL "
    "version); elsewhere install PostgreSQL >= 13 and PostGIS 3 and set GEO_COMUNA_PG_BINDIR "
    "to the directory holding initdb and pg_ctl, or point GEO_COMUNA_DATABASE_URL at a server.",
    "No se encontró PostgreSQL con PostGIS. En Debian/Ubuntu ejecute `bash scripts/setup.sh` "
    "(o `sudo apt-get install postgresql postgresql-15-postgis-3`, según su versión de "
    "PostgreSQL); en otros sistemas instale PostgreSQL >= 13 y PostGIS 3 y ponga en "
    "GEO_COMUNA_PG_BINDIR el directorio que contiene initdb y pg_ctl, o haga que "
    "GEO_COMUNA_DATABASE_URL apunte a un servidor.",
)


@dataclass(frozen=True)
class Cluster:
    root: Path  # holds data/, run/ and postgres.log
    bindir: Path
    os_user: str | None  # None: run as ourselves
    database: str

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def conninfo(self, database: str | None = None) -> str:
        return _conninfo(self.socket_dir, database or self.database)


def _conninfo(socket_dir: Path, database: str) -> str:
    return f"host={socket_dir} port={PORT} user={SUPERUSER} dbname={database}"


def find_bindir(settings: Settings) -> Path:
    """The newest PostgreSQL whose share directory has the PostGIS extension."""
    if settings.pg_bindir:
        if not (settings.pg_bindir / "pg_ctl").exists():
            raise ClusterError(
                Said(
                    f"no pg_ctl in GEO_COMUNA_PG_BINDIR={settings.pg_bindir}",
                    f"no hay pg_ctl en GEO_COMUNA_PG_BINDIR={settings.pg_bindir}",
                )
            )
        return settings.pg_bindir
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        version = bindir.parent.name
        if (bindir / "pg_ctl").exists() and Path(
            f"/usr/share/postgresql/{version}/extension/postgis.control"
        ).exists():
            return bindir
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        share = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True)
        bindir = Path(out.stdout.strip())
        if (bindir / "pg_ctl").exists() and Path(
            share.stdout.strip(), "extension", "postgis.control"
        ).exists():
            return bindir
    raise ClusterError(INSTALL_HINT)


def _as_user(os_user: str | None, cmd: list[str]) -> list[str]:
    return cmd if os_user is None else ["runuser", "-u", os_user, "--", *cmd]


def _user_can_reach(os_user: str, path: Path) -> bool:
    probe = subprocess.run(_as_user(os_user, ["test", "-x", str(path)]), capture_output=True)
    return probe.returncode == 0


def locate(settings: Settings) -> Cluster:
    """Where the cluster of ``settings.data_dir`` lives; makes its directories, not the cluster."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    bindir = find_bindir(settings)
    if os.geteuid() != 0:
        return Cluster(data_dir / "pg", bindir, None, settings.database_name)
    try:
        pw = pwd.getpwnam(settings.pg_os_user)
    except KeyError:
        raise ClusterError(
            Said(
                f"running as root needs an unprivileged OS user for PostgreSQL; "
                f"user {settings.pg_os_user!r} does not exist (set GEO_COMUNA_PG_OS_USER)",
                "para ejecutarse como root hace falta un usuario del sistema sin privilegios "
                f"para PostgreSQL; el usuario {settings.pg_os_user!r} no existe (configure "
                "GEO_COMUNA_PG_OS_USER)",
            )
        ) from None
    pointer = data_dir / "cluster_location"
    if pointer.exists():
        root = Path(pointer.read_text().strip())
    elif _user_can_reach(settings.pg_os_user, data_dir):
        root = data_dir / "pg"
    else:
        digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
        root = Path("/var/lib/geo_comuna") / digest
        pointer.write_text(f"{root}\n")
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, pw.pw_uid, pw.pw_gid)
    os.chmod(root, 0o700)
    return Cluster(root, bindir, settings.pg_os_user, settings.database_name)


def likely_conninfo(settings: Settings) -> str:
    """Where the cluster of ``settings.data_dir`` listens if it was set up before: what
    locate() finds then, worked out without making, probing or changing anything (locate()
    runs a process as the PostgreSQL user to test the path). For a first connection attempt
    that falls back to ensure_running."""
    return _conninfo(_likely_root(settings) / "run", settings.database_name)


def _likely_root(settings: Settings) -> Path:
    data_dir = settings.data_dir.resolve()
    pointer = data_dir / "cluster_location"
    if os.geteuid() == 0 and pointer.exists():
        return Path(pointer.read_text().strip())
    return data_dir / "pg"


def describe(settings: Settings) -> Said:
    """Which embedded database ``settings`` name, in words (for --verbose): the data directory,
    why that one, and the socket; worked out like likely_conninfo, changing nothing."""
    data_dir = settings.data_dir.resolve()
    root = _likely_root(settings)
    made = (root / "data" / "PG_VERSION").exists()
    where = f"socket {root / 'run'}" if made else "not created yet: made on first use"
    donde = f"socket {root / 'run'}" if made else "aún no creado: se crea al usarlo por primera vez"
    origin = settings.data_dir_from
    return Said(
        f"{settings.database_name} in the embedded cluster of {data_dir} "
        f"(data directory from: {origin}; {where})",
        f"{settings.database_name} en el clúster integrado de {data_dir} "
        f"(directorio de datos: {said(origin, 'es')}; {donde})",
    )


def _placement(settings: Settings, cluster: Cluster) -> Said:
    """Why the cluster lives where it does, for `db status`."""
    data_dir = settings.data_dir.resolve()
    if cluster.os_user is None:
        return Said("in the data directory", "en el directorio de datos")
    who = f"{cluster.os_user} (who runs PostgreSQL for root)"
    quien = f"{cluster.os_user} (quien ejecuta PostgreSQL en lugar de root)"
    if cluster.root == data_dir / "pg":
        return Said(
            f"in the data directory, which {who} reaches",
            f"en el directorio de datos, al que llega {quien}",
        )
    return Said(
        f"outside the data directory, which {who} could not reach when the cluster was "
        f"made; {data_dir / 'cluster_location'} records where",
        f"fuera del directorio de datos, al que {quien} no llegaba cuando se creó el "
        f"clúster; {data_dir / 'cluster_location'} registra dónde",
    )


def _run(cluster: Cluster, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """``what``: the step, in English, and in Spanish after "no se pudo" (a Said)."""
    proc = subprocess.run(_as_user(cluster.os_user, args), capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ClusterError(
            Said(
                f"{what} failed (exit {proc.returncode}):\n{tail}",
                f"no se pudo {said(what, 'es')} (código de salida {proc.returncode}):\n{tail}",
            )
        )
    return proc


@contextmanager
def _locked(cluster: Cluster) -> Iterator[None]:
    """Serialise create/start/stop between processes sharing one data directory."""
    with open(cluster.root.parent / ".cluster.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def initialised(cluster: Cluster) -> bool:
    return (cluster.pgdata / "PG_VERSION").exists()


def create(cluster: Cluster) -> None:
    """initdb plus our settings: unix socket only, owner-only socket, durable commits."""
    for sub in (cluster.socket_dir,):
        sub.mkdir(parents=True, exist_ok=True)
        if cluster.os_user:
            pw = pwd.getpwnam(cluster.os_user)
            os.chown(sub, pw.pw_uid, pw.pw_gid)
        os.chmod(sub, 0o700)
    _run(
        cluster,
        [
            str(cluster.bindir / "initdb"),
            "-D",
            str(cluster.pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        Said("initdb", "ejecutar initdb"),
    )
    conf = (
        "\n# geo_comuna embedded cluster\n"
        "listen_addresses = ''\n"
        f"port = {PORT}\n"
        f"unix_socket_directories = '{cluster.socket_dir}'\n"
        "unix_socket_permissions = 0700\n"
        "shared_buffers = 256MB\n"
        "work_mem = 32MB\n"
        "maintenance_work_mem = 256MB\n"
        "max_wal_size = 2GB\n"
        "checkpoint_timeout = 15min\n"
        "max_connections = 100\n"
        "jit = off\n"
    )
    conf_path = cluster.pgdata / "postgresql.conf"
    # The file belongs to the cluster's user; append through it rather than as root.
    proc = subprocess.run(
        _as_user(cluster.os_user, ["sh", "-c", f"cat >> '{conf_path}'"]),
        input=conf,
        text=True,
        capture_output=True,
        cwd="/",
    )
    if proc.returncode != 0:
        raise ClusterError(
            Said(
                f"could not configure {conf_path}: {proc.stderr.strip()}",
                f"no se pudo configurar {conf_path}: {proc.stderr.strip()}",
            )
        )


def _zombie_postmaster(cluster: Cluster) -> int | None:
    """The PID in postmaster.pid if that process was killed but not yet reaped by its parent
    (PID 1 once pg_ctl has exited; in a container without an init, maybe never): pg_ctl calls
    such a server running, and a new postmaster refuses to start beside it."""
    try:
        pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError, IndexError):
        return None
    return pid if stat.rsplit(")", 1)[-1].split()[0] == "Z" else None


def running(cluster: Cluster) -> bool:
    if not initialised(cluster):
        return False
    proc = subprocess.run(
        _as_user(
            cluster.os_user, [str(cluster.bindir / "pg_ctl"), "-D", str(cluster.pgdata), "status"]
        ),
        capture_output=True,
        text=True,
        cwd="/",
    )
    return proc.returncode == 0 and _zombie_postmaster(cluster) is None


def start(cluster: Cluster) -> None:
    deadline = time.monotonic() + 15
    while (zombie := _zombie_postmaster(cluster)) is not None:
        if time.monotonic() > deadline:
            raise ClusterError(
                Said(
                    f"PostgreSQL (PID {zombie}) died and was never reaped by its parent, so it "
                    "cannot start again: in a container, run it with an init (docker run --init) "
                    "or restart the container",
                    f"PostgreSQL (PID {zombie}) terminó y su proceso padre nunca lo recogió, así "
                    "que no puede volver a arrancar: en un contenedor, ejecútelo con un init "
                    "(docker run --init) o reinicie el contenedor",
                )
            )
        time.sleep(0.1)
    _run(
        cluster,
        [
            str(cluster.bindir / "pg_ctl"),
            "-D",
            str(cluster.pgdata),
            "-l",
            str(cluster.logfile),
            "-w",
            "-t",
            "120",
            "start",
        ],
        Said("starting PostgreSQL", "iniciar PostgreSQL"),
    )


def stop(cluster: Cluster) -> None:
    if running(cluster):
        _run(
            cluster,
            [
                str(cluster.bindir / "pg_ctl"),
                "-D",
                str(cluster.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                "120",
                "stop",
            ],
            Said("stopping PostgreSQL", "detener PostgreSQL"),
        )


def ensure_database(cluster: Cluster) -> None:
    import psycopg

    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (cluster.database,)
        ).fetchone()
        if not exists:
            from psycopg import sql

            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cluster.database)))


def ensure_running(settings: Settings) -> Cluster:
    """Create the cluster on first use, start it if stopped, make sure the database exists."""
    cluster = locate(settings)
    with _locked(cluster):
        if not initialised(cluster):
            create(cluster)
        if not running(cluster):
            start(cluster)
        ensure_database(cluster)
    return cluster


def shutdown(settings: Settings) -> bool:
    """Stop the cluster if it runs; True when it was running."""
    cluster = locate(settings)
    with _locked(cluster):
        was = running(cluster)
        stop(cluster)
    return was


def status(settings: Settings) -> dict[str, str | bool | None]:
    """What `db status` prints: geo_comuna's data directory (``data_dir``) and why that one
    (``data_dir_from``), where its cluster was placed and why, and PostgreSQL's own data
    directory inside it (``data_directory``). Before there is a cluster it says so and makes
    nothing: locate() would place one (directories, and as root a pointer to /var/lib)."""
    data_dir = settings.data_dir.resolve()
    root = _likely_root(settings)
    if not (root / "data" / "PG_VERSION").exists() and not (data_dir / "cluster_location").exists():
        root_user = os.geteuid() == 0
        return {
            "data_dir": str(data_dir),
            "data_dir_from": settings.data_dir_from,
            "cluster_placed": Said(
                "not created yet: `db start`, or the first command that needs the database, "
                "makes it",
                "aún no creado: lo crea `db start`, o el primer comando que necesite la base "
                "de datos",
            ),
            "data_directory": None,
            "socket_directory": None,
            "initialised": False,
            "running": False,
            "run_as": settings.pg_os_user if root_user else pwd.getpwuid(os.geteuid()).pw_name,
            "postgresql_bin": str(find_bindir(settings)),
            "conninfo": None,
        }
    cluster = locate(settings)
    return {
        "data_dir": str(settings.data_dir.resolve()),
        "data_dir_from": settings.data_dir_from,
        "cluster_placed": _placement(settings, cluster),
        "data_directory": str(cluster.pgdata),
        "socket_directory": str(cluster.socket_dir),
        "initialised": initialised(cluster),
        "running": running(cluster),
        "run_as": cluster.os_user or pwd.getpwuid(os.geteuid()).pw_name,
        "postgresql_bin": str(cluster.bindir),
        "conninfo": cluster.conninfo(),
    }
