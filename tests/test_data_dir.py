"""One database wherever you stand: the embedded data directory comes from GEO_COMUNA_DATA_DIR,
the one recorded at setup, or the per-user XDG data directory, never the working directory; the
CLI says which (`db status`, --verbose)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from geo_comuna.settings import Settings
from tests.live import CLI, clean_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user of our own: $HOME in tmp_path, no XDG variables, no GEO_COMUNA_DATA_DIR."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "GEO_COMUNA_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


def record(config_home: Path, text: str) -> Path:
    path = config_home / "geo_comuna" / "data_dir"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_the_default_is_per_user_not_the_working_directory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == home / ".local" / "share" / "geo_comuna"
    assert settings.data_dir_from == "per-user default (~/.local/share/geo_comuna)"

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    settings = Settings()
    assert settings.data_dir == tmp_path / "share" / "geo_comuna"
    assert settings.data_dir_from == "per-user default ($XDG_DATA_HOME/geo_comuna)"

    # the XDG spec: a relative value is ignored
    monkeypatch.setenv("XDG_DATA_HOME", "share")
    assert Settings().data_dir == home / ".local" / "share" / "geo_comuna"


def test_the_one_recorded_at_setup_comes_before_the_default(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    kept = tmp_path / "checkout" / ".geo_comuna"
    path = record(tmp_path / "config", f"{kept}\n")
    settings = Settings()
    assert settings.data_dir == kept
    assert settings.data_dir_from == f"recorded at setup in {path}"

    # GEO_COMUNA_DATA_DIR wins over both; set but empty, it is as if unset
    monkeypatch.setenv("GEO_COMUNA_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()
    assert (settings.data_dir, settings.data_dir_from) == (
        tmp_path / "elsewhere",
        "GEO_COMUNA_DATA_DIR",
    )
    monkeypatch.setenv("GEO_COMUNA_DATA_DIR", "")
    assert Settings().data_dir == kept


def test_a_relative_recorded_directory_is_refused(home: Path) -> None:
    path = record(home / ".config", ".geo_comuna\n")
    with pytest.raises(ValueError, match=f"{path} records the data directory '.geo_comuna'"):
        Settings()


def test_verbose_names_a_server_without_its_password(tmp_path: Path) -> None:
    env = clean_env(GEO_COMUNA_DATABASE_URL="postgresql://ana:s3cret@db.example:6543/comunas")
    done = subprocess.run(
        [*CLI, "--verbose", "db", "status"], capture_output=True, text=True, env=env, timeout=60
    )
    said = "the server at GEO_COMUNA_DATABASE_URL (host db.example, port 6543, dbname comunas"
    assert done.returncode == 0, done.stderr
    assert f"database: {said}" in done.stderr and f"using {said}" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


def test_two_folders_reach_the_same_database(tmp_path: Path) -> None:
    """The bug this fixes: a command run from another folder made a new, empty database there.
    As root, the data directory is out of postgres' reach (as root's own, under /root, is):
    the cluster is placed elsewhere, and `db status` says so."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    share = private / "share"
    env = clean_env(
        HOME=str(private / "home"),
        XDG_DATA_HOME=str(share),
        XDG_CONFIG_HOME=str(private / "config"),
        # from another folder, `python -m` would find the installed package, not this one
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()

    def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*CLI, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode in (0, 3), done.stderr  # 3: `db status` of a stopped cluster
        return done

    data_dir = share / "geo_comuna"
    try:
        added = cli(first, "--verbose", "users", "add", "ana", "--role", "viewer")
        assert f"database: geo_comuna in the embedded cluster of {data_dir} " in added.stderr
        assert "per-user default ($XDG_DATA_HOME/geo_comuna)" in added.stderr

        status = json.loads(cli(second, "db", "status").stdout)
        assert status["data_dir"] == str(data_dir) and status["running"]
        assert status["data_dir_from"] == "per-user default ($XDG_DATA_HOME/geo_comuna)"
        if os.geteuid() == 0:
            assert status["cluster_placed"] == (
                "outside the data directory, which postgres (who runs PostgreSQL for root) "
                f"could not reach when the cluster was made; {data_dir / 'cluster_location'} "
                "records where"
            )
        else:
            assert status["cluster_placed"] == "in the data directory"
        # the prose among the values is said in the language asked; the keys stay
        spanish = json.loads(cli(second, "--lang", "es", "db", "status").stdout)
        assert spanish.keys() == status.keys()
        assert spanish["data_dir_from"] == (
            "el predeterminado de cada usuario ($XDG_DATA_HOME/geo_comuna)"
        )
        placed = "fuera del directorio" if os.geteuid() == 0 else "en el directorio de datos"
        assert spanish["cluster_placed"].startswith(placed), spanish
        said = cli(second, "--lang", "es", "--verbose", "users", "list").stderr
        assert f"base de datos: geo_comuna en el clúster integrado de {data_dir} " in said
        listed = cli(second, "--verbose", "users", "list")
        assert [u["name"] for u in json.loads(listed.stdout)] == ["ana"]
        assert f"embedded cluster of {data_dir} " in listed.stderr
        assert f"socket {status['socket_directory']}" in listed.stderr
        # nothing was made where the commands were run
        assert list(first.iterdir()) == [] and list(second.iterdir()) == []
    finally:
        subprocess.run([*CLI, "db", "stop"], cwd=first, env=env, capture_output=True, timeout=120)
        pointer = data_dir / "cluster_location"
        if pointer.exists():  # as root the cluster lives outside a tmp_path postgres cannot enter
            shutil.rmtree(pointer.read_text().strip(), ignore_errors=True)
