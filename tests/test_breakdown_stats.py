"""Statistics after a bulk load (io/bulk.py analyze_after_load): the breakdown right after an
import is the one computed afresh, so it must be planned on the table as the import left it,
not as it was before (empty after a truncation, a tenth of its size)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg

from tests.factories import LAT
from tests.live import CLI
from tests.test_durability import parcels_file

ROWS = 5_000  # under BULK_ROWS: the indexes are kept, nothing else refreshes the statistics


def _stats(db: psycopg.Connection) -> tuple[float, object]:
    """(reltuples of parcels, when it was last analysed by hand or by an import)."""
    return db.execute(
        "SELECT c.reltuples, s.last_analyze FROM pg_class c "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'parcels'::regclass"
    ).fetchone()


def _estimate(db: psycopg.Connection, commune: int) -> float:
    """The planner's rows for the parcels of ``commune``."""
    plan = db.execute(
        "EXPLAIN (FORMAT JSON) SELECT * FROM parcels WHERE commune_id = %s", (commune,)
    ).fetchone()[0]
    return (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]["Plan Rows"]


def test_a_bulk_import_leaves_fresh_statistics(own_db: str, tmp_path: Path) -> None:
    """The layer truncated and analysed empty (a state the issue's slow breakdown came
    from), then 5,000 parcels imported through the CLI: the import analysed the table
    before it committed, so the planner counts 5,000 parcels, not none."""
    with psycopg.connect(own_db, autocommit=True) as db:
        db.execute("TRUNCATE parcels CASCADE")
        db.execute("ANALYZE parcels")
        emptied, analysed = _stats(db)
        assert emptied == 0 and analysed is not None
    upload = parcels_file(tmp_path / "p.gpkg", ROWS, "STATS")
    env = {**os.environ, "GEO_COMUNA_DATABASE_URL": own_db}
    done = subprocess.run(
        [*CLI, "import", "parcels", str(upload), "--commune", "EL-MAIZAL"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(own_db, autocommit=True) as db:
        tuples, again = _stats(db)
        assert again > analysed
        assert tuples == ROWS  # a sample of 30,000 rows holds them all: exact
        (commune, held) = db.execute(
            "SELECT commune_id, count(*) FROM parcels GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        assert held == ROWS
        assert _estimate(db, commune) > 0.9 * ROWS

    # a small import into a big table leaves the statistics to autovacuum
    small = parcels_file(tmp_path / "s.gpkg", 50, "SMALL", lat=LAT + 0.01)
    done = subprocess.run(
        [*CLI, "import", "parcels", str(small)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(own_db, autocommit=True) as db:
        assert _stats(db)[1] == again  # (autovacuum may analyse it: last_autoanalyze)
