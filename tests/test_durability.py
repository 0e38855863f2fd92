"""Nothing lost: backup and restore round-trip the whole database; SIGKILL of the server in the
middle of a large import and of a burst of writes, and of the embedded PostgreSQL itself,
leaves every acknowledged write and nothing of what was interrupted.

Servers and clusters run as subprocesses of the test and are killed in ``finally`` blocks.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import psycopg
import pytest
import shapely
from psycopg import AsyncConnection
from typer.testing import CliRunner

from geo_comuna import accounts
from geo_comuna.cli import app as cli_app
from geo_comuna.cli.common import HeldInterrupts
from geo_comuna.db import cluster
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.factories import LAT, LON, feature
from tests.live import CLI, add_user, clean_env, serving

PARCELS = LAYERS["parcels"]


def cli(
    dsn: str, *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(GEO_COMUNA_DATABASE_URL=dsn),
        cwd=cwd,
    )


def scalar(dsn: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(dsn, autocommit=True) as db:
        return db.execute(query, params).fetchone()[0]


def fingerprint(dsn: str) -> dict[str, tuple[int, str]]:
    """Row count and md5 of every row (geometry as hex EWKB, every attribute) of every table
    of the schema, plus each sequence's position."""
    with psycopg.connect(dsn, autocommit=True) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        out = {}
        for table in tables:
            out[table] = db.execute(
                psycopg.sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), "
                    "'')) FROM {} t"
                ).format(psycopg.sql.Identifier(table))
            ).fetchone()
        for name, last in db.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
        ):
            out[f"sequence {name}"] = (last, "")
    return out


def admin_token(dsn: str, name: str = "crash-admin") -> str:
    return add_user(dsn, name, "admin")


def parcels_file(
    path: Path, count: int, code: str = "BULK", lon: float = LON, lat: float = LAT
) -> Path:
    """``count`` disjoint 50 m squares in a grid near (lon, lat), as a GeoPackage."""
    side = int(np.ceil(np.sqrt(count)))
    i = np.arange(count)
    x, y = lon + (i % side) * 0.0006, lat + (i // side) * 0.0006
    frame = gpd.GeoDataFrame(
        {"code": [f"{code}-{n}" for n in i], "tenure": "occupied", "notes": "parcela de prueba"},
        geometry=shapely.multipolygons(shapely.box(x, y, x + 0.0005, y + 0.0005), indices=i),
        crs="EPSG:4326",
    )
    frame.to_file(path, layer="parcels", driver="GPKG", engine="pyogrio")
    return path


# ---------------------------------------------------------------- backup and restore


def change_everything(dsn: str) -> None:
    """Deletes, a tenure change (parcel_history), an insert (audit_log), a new user: all
    committed."""
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DELETE FROM parcels WHERE id IN (SELECT id FROM parcels ORDER BY id LIMIT 3)")
        db.execute(
            "UPDATE parcels SET tenure = 'disputed' WHERE id = (SELECT max(id) FROM "
            "parcels WHERE tenure <> 'disputed')"
        )
        db.execute(
            "INSERT INTO parcels (code, tenure, geom) VALUES ('NEW-1', 'occupied', "
            "ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.0005)))",
            (LON, LAT),
        )
    admin_token(dsn, "after-backup")


def test_backup_restore_round_trip(own_db: str, tmp_path: Path) -> None:
    archive = tmp_path / "store.backup"
    before = fingerprint(own_db)
    assert before["parcels"][0] > 3 and before["parcel_history"][0] > 0
    done = cli(own_db, "backup", str(archive))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] == archive.stat().st_size > 0

    change_everything(own_db)
    changed = fingerprint(own_db)
    for table in ("parcels", "parcel_history", "audit_log", "users"):
        assert changed[table] != before[table], table

    done = cli(own_db, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    restored = fingerprint(own_db)
    versions = restored.pop("layer_versions")
    assert restored == {k: v for k, v in before.items() if k != "layer_versions"}
    assert versions[0] == before["layer_versions"][0]  # every layer, each moved on (below)
    assert json.loads(done.stdout)["users_not_in_backup"] == ["after-backup"]
    assert "users made since the backup are gone" in done.stderr
    # the restored database takes writes again: sequences, triggers, grants are back
    change_everything(own_db)
    again = fingerprint(own_db)
    assert again["parcels"][0] == before["parcels"][0] - 2
    assert again["audit_log"][0] >= before["audit_log"][0] + 5


def versions(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as db:
        return dict(db.execute("SELECT layer, version FROM layer_versions"))


def authenticates(dsn: str, token: str) -> str | None:
    async def check() -> str | None:
        conn = await AsyncConnection.connect(dsn, autocommit=True)
        try:
            user = await accounts.authenticate(conn, token)
        finally:
            await conn.close()
        return user.name if user else None

    return asyncio.run(check())


def test_restore_keeps_tokens_revoked_since_the_backup(own_db: str, tmp_path: Path) -> None:
    """A restore brings back no token revoked after the backup, keeps a rotated token's
    replacement, and says which users it touched."""
    kept = add_user(own_db, "sigue", "admin")
    revoked = add_user(own_db, "revocada", "editor", ["EL-MAIZAL"])
    rotated_old = add_user(own_db, "rotada", "viewer")
    archive = tmp_path / "tokens.backup"
    assert cli(own_db, "backup", str(archive)).returncode == 0
    assert cli(own_db, "users", "revoke", "revocada").returncode == 0
    rotation = cli(own_db, "users", "rotate", "rotada")
    assert rotation.returncode == 0, rotation.stderr
    rotated_new = rotation.stdout.strip().splitlines()[-1]
    later = add_user(own_db, "posterior", "admin")

    done = cli(own_db, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["revocations_kept"] == ["revocada"]
    assert report["rotations_kept"] == ["rotada"]
    assert report["users_not_in_backup"] == ["posterior"]
    assert "tokens revoked since the backup stay revoked: revocada" in done.stderr
    assert authenticates(own_db, kept) == "sigue"
    assert authenticates(own_db, revoked) is None
    assert authenticates(own_db, rotated_old) is None
    assert authenticates(own_db, rotated_new) == "rotada"
    assert authenticates(own_db, later) is None
    # and a second restore of the same file still knows; named from its own folder (a
    # relative path was looked for where pg_restore runs, and not found)
    second = cli(own_db, "restore", archive.name, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["revocations_kept"] == ["revocada"] and again["rotations_kept"] == ["rotada"]
    assert authenticates(own_db, rotated_old) is None


def test_a_running_server_counts_the_restored_rows(own_db: str, tmp_path: Path) -> None:
    """No restart: a count cached before the restore is never served for restored rows,
    even once later writes bring the layer's version back to the cached one's number."""
    archive = tmp_path / "counts.backup"
    code = "EL-MAIZAL"

    def matched(base: str) -> int:
        r = httpx.get(f"{base}/collections/parcels/items", params={"limit": 1, "commune": code})
        assert r.status_code == 200, r.text
        return r.json()["numberMatched"]

    def delete(n: int) -> None:
        with psycopg.connect(own_db, autocommit=True) as db:
            db.execute(
                "DELETE FROM parcels WHERE id IN (SELECT p.id FROM parcels p JOIN communes c "
                "ON c.id = p.commune_id WHERE c.code = %s ORDER BY p.id DESC LIMIT %s)",
                (code, n),
            )

    with serving(own_db, tmp_path / "serve.log") as (_, base):
        stored = matched(base)
        assert cli(own_db, "backup", str(archive)).returncode == 0
        before = versions(own_db)
        delete(3)
        assert matched(base) == stored - 3  # cached at the version after the delete
        changed = versions(own_db)
        assert cli(own_db, "restore", str(archive)).returncode == 0
        after = versions(own_db)
        assert all(after[k] > max(before[k], changed[k]) for k in after)
        delete(1)  # one write after the restore: the archive's version plus one, once again
        assert matched(base) == stored - 1
        # found from outside: the restore made PostGIS anew, and the server's connections
        # kept its old lookups: every bbox, state breakdown and map was a 500 until a restart
        for path in (
            "/collections/parcels/items?limit=1&bbox=-70,9,-68,10",
            f"/communes/{code}/states",
        ):
            assert httpx.get(f"{base}{path}").status_code == 200, path


def test_restore_refuses_what_is_not_a_backup(own_db: str, tmp_path: Path) -> None:
    archive = tmp_path / "store.backup"
    assert cli(own_db, "backup", str(archive)).returncode == 0
    before = fingerprint(own_db)
    text = tmp_path / "notes.backup"
    text.write_text("parcel 12 belongs to the commune\n")
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size * 9 // 10])
    env = {"GEO_COMUNA_DATABASE_URL": own_db}
    refused = CliRunner().invoke(cli_app, ["restore", str(text)], env=env)
    assert refused.exit_code != 0
    assert "notes.backup is not a geo-comuna backup" in refused.stderr
    assert "nothing was restored" in refused.stderr
    # a damaged archive may only fail halfway through: the single transaction undoes it all
    damaged = CliRunner().invoke(cli_app, ["restore", str(truncated)], env=env)
    assert damaged.exit_code != 0 and "error" in damaged.stderr
    assert fingerprint(own_db) == before


def test_ctrl_c_says_whether_the_restore_happened(
    own_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT, as Ctrl-C sends it, at the restore's point of no return. Just before
    the COMMIT is sent: nothing is restored and the command says so. Just after: the restore
    finishes, reports, and says it was restored. It used to stop there without a word."""
    archive = tmp_path / "store.backup"
    assert cli(own_db, "backup", str(archive)).returncode == 0
    before = fingerprint(own_db)
    change_everything(own_db)
    changed = fingerprint(own_db)
    env = {"GEO_COMUNA_DATABASE_URL": own_db}
    hold = HeldInterrupts.hold
    # as at a terminal (CI runs in the background, where SIGINT is ignored and so left alone)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)

    def ctrl_c_then_hold(self: HeldInterrupts) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        hold(self)

    monkeypatch.setattr(HeldInterrupts, "hold", ctrl_c_then_hold)
    stopped = CliRunner().invoke(cli_app, ["restore", str(archive)], env=env)
    assert stopped.exit_code == 130, stopped.output
    assert "nothing was restored" in stopped.stderr
    assert fingerprint(own_db) == changed

    def hold_then_ctrl_c(self: HeldInterrupts) -> None:
        hold(self)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(HeldInterrupts, "hold", hold_then_ctrl_c)
    finished = CliRunner().invoke(cli_app, ["restore", str(archive)], env=env)
    assert finished.exit_code == 130, finished.output
    assert f"interrupted after the restore was committed: {archive.name} is restored" in (
        finished.stderr
    )
    assert json.loads(finished.stdout)["users_not_in_backup"] == ["after-backup"]
    restored = fingerprint(own_db)
    restored.pop("layer_versions")
    assert restored == {k: v for k, v in before.items() if k != "layer_versions"}
    try:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, handler)


# ---------------------------------------------------------------- SIGKILL of the server


def copying(dsn: str) -> bool:
    """Is a server connection in the middle of COPY into parcels?"""
    return bool(
        scalar(
            dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
            "current_database() AND state = 'active' AND query ILIKE "
            "'COPY %%parcels%%'",
        )
    )


def test_sigkill_in_the_middle_of_a_large_import(own_db: str, tmp_path: Path) -> None:
    token = admin_token(own_db)
    upload = parcels_file(tmp_path / "big.gpkg", 50_000)
    before = scalar(own_db, "SELECT count(*) FROM parcels")
    audited = scalar(own_db, "SELECT count(*) FROM audit_log")
    log = tmp_path / "serve.log"
    outcome: dict[str, object] = {}

    def post(base: str) -> None:
        try:
            with open(upload, "rb") as fh:
                r = httpx.post(
                    f"{base}/collections/parcels/import",
                    files={"file": ("big.gpkg", fh)},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
            outcome["status"] = r.status_code
        except httpx.TransportError as exc:
            outcome["error"] = exc

    with serving(own_db, log) as (proc, base):
        sender = threading.Thread(target=post, args=(base,))
        sender.start()
        deadline = time.monotonic() + 45
        while not copying(own_db):
            assert sender.is_alive(), f"the import ended before it was caught: {outcome}"
            assert time.monotonic() < deadline, "no COPY seen"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sender.join(timeout=30)
    assert "error" in outcome, outcome  # the client was never told it worked

    with serving(own_db, log) as (_, base):
        r = httpx.get(f"{base}/collections/parcels/items", params={"limit": 1})
        assert r.status_code == 200
        assert r.json()["numberMatched"] == before
    assert scalar(own_db, "SELECT count(*) FROM parcels") == before
    assert scalar(own_db, "SELECT count(*) FROM parcels WHERE code LIKE 'BULK-%%'") == 0
    # nor its audit entry (one for the whole import, migration 0010)
    assert scalar(own_db, "SELECT count(*) FROM audit_log") == audited


@dataclass
class Burst:
    """What the writers were told: codes acknowledged (with the id given back), codes whose
    request was cut off with no answer."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_burst(base: str, token: str, burst: Burst, writer: int, stop: threading.Event) -> None:
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        for n in range(10_000):
            if stop.is_set():
                return
            code = f"BURST-{writer}-{n}"
            body = feature(PARCELS, lon=LON + writer * 0.01, lat=LAT + n * 0.0003, code=code)
            try:
                r = client.post("/collections/parcels/items", json=body)
            except httpx.TransportError:
                with burst.lock:
                    burst.in_flight.add(code)
                return
            with burst.lock:
                if r.status_code == 201:
                    burst.acknowledged[code] = r.json()["ids"][0]
                else:
                    burst.refused.append(f"{code}: {r.status_code} {r.text}")


def test_sigkill_during_a_burst_of_writes(own_db: str, tmp_path: Path) -> None:
    token = admin_token(own_db)
    log = tmp_path / "serve.log"
    burst, stop = Burst(), threading.Event()
    with serving(own_db, log) as (proc, base):
        writers = [
            threading.Thread(target=write_burst, args=(base, token, burst, w, stop))
            for w in range(6)
        ]
        for w in writers:
            w.start()
        try:
            deadline = time.monotonic() + 20
            while len(burst.acknowledged) < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            stop.set()
            for w in writers:
                w.join(timeout=30)
    assert not burst.refused, burst.refused
    assert len(burst.acknowledged) >= 60

    with serving(own_db, log) as (_, base):
        assert (
            httpx.get(f"{base}/collections/parcels/items", params={"limit": 1}).status_code == 200
        )
    with psycopg.connect(own_db) as db:
        stored = dict(db.execute("SELECT code, id FROM parcels WHERE code LIKE 'BURST-%'"))
    acknowledged = burst.acknowledged
    assert {c: stored.get(c) for c in acknowledged} == acknowledged  # every one, same id
    assert set(stored) - set(acknowledged) <= burst.in_flight


# ---------------------------------------------------------------- SIGKILL of PostgreSQL


def test_sigkill_of_the_embedded_postgresql(tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    env = clean_env(GEO_COMUNA_DATA_DIR=str(data_dir))
    found = cluster.locate(Settings(data_dir=data_dir, database_url=None))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)

    try:
        assert run("db", "start").returncode == 0
        dsn = found.conninfo()
        for k in range(2):
            file = parcels_file(tmp_path / f"p{k}.gpkg", 20, f"C{k}", lat=LAT + k * 0.01)
            done = run("import", "parcels", str(file))
            assert done.returncode == 0, done.stderr
        committed = scalar(dsn, "SELECT count(*) FROM parcels")
        assert committed == 40
        # a third import is running when PostgreSQL dies: all of it or none of it stays
        big = parcels_file(tmp_path / "big.gpkg", 10_000, "LOST", lat=LAT + 0.05)
        interrupted = subprocess.Popen(
            [*CLI, "import", "parcels", str(big)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 45
            while not copying(dsn) and interrupted.poll() is None:
                assert time.monotonic() < deadline, "no COPY seen"
                time.sleep(0.005)
            postmaster = int((found.pgdata / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGKILL)
            interrupted.wait(timeout=60)
        finally:
            if interrupted.poll() is None:
                interrupted.kill()
                interrupted.wait()
        restarted = run("db", "start")
        assert restarted.returncode == 0, restarted.stderr + found.logfile.read_text()
        lost = scalar(dsn, "SELECT count(*) FROM parcels WHERE code LIKE 'LOST-%%'")
        assert lost == (10_000 if interrupted.returncode == 0 else 0)
        assert scalar(dsn, "SELECT count(*) FROM parcels WHERE code NOT LIKE 'LOST-%%'") == 40
        assert "redo" in found.logfile.read_text()  # it did recover from the crash
    finally:
        run("db", "stop")
        pointer = data_dir / "cluster_location"
        if pointer.exists():  # as root the cluster may live outside the data directory
            shutil.rmtree(pointer.read_text().strip(), ignore_errors=True)


def test_a_database_gone_is_said_at_once_and_its_return_seen(
    own_db: str, admin_conninfo: str, tmp_path: Path
) -> None:
    """Found from outside: with PostgreSQL stopped under a running server every request
    waited the pool's 30 s for its 503, which said nothing of when to come back; back, the
    connections its restart broke were still handed out. Here the database stops taking
    connections and the server's are cut, as a stop does."""
    name = psycopg.conninfo.conninfo_to_dict(own_db)["dbname"]
    url = "/collections/parcels/items?limit=1"

    def cut(allow: bool) -> None:
        with psycopg.connect(admin_conninfo, autocommit=True) as db:
            db.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
            if not allow:
                db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )

    with serving(own_db, tmp_path / "serve.log") as (_, base):
        assert httpx.get(f"{base}{url}").status_code == 200
        cut(allow=False)
        try:
            for _ in range(3):
                started = time.monotonic()
                r = httpx.get(f"{base}{url}", timeout=60)
                assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
                assert time.monotonic() - started < 10, "the pool's 30 s wait"
        finally:
            cut(allow=True)
        deadline = time.monotonic() + 20  # the pool makes its connections again within ~7 s
        answers = []
        while time.monotonic() < deadline:
            answers.append(httpx.get(f"{base}{url}", timeout=60).status_code)
            if answers[-1] == 200:
                break
            time.sleep(0.5)
        assert answers[-1] == 200, answers
        # once one has its answer, the others do too: no broken connection left to hand out
        assert all(httpx.get(f"{base}{url}").status_code == 200 for _ in range(5))


def test_a_restore_keeps_a_reference_system_someone_added(own_db: str, tmp_path: Path) -> None:
    """Found from outside: since a restore keeps the database's PostGIS, a row someone added
    to spatial_ref_sys (a local grid) made every restore fail on its duplicate key. The
    archive's rows replace them, as they did when PostGIS was made anew."""
    local = (
        "INSERT INTO spatial_ref_sys SELECT %s, 'local', %s, srtext, proj4text "
        "FROM spatial_ref_sys WHERE srid = 4248"
    )
    with psycopg.connect(own_db, autocommit=True) as db:
        db.execute(local, (990001, 990001))
    archive = tmp_path / "srid.backup"
    assert cli(own_db, "backup", str(archive)).returncode == 0
    with psycopg.connect(own_db, autocommit=True) as db:
        db.execute(local, (990002, 990002))  # added after the backup: not the archive's
    done = cli(own_db, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert "NOTICE" not in done.stderr, done.stderr
    with psycopg.connect(own_db, autocommit=True) as db:
        kept = db.execute("SELECT srid FROM spatial_ref_sys WHERE srid > 990000").fetchall()
        assert kept == [(990001,)]
        assert (
            db.execute("SELECT count(*) FROM spatial_ref_sys WHERE srid = 4326").fetchone()[0] == 1
        )


def test_only_a_server_gone_makes_the_others_wait_less() -> None:
    """Found from outside: every OperationalError set the primary 'down', a deadlock or a
    lock not had as well as a lost connection: a statement anyone can make fail is not one."""
    from psycopg_pool import PoolTimeout

    from geo_comuna.api.problems import unreachable

    for gone in (psycopg.OperationalError("no answer"), PoolTimeout("t")):
        assert unreachable(gone)
    assert unreachable(psycopg.errors.AdminShutdown("stopping"))
    for failed in (psycopg.errors.DeadlockDetected("d"), psycopg.errors.LockNotAvailable("l")):
        assert not unreachable(failed)


def test_a_statement_that_failed_is_not_said_to_be_an_unreachable_database() -> None:
    """A deadlock or a lock not had is an OperationalError too: its 503 says what happened,
    not that the database cannot be reached (found from outside)."""
    from types import SimpleNamespace

    from starlette.requests import Request

    from geo_comuna.api.problems import _unavailable

    app = SimpleNamespace(state=SimpleNamespace())
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    for exc, said in (
        (psycopg.errors.DeadlockDetected("d"), "conflict with another write"),
        (psycopg.OperationalError("gone"), "not reachable"),
    ):
        answer = asyncio.run(_unavailable(Request({**scope, "app": app}), exc))
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert said in json.loads(answer.body)["detail"], answer.body
