#!/usr/bin/env bash
# Sets geo_comuna up on Debian/Ubuntu: PostgreSQL + PostGIS (apt), the web libraries (npm), a
# virtualenv in .venv with the package (pip). Idempotent: a second run only checks. With --test it also installs what
# the tests and benchmarks need: Chromium + ChromeDriver for the browser checks, gdal-bin for
# the ogr2ogr comparison and the GDAL client tests, poppler-utils to read the parcel sheets, QGIS (python3-qgis, qgis-providers) for the
# QGIS client tests.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null && SUDO="sudo" || true
fi

have_postgis() {
    ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1
}

apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "Not a Debian/Ubuntu system: install $* yourself (see README)." >&2
        return 1
    fi
    if [[ -z "${APT_UPDATED:-}" ]]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# The Python the virtualenv is built on. `serve` started as root answers requests as an
# unprivileged user (GEO_COMUNA_RUN_AS, default postgres), who must be able to run it: as root,
# the system's Python 3.11+ rather than one under /root (pyenv, say), which no one else reads.
PYTHON=python3
if [[ $(id -u) -eq 0 ]] && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        2>/dev/null; then
    PYTHON=/usr/bin/python3
fi

missing=()
command -v "$PYTHON" >/dev/null || missing+=(python3)
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null || missing+=(util-linux)
if ((want_test)); then
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    command -v ogr2ogr >/dev/null || missing+=(gdal-bin)
    # pdftotext and pdftoppm: the parcel sheets' tests read the PDFs as text
    command -v pdftotext >/dev/null || missing+=(poppler-utils)
    # QGIS (Debian's, headless) for the client tests: its Python bindings and the OGC API -
    # Features provider, run by the system's Python (tests/qgis_layer.py)
    dpkg -s python3-qgis >/dev/null 2>&1 || missing+=(python3-qgis)
    dpkg -s qgis-providers >/dev/null 2>&1 || missing+=(qgis-providers)
fi
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
if ! have_postgis; then
    pg_major=$(ls /usr/lib/postgresql | sort -n | tail -1)
    echo "== installing PostGIS for PostgreSQL $pg_major"
    apt_install "postgresql-${pg_major}-postgis-3"
fi

# web libraries (Leaflet, VectorGrid, geobuf for maps; Swagger UI, ReDoc for the API docs) served
# by the app itself: from npm, pinned by package-lock.json, never from a CDN; then copied into the
# package (geo_comuna/maps/vendor/, package data) so an installed wheel carries them too
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    command -v npm >/dev/null || apt_install npm
    echo "== installing the web libraries (npm ci)"
    npm ci --no-audit --no-fund --ignore-scripts
fi
"$PYTHON" scripts/vendor_assets.py

if [[ ! -x .venv/bin/python ]]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
extras="."
((want_test)) && extras=".[test]"
stamp=".venv/.installed-${want_test}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" || setup.py -nt "$stamp" ]]; then
    echo "== installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$extras"
    touch "$stamp"
fi
# geo_comuna's own bytecode, as pip writes it for a regular install: an editable install leaves
# it to the first import, which PYTHONDONTWRITEBYTECODE (set on some machines) forbids, and then
# every command compiles the package again (~0.2 s). Only stale files are compiled.
.venv/bin/python -m compileall -q geo_comuna
# Where the embedded database lives: never the working directory, so every command reaches the
# same one wherever it is run (README, "The database"). A checkout that kept its database in
# .geo_comuna/ before keeps it: that path is recorded for this user, unless GEO_COMUNA_DATA_DIR
# names a data directory or one is recorded already. Otherwise nothing is recorded and the
# per-user default ($XDG_DATA_HOME/geo_comuna, ~/.local/share/geo_comuna) is used.
config_home="${XDG_CONFIG_HOME:-}"
[[ "$config_home" == /* ]] || config_home="$HOME/.config"
record="$config_home/geo_comuna/data_dir"
if [[ -z "${GEO_COMUNA_DATA_DIR:-}" && ! -s "$record" ]] \
        && [[ -e .geo_comuna/pg/data/PG_VERSION || -e .geo_comuna/cluster_location ]]; then
    mkdir -p "$(dirname "$record")"
    echo "$PWD/.geo_comuna" >"$record"
    echo "== this checkout's database in .geo_comuna/ stays in use: recorded in $record"
fi
.venv/bin/python -c 'from geo_comuna.cli.db import which_database
from geo_comuna.settings import Settings
print("== database:", which_database(Settings()))' || true
echo "== ready: .venv/bin/geo-comuna --help"
