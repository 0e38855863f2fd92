"""`serve` started as root answers as an unprivileged user, or refuses to start saying which
setting to change (cli/privileges.py). Real `geo-comuna serve` processes, started by root."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import CLI, clean_env, free_port, serving

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="what serve does when started as root (the tests run as root)"
)
ROOT = Path(__file__).resolve().parents[1]
KML = b"<kml><Document><Placemark><Point><coordinates>1,2"


def can(user: str, *test: str) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", *test]).returncode == 0


@pytest.fixture(scope="module")
def readable() -> Iterator[Path]:
    """geo_comuna, its map files and its libraries where any user may read them: hard links
    (nothing copied) in a world-readable folder. A checkout under /root (CI's) is out of
    postgres' reach, and so are its virtualenv's packages."""
    top = Path(tempfile.mkdtemp(prefix="geo_comuna-readable-"))
    top.chmod(0o755)
    try:
        for name in ("geo_comuna",):  # styles and web libraries are inside (package data)
            if (ROOT / name).exists():
                _link(ROOT / name, top / name)
        folders = [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
        for i, packages in enumerate(folders):
            _link(packages, top / f"site-packages-{i}")
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _link(source: Path, target: Path) -> None:
    if subprocess.run(["cp", "-al", str(source), str(target)]).returncode != 0:
        shutil.copytree(source, target, symlinks=True)  # another filesystem: a real copy


def python_for(user: str, code: Path) -> tuple[list[str], dict[str, str]]:
    """The CLI with ``code`` (and the libraries beside it, see ``readable``) run by a Python
    that ``user`` can read as well, and its environment: this Python, or the system's of the
    same version (pyenv puts this one under /root)."""
    packages = sorted(str(p) for p in code.glob("site-packages-*")) or site.getsitepackages()
    path = os.pathsep.join([str(code), *packages])
    if can(user, "-r", str(Path(sysconfig.get_paths()["stdlib"]) / "os.py")):
        return CLI, {"PYTHONPATH": path}
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    assert can(user, "-x", system), f"no Python that {user} may run"
    return [system, "-m", "geo_comuna.cli"], {"PYTHONPATH": path}


def ids(pid: int) -> tuple[set[int], set[int], set[int]]:
    """Real, effective, saved and filesystem uids; the same gids; supplementary groups."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (
        {int(v) for v in status["Uid"].split()},
        {int(v) for v in status["Gid"].split()},
        {int(v) for v in status["Groups"].split()},
    )


def refused(
    dsn: str, cli: list[str], lang: str = "en", **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*cli, "--lang", lang, "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(GEO_COMUNA_DATABASE_URL=dsn, **env),
        cwd="/",  # `python -m` puts the working directory first on the path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = {"en": "serve does not answer requests as root", "es": "serve no atiende peticiones"}
    assert said[lang] in done.stderr, done.stderr
    assert "Uvicorn running" not in done.stderr  # refused before binding anything
    return done


def test_serve_answers_as_the_postgres_user(own_db: str, tmp_path: Path, readable: Path) -> None:
    cli, env = python_for("postgres", readable)
    log = tmp_path / "serve.log"
    with serving(own_db, log, cli, readable, GEO_COMUNA_RUN_AS="", **env) as (proc, base):
        uids, gids, groups = ids(proc.pid)
        # what runs after the drop: map pages (hillshade, folium), GDAL on an upload, export
        assert httpx.get(f"{base}/maps/communes/5-DE-MARZO", timeout=60).status_code == 200
        export = httpx.get(f"{base}/collections/parcels/export?format=csv", timeout=60)
        assert export.status_code == 200 and export.text.startswith("WKT,")
        r = httpx.post(f"{base}/collections/parcels/import", files={"file": ("a.kml", KML)})
        assert r.status_code == 401  # writing needs a token: the request got through
        scratch = list(Path(tempfile.gettempdir()).glob(f"geo_comuna-scratch-{proc.pid}-*"))
        assert len(scratch) == 1 and scratch[0].stat().st_uid == pwd.getpwnam("postgres").pw_uid
        proc.send_signal(signal.SIGTERM)  # a clean stop takes its scratch along
        proc.wait(timeout=30)  # uvicorn shuts down, then dies of the signal it caught
    postgres = pwd.getpwnam("postgres")
    assert uids == {postgres.pw_uid} and gids == {postgres.pw_gid} and 0 not in groups
    assert "as user postgres" in log.read_text()
    assert not scratch[0].exists()


def test_serve_stays_root_only_when_told(own_db: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(own_db, log, GEO_COMUNA_RUN_AS="root") as (proc, base):
        assert httpx.get(f"{base}/conformance").status_code == 200
        assert ids(proc.pid)[0] == {0}
    assert "warning: answering requests as root, as GEO_COMUNA_RUN_AS=root says" in log.read_text()


@pytest.mark.parametrize(
    ("run_as", "said"),
    [
        ("no-such-user-gc", "user 'no-such-user-gc' (GEO_COMUNA_RUN_AS) does not exist"),
        # the test cluster's socket directory is its owner's (postgres) only
        ("nobody", "user 'nobody' (GEO_COMUNA_RUN_AS) cannot enter /"),
    ],
)
def test_serve_refuses_a_user_it_cannot_become(
    own_db: str, run_as: str, said: str, readable: Path
) -> None:
    cli, env = python_for("nobody", readable)
    done = refused(own_db, cli, GEO_COMUNA_RUN_AS=run_as, **env)
    assert said in done.stderr and "GEO_COMUNA_RUN_AS=root" in done.stderr


def test_serve_refuses_when_its_code_is_out_of_reach(own_db: str, tmp_path: Path) -> None:
    """geo_comuna where postgres cannot read it (a clone under /root, say): refused, by name."""
    hidden = tmp_path / "hidden"
    shutil.copytree(ROOT / "geo_comuna", hidden / "geo_comuna")  # its styles inside
    hidden.chmod(0o700)
    cli, env = python_for("postgres", hidden)
    done = refused(own_db, cli, **env)
    assert f"cannot read {hidden}/geo_comuna/__init__.py" in done.stderr
    assert "GEO_COMUNA_PG_OS_USER" in done.stderr
    # found from outside: English under a Spanish heading ("petición no válida")
    spoken = refused(own_db, cli, lang="es", **env)
    assert f"no puede leer {hidden}/geo_comuna/__init__.py" in spoken.stderr, spoken.stderr
    assert "root rechazado" in spoken.stderr and "cannot" not in spoken.stderr
