#!/usr/bin/env bash
# The territory-store benchmarks in order (about 5-6 minutes on 2 CPUs, most of it
# import_stages.py). Figures go to stdout and to bench/out/results-<UTC time>.md; progress
# lines go to stderr.
#
#   bash bench/run_all.sh
#
# Uses the bench's own embedded cluster in bench/out/pg (GEO_COMUNA_DATA_DIR overrides it;
# GEO_COMUNA_DATABASE_URL points every script at an existing disposable database instead).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
mkdir -p bench/out
out="bench/out/results-$(date -u +%Y%m%dT%H%M%SZ).md"
started=$(date +%s)
{
    echo "# geo_comuna bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
         "(working tree: $(git status --porcelain 2>/dev/null | wc -l) changed paths)"
    echo
    "$py" bench/make_parcels.py
    echo
    "$py" bench/import_parcels.py
    echo
    "$py" bench/import_stages.py
    echo
    "$py" bench/serve_pages.py
    echo
    "$py" bench/tiles.py
    echo
    "$py" bench/client_pages.py
    echo
    "$py" bench/breakdown.py
    echo
    echo "whole bench: $(( $(date +%s) - started )) s; load average at the end:" \
         "$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
echo "figures saved in $out" >&2
