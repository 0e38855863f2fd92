"""`serve` started as root answers as an unprivileged user, or refuses to start saying which
setting to change (cli/privileges.py). Real `geo-comuna serve` processes."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.live import CLI, clean_env, free_port, serving

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="what serve does when started as root")


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


def test_serve_answers_as_an_unprivileged_user(own_db: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(own_db, log) as (proc, base):
        assert httpx.get(f"{base}/collections/parcels/items?limit=1").status_code == 200
        uids, gids, groups = ids(proc.pid)
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        assert uids == {postgres.pw_uid} and gids == {postgres.pw_gid}
        assert 0 not in groups
        assert "as user postgres" in log.read_text()
    else:
        assert uids == {os.geteuid()}


@AS_ROOT
@pytest.mark.parametrize(
    ("run_as", "said"),
    [
        ("no-such-user-gc", "user 'no-such-user-gc' (GEO_COMUNA_RUN_AS) does not exist"),
        ("root", "GEO_COMUNA_RUN_AS='root' is root"),
        # the test cluster's socket directory is its owner's (postgres) only
        ("nobody", "user 'nobody' (GEO_COMUNA_RUN_AS) cannot reach the database socket"),
    ],
)
def test_serve_refuses_to_stay_root(own_db: str, run_as: str, said: str) -> None:
    port = free_port()
    done = subprocess.run(
        [*CLI, "serve", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(GEO_COMUNA_DATABASE_URL=own_db, GEO_COMUNA_RUN_AS=run_as),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert said in done.stderr and "serve does not answer requests as root" in done.stderr
    assert "Uvicorn running" not in done.stderr  # refused before binding anything
