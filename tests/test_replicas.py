"""Reads on a real hot standby (PostgreSQL streaming replication), writes on the primary.

A standby of the test cluster is made with ``pg_basebackup -R`` beside it and started; a real
`geo-comuna serve` gets it as GEO_COMUNA_READ_DATABASE_URL. With the standby's replay paused
a write cannot reach it, so what a reader sees tells where it was read: a stranger still sees
the old data (read on the standby), the writer sees its write (read on the primary, after the
bounded wait), and both see it once replay resumes. A stopped standby sends reads back to the
primary without a failed request; started again, it takes reads again.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_comuna.db import cluster
from geo_comuna.layers import get_layer
from geo_comuna.settings import Settings
from tests.factories import MAIZAL, feature
from tests.live import add_user, serving

ITEMS = "/collections/parcels/items?limit=1"
READ = "X-Geo-Comuna-Read"


def as_postgres(found: cluster.Cluster, *cmd: str) -> None:
    args = list(cmd) if found.os_user is None else ["runuser", "-u", found.os_user, "--", *cmd]
    done = subprocess.run(args, capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def standby(admin_conninfo: str, settings: Settings) -> Iterator[cluster.Cluster]:
    """A hot standby of the test cluster, in .geo_comuna-test/standby, gone at the end."""
    primary = cluster.locate(settings)
    root = primary.root.parent / "standby"
    if root.exists():  # a run killed before its end
        stale = cluster.Cluster(root, primary.bindir, primary.os_user, primary.database)
        if cluster.running(stale):
            cluster.stop(stale)
        shutil.rmtree(root)
    root.mkdir(mode=0o700)
    (root / "run").mkdir(mode=0o700)
    if primary.os_user:
        for path in (root, root / "run"):
            shutil.chown(path, primary.os_user, primary.os_user)
    found = cluster.Cluster(root, primary.bindir, primary.os_user, primary.database)
    source = conninfo_to_dict(admin_conninfo)
    as_postgres(
        found,
        str(primary.bindir / "pg_basebackup"),
        *("-D", str(found.pgdata), "-R", "-X", "stream", "-c", "fast"),
        *("-h", str(source["host"]), "-p", str(source["port"]), "-U", str(source["user"])),
    )
    overrides = (
        f"\nunix_socket_directories = '{found.socket_dir}'\n"
        "shared_buffers = 32MB\nhot_standby = on\nhot_standby_feedback = on\n"
    )
    as_postgres(
        found, "sh", "-c", f"cat >> '{found.pgdata / 'postgresql.conf'}' <<'EOF'{overrides}EOF"
    )
    cluster.start(found)
    try:
        yield found
    finally:
        if cluster.running(found):
            cluster.stop(found)
        shutil.rmtree(root, ignore_errors=True)


def replicated(standby_dsn: str, timeout: float = 30) -> None:
    """Wait until the standby has the database (made on the primary after the backup)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(standby_dsn, connect_timeout=2) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                return
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the standby never got the test database"
            time.sleep(0.2)


def matched(client: httpx.Client, **headers: str) -> tuple[int, str]:
    r = client.get(ITEMS, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"], r.headers[READ]


def test_reads_on_the_standby_writes_on_the_primary(
    own_db: str, standby: cluster.Cluster, tmp_path: Path
) -> None:
    dbname = conninfo_to_dict(own_db)["dbname"]
    standby_dsn = make_conninfo(standby.conninfo(), dbname=dbname)
    replicated(standby_dsn)
    token = add_user(own_db, "replica-admin")
    env = {"GEO_COMUNA_READ_DATABASE_URL": standby_dsn, "GEO_COMUNA_READ_WAIT_MS": "300"}
    with serving(own_db, tmp_path / "serve.log", **env) as (_, base):
        writer = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        stranger = httpx.Client(base_url=base)
        count, server = matched(stranger)
        assert server == "standby-1"

        with psycopg.connect(standby_dsn, autocommit=True) as paused:
            paused.execute("SELECT pg_wal_replay_pause()")
            body = feature(get_layer("parcels"), "EL-MAIZAL", *MAIZAL)
            created = writer.post("/collections/parcels/items", json=body)
            assert created.status_code == 201, created.text
            lsn = created.headers["X-Geo-Comuna-LSN"]
            assert writer.cookies["geo_comuna_lsn"] == lsn
            # the stranger reads the standby, which has not replayed the write
            assert matched(stranger) == (count, "standby-1")
            # the writer reads its write: the standby is behind it, so on the primary
            assert matched(writer) == (count + 1, "primary")  # by its cookie
            headers = {"X-Geo-Comuna-Read-After": lsn}
            assert matched(stranger, **headers) == (count + 1, "primary")  # by the header
            paused.execute("SELECT pg_wal_replay_resume()")

        assert matched(writer) == (count + 1, "standby-1")  # replayed now: on the standby
        assert matched(stranger) == (count + 1, "standby-1")
        bad = stranger.get(ITEMS, headers={"X-Geo-Comuna-Read-After": "yesterday"})
        assert bad.status_code == 400 and "X-Geo-Comuna-Read-After" in bad.json()["detail"]

        cluster.stop(standby)  # its pooled connections break: reads go to the primary
        for client in (stranger, writer) * 5:
            assert matched(client) == (count + 1, "primary")

        cluster.start(standby)  # probed again every few seconds, then back in service
        deadline = time.monotonic() + 20
        while matched(stranger)[1] != "standby-1":
            assert time.monotonic() < deadline, "the standby never took reads again"
            time.sleep(0.5)
        assert matched(stranger) == (count + 1, "standby-1")
