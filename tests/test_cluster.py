"""The embedded cluster through the CLI: created on first use, stopped, restarted; as root it
runs as the unprivileged user, also from a directory that user cannot traverse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from geo_comuna.db import cluster
from geo_comuna.db.migrate import available
from geo_comuna.settings import Settings

CLI = [sys.executable, "-m", "geo_comuna.cli"]
LATEST = available()[-1].version


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GEO_COMUNA_DATABASE_URL"}
    env["GEO_COMUNA_DATA_DIR"] = str(data_dir)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    """A 0700 directory: as root, the postgres user cannot enter it."""
    path = tmp_path / "private"
    path.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    return path


def test_start_status_stop_restart(private_dir: Path) -> None:
    data_dir = private_dir / "store"
    # before the first start, status says so and makes nothing (it placed the cluster:
    # directories, and as root a pointer to /var/lib)
    before = cli("db", "status", data_dir=data_dir)
    assert before.returncode == 3, before.stderr
    assert json.loads(before.stdout)["initialised"] is False
    # found from outside: a mistyped data directory was made, and "was not running" said
    nothing = cli("db", "stop", data_dir=data_dir)
    assert nothing.returncode == 0 and "no database here" in nothing.stdout, nothing.stdout
    assert not data_dir.exists()
    try:
        started = cli("db", "start", data_dir=data_dir)
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("started: ")
        running = cli("db", "start", data_dir=data_dir)
        assert running.returncode == 0 and running.stdout.startswith("already running: ")
        # what commands connect to first, without probing, is where the cluster is
        settings = Settings(data_dir=data_dir)
        assert cluster.likely_conninfo(settings) == cluster.locate(settings).conninfo()
        status = cli("db", "status", data_dir=data_dir)
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["running"] and info["initialised"]
        if os.geteuid() == 0:
            assert info["run_as"] == "postgres"
            # the data directory is not traversable by postgres: the cluster lives elsewhere
            assert (data_dir / "cluster_location").exists()
        upgraded = cli("db", "upgrade", data_dir=data_dir)
        assert upgraded.returncode == 0, upgraded.stderr
        assert f"version {LATEST}" in upgraded.stdout
        first, last = (f"{m.version:04d}_{m.name}" for m in (available()[0], available()[-1]))
        assert f"applied {len(available())} migration(s) ({first} … {last})" in upgraded.stdout
        assert cli("db", "stop", data_dir=data_dir).stdout.strip() == "stopped"
        assert cli("db", "status", data_dir=data_dir).returncode == 3
        # a second start reuses the cluster and its schema
        assert cli("db", "start", data_dir=data_dir).returncode == 0
        again = cli("db", "upgrade", data_dir=data_dir)
        assert again.stdout.strip() == f"nothing to apply: schema at version {LATEST}"
    finally:
        cli("db", "stop", data_dir=data_dir)
        pointer = data_dir / "cluster_location"
        if pointer.exists():  # the cluster was placed outside the data directory
            shutil.rmtree(pointer.read_text().strip(), ignore_errors=True)


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["serve", "--help"],
        ["db", "--help"],
        ["db", "start", "--help"],
        ["import", "--help"],
        ["load-sample", "--help"],
    ):
        out = subprocess.run([*CLI, *args], capture_output=True, text=True)
        assert out.returncode == 0 and "Usage" in out.stdout, args
