"""Every endpoint of /openapi.json fuzzed by schemathesis against a real server on its own
database: boundary values and random cases, never a 5xx.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from geo_comuna.layers import LAYERS
from tests.live import add_user, serving

FUZZ_CONFIG = """
[dictionaries.layers]
values = {layers}
[dictionaries.communes]
values = ["5-DE-MARZO", "EL-MAIZAL", "MONTE-SINAI", "1", "4"]
[dictionaries.features]
values = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
[dictionaries.analyses]
values = {analyses}

[parameters]
"path.collection_id" = {{ dictionary = "layers", probability = 0.9 }}
"path.layer" = {{ dictionary = "layers", probability = 0.9 }}
"path.commune" = {{ dictionary = "communes", probability = 0.9 }}
"path.feature_id" = {{ dictionary = "features", probability = 0.9 }}
"path.name" = {{ dictionary = "analyses", probability = 0.9 }}
"path.analysis" = {{ dictionary = "analyses", probability = 0.9 }}
"""


def _fuzz(base: str, token: str, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """One schemathesis run over every operation of the server's /openapi.json (~90: each
    layer and each analysis has its own paths). One worker: CPython 3.11's ast.parse is not
    safe in two threads at once (gh-106905), and Hypothesis parses lambdas while generating
    cases, so two workers end, often, in the fuzzer's own SystemError ("AST constructor
    recursion depth mismatch"); one thread costs little, the GIL held most of the time."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{base}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "6",
            "--phases",
            "coverage,fuzzing",
            "--workers",
            "1",
            "--request-timeout",
            "40",
            "--generation-database",
            "none",
            "--seed",
            "20261127",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=480,
    )


def test_schemathesis_finds_no_server_error(own_db: str, tmp_path: Path) -> None:
    """Every operation of /openapi.json, as an admin (so writes get past authentication),
    against a real server on its own database: schemathesis' boundary values ("coverage")
    and at most 6 random cases per operation, path parameters mostly taken from real ones.
    On failure the output shows a curl command reproducing each 5xx."""
    from geo_comuna.analysis.registry import all_analyses

    token = add_user(own_db, "fuzzer", "admin")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        FUZZ_CONFIG.format(
            layers=json.dumps(list(LAYERS)), analyses=json.dumps(list(all_analyses()))
        )
    )
    with serving(own_db, tmp_path / "serve.log") as (_, base):
        run = _fuzz(base, token, config, tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, run.stdout[-3000:]
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) > 20, run.stdout[-3000:]
