"""`serve` never answers requests as root: started as root, it binds its port (ports below 1024
need root), then becomes an unprivileged user before the app starts; a bug in a file parser
then runs with that user's rights, not the machine's.

The user is ``GEO_COMUNA_RUN_AS``, by default ``GEO_COMUNA_PG_OS_USER`` (``postgres``), who
already owns the embedded cluster and so may reach its socket. Before anything is bound, that
user is checked: it must exist and be able to read what the server loads after the drop (the
Python standard library, geo_comuna, its libraries, the map files) and reach the database
socket; otherwise `serve` refuses, naming what to change. Only ``GEO_COMUNA_RUN_AS=root``,
said explicitly, keeps root (for a machine where no other user can run geo_comuna's Python).
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import sysconfig
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from geo_comuna.errors import GeoComunaError, Said
from geo_comuna.settings import Settings


class RootRefused(GeoComunaError):
    """`serve` was started as root and cannot become the unprivileged user it should."""

    status, code = 500, "root-refused"
    title_es = "root rechazado"


def _needed(settings: Settings, conninfo: str) -> list[tuple[str, Path]]:
    """(test flag, path) of what the server reads after it has dropped root."""
    import fastapi

    import geo_comuna

    paths = sysconfig.get_paths()
    base = {"platbase": sys.base_prefix, "installed_platbase": sys.base_prefix}
    needed = [
        ("-r", Path(paths["stdlib"]) / "os.py"),  # modules imported lazily, e.g. encodings
        # compiled stdlib modules; in a virtualenv "platstdlib" is the venv's own lib folder
        ("-x", Path(sysconfig.get_path("platstdlib", vars=base)) / "lib-dynload"),
        ("-r", Path(geo_comuna.__file__)),
        ("-r", Path(fastapi.__file__)),  # the virtualenv's libraries
        ("-r", settings.styles_path),
    ]
    leaflet = settings.web_assets_dir / "leaflet" / "leaflet.js"
    if leaflet.exists():
        needed.append(("-r", leaflet))
    host = str(conninfo_to_dict(conninfo).get("host") or "")
    if host.startswith("/"):  # a unix socket's directory
        needed.append(("-x", Path(host)))
    return needed


def server_user(settings: Settings, conninfo: str) -> pwd.struct_passwd | None:
    """The user `serve` must become, checked; None when it is not root, or stays root
    because GEO_COMUNA_RUN_AS=root says so."""
    if os.geteuid() != 0 or settings.run_as == "root":
        return None
    name = settings.run_as or settings.pg_os_user
    option = "GEO_COMUNA_RUN_AS" if settings.run_as else "GEO_COMUNA_PG_OS_USER"
    hint = Said(
        "serve does not answer requests as root: it binds its port, then runs as an "
        "unprivileged user (GEO_COMUNA_RUN_AS, default GEO_COMUNA_PG_OS_USER)",
        "serve no atiende peticiones como root: abre su puerto y luego corre como un usuario "
        "sin privilegios (GEO_COMUNA_RUN_AS, por defecto GEO_COMUNA_PG_OS_USER)",
    )
    stay = Said(
        "GEO_COMUNA_RUN_AS=root to stay root knowingly (not recommended)",
        "GEO_COMUNA_RUN_AS=root para seguir como root a sabiendas (no recomendado)",
    )
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise RootRefused(
            Said(
                f"{hint}; user {name!r} ({option}) does not exist: create it, set "
                f"GEO_COMUNA_RUN_AS to a user that does, or {stay}",
                f"{hint.es}; el usuario {name!r} ({option}) no existe: créelo, ponga en "
                f"GEO_COMUNA_RUN_AS un usuario que exista, o {stay.es}",
            )
        ) from None
    if user.pw_uid == 0:
        raise RootRefused(
            Said(
                f"{hint}; {option}={name!r} is root: name an unprivileged user",
                f"{hint.es}; {option}={name!r} es root: indique un usuario sin privilegios",
            )
        )
    for flag, path in _needed(settings, conninfo):
        probe = subprocess.run(
            ["runuser", "-u", name, "--", "test", flag, str(path)], capture_output=True
        )
        if probe.returncode != 0:
            what = ("enter", "entrar en") if flag == "-x" else ("read", "leer")
            raise RootRefused(
                Said(
                    f"{hint}; user {name!r} ({option}) cannot {what[0]} {path}: install "
                    "geo_comuna and its Python where that user can (not under /root), give it "
                    f"access, set GEO_COMUNA_RUN_AS to a user who can, or {stay}",
                    f"{hint.es}; el usuario {name!r} ({option}) no puede {what[1]} {path}: "
                    "instale geo_comuna y su Python donde ese usuario pueda (no bajo /root), "
                    "dele acceso, ponga en GEO_COMUNA_RUN_AS un usuario que pueda, o "
                    f"{stay.es}",
                )
            )
    return user


def become(user: pwd.struct_passwd) -> None:
    """Drop root for good: groups, group, then user (no way back)."""
    os.initgroups(user.pw_name, user.pw_gid)
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = user.pw_name
    if os.geteuid() == 0 or os.getegid() == 0:  # setuid failing silently would be fatal
        sys.exit("error: could not drop root privileges")
