"""One Settings class from the environment (prefix GEO_COMUNA_), built once and passed down."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_comuna.errors import Said

#: an origin a CSP source list accepts: *, 'self', or scheme://host[:port] (host may be *.x)
_ORIGIN = re.compile(r"\*|'self'|https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")
#: an origin CORS names: * or exactly scheme://host[:port], as a browser sends it
_CORS_ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")

#: the installed package: its files ship inside it (package data), so the defaults below work
#: from a wheel installed anywhere, not only from a checkout
PACKAGE = Path(__file__).resolve().parent


def _xdg_dir(variable: str, fallback: str) -> tuple[Path, str]:
    """An XDG base directory and how it was named: the variable when it holds an absolute
    path (the XDG spec says a relative one is to be ignored), else ``~/fallback``."""
    value = os.environ.get(variable, "")
    if os.path.isabs(value):
        return Path(value), f"${variable}"
    return Path.home() / fallback, f"~/{fallback}"


def recorded_data_dir_file() -> Path:
    """Where `scripts/setup.sh` records a checkout's data directory: one absolute path in
    ``$XDG_CONFIG_HOME/geo_comuna/data_dir`` (default ``~/.config/geo_comuna/data_dir``)."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config")[0] / "geo_comuna" / "data_dir"


def default_data_dir() -> tuple[Path, str]:
    """The data directory when GEO_COMUNA_DATA_DIR is unset, and where that choice comes from.

    Never the working directory: a command run from another folder must reach the same
    database, not start an empty one there. The one recorded at setup comes first (a checkout
    that kept its data in ``.geo_comuna/`` before keeps it), else the per-user XDG data
    directory. Both depend on the user ($HOME): root and a user each have their own."""
    record = recorded_data_dir_file()
    try:
        recorded = record.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        recorded = ""
    except OSError as exc:
        raise ValueError(f"cannot read the data directory recorded in {record}: {exc}") from None
    if recorded:
        if not os.path.isabs(recorded):
            raise ValueError(
                f"{record} records the data directory {recorded!r}: it must be an absolute path"
            )
        return Path(recorded), Said(
            f"recorded at setup in {record}", f"registrado al instalar en {record}"
        )
    base, named = _xdg_dir("XDG_DATA_HOME", ".local/share")
    return base / "geo_comuna", Said(
        f"per-user default ({named}/geo_comuna)",
        f"el predeterminado de cada usuario ({named}/geo_comuna)",
    )


class Settings(BaseSettings):
    """Runtime configuration.

    With ``database_url`` unset geo_comuna runs its own embedded PostgreSQL + PostGIS cluster in
    ``data_dir`` (unix socket only, never TCP); with it set, an existing server is used.
    """

    model_config = SettingsConfigDict(env_prefix="GEO_COMUNA_", env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None, description="libpq URL of an existing PostGIS database; unset = embedded"
    )
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir()[0],
        description="where the embedded cluster lives; unset: the one recorded at setup, else "
        "$XDG_DATA_HOME/geo_comuna (~/.local/share/geo_comuna), never the working directory",
    )
    #: why data_dir is the one it is, in words (`db status`, --verbose): fixed when the
    #: settings are built, since `serve` changes $HOME when it drops root
    _data_dir_from: str = PrivateAttr(default="")
    database_name: str = Field(default="geo_comuna", description="database in the embedded cluster")
    pg_bindir: Path | None = Field(default=None, description="PostgreSQL binaries; auto-detected")
    pg_os_user: str = Field(
        default="postgres", description="unprivileged OS user that runs the cluster when root"
    )

    run_as: str | None = Field(
        default=None,
        description="who `serve` runs as when started as root: it binds its port, then becomes "
        "this unprivileged user; default: pg_os_user; 'root' keeps root (not recommended)",
    )

    host: str = Field(default="127.0.0.1", description="address `serve` binds")
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(
        default=None,
        description="base URL for links and embed snippets, e.g. https://mapas.comuna.example; "
        "unset: the request's own address when its host is trusted (trusted_hosts)",
    )
    trusted_hosts: list[str] = Field(
        default=["localhost", "127.0.0.1", "::1"],
        description="with public_url unset, host names a request may name for absolute links "
        "(besides the address `serve` binds and the one the request reached); '*.example.org' "
        "for its subdomains; any other host gets relative links",
    )
    tile_url: str | None = Field(
        default=None,
        description="basemap tiles for maps, e.g. https://tiles.example/{z}/{x}/{y}"
        ".png; unset: the commune's DEM hillshade or a plain background (works offline)",
    )
    embed_origins: list[str] = Field(
        default=["*"],
        description="who may show ?embed=true maps in an <iframe>: * (any site) or origins "
        'such as ["https://comuna.example"]; every other page is framed by our own only',
    )
    cors_origins: list[str] = Field(
        default=[],
        description="web pages on other sites whose scripts may call the API (CORS): origins "
        'such as ["https://visor.comuna.example"], or ["*"] for any; empty: none (default)',
    )
    map_tile_threshold: int = Field(
        default=5_000,
        ge=1,
        description="a map layer with more features is drawn from vector "
        "tiles (served) or inline geobuf (standalone) instead of inline GeoJSON",
    )

    token_days: int = Field(
        default=365,
        ge=0,
        description="how long a new or rotated token lasts unless `users add|rotate --expires` "
        "says otherwise, days; 0: tokens never expire",
    )
    reads: Literal["public", "token"] = Field(
        default="public", description="public: anyone may read; token: reads need a token too"
    )

    require_if_match: bool = Field(
        default=False,
        description="PUT, PATCH and DELETE of a feature without If-Match get 428: no client "
        "can overwrite an edit it has not seen",
    )

    pool_min_size: int = Field(
        default=2,
        ge=0,
        description="connections each worker opens at start: a request's own and the second "
        "an analysis runs its independent statements on (work.spare_connection)",
    )
    pool_max_size: int = Field(default=10, ge=1)
    read_database_url: str | None = Field(
        default=None,
        description="libpq URLs of hot standbys of the primary (PostgreSQL streaming "
        "replication), comma-separated, or a JSON list: GET requests read there, writes go to "
        "the primary; a standby that fails sends its reads back to the primary. Unset: every "
        "request on the primary",
    )
    read_wait_ms: int = Field(
        default=500,
        ge=0,
        le=60_000,
        description="how long a read by a client that just wrote waits for a standby to "
        "replay that write before it is served by the primary instead, ms",
    )
    tile_cache_dir: Path | None = Field(
        default=None,
        description="a directory for the vector tile cache shared by every worker of `serve` "
        "(and by servers that mount it); unset: each worker keeps its own in memory",
    )
    tile_cache_bytes: int = Field(
        default=64 * 2**20, ge=0, description="what the tile cache holds at most, bytes"
    )
    statement_timeout_ms: int = Field(default=30_000, ge=100, description="per query, ms")

    default_limit: int = Field(default=100, ge=1, description="items per page when not asked")
    max_limit: int = Field(
        default=10_000, ge=1, description="largest page; a larger limit gets this many"
    )
    max_page_geometry_bytes: int = Field(
        default=16 * 2**20,
        ge=1,
        description="stored geometry one page of features carries at most (~1,000,000 "
        "vertices, ~22 MB of GeoJSON); past it the page ends early, its next link going on "
        "from there. It always carries its first feature",
    )
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="JSON write bodies")
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, description="file uploads")
    max_document_bytes: int = Field(
        default=15 * 1024 * 1024,
        ge=1024,
        description="a source document (scan or photo; under max_body_bytes, which its "
        "upload's body is held to)",
    )
    max_features_per_import: int = Field(default=2_000_000, ge=1)
    max_features_per_write: int = Field(
        default=10_000, ge=1, description="features in one POST body (files: the import)"
    )
    max_vertices_per_geometry: int = Field(
        default=50_000,
        ge=4,
        description="coordinates in one geometry, in writes and imports alike (a surveyed "
        "parcel has tens to a few thousand)",
    )
    max_parts_per_geometry: int = Field(
        default=1_000,
        ge=1,
        description="polygons or lines in one multi-geometry, also once a repair has split it",
    )
    max_dem_cells: int = Field(
        default=25_000_000, ge=1, description="width x height of a DEM that may be stored"
    )
    max_dem_bytes: int = Field(
        default=256 * 1024**2,
        ge=1024,
        description="a DEM's size uncompressed (width x height x bytes per cell)",
    )
    max_raster_window_cells: int = Field(
        default=4_000_000,
        ge=10_000,
        description="DEM cells one request reads (hillshade, terrain, elevations); a larger "
        "window is read at coarser cells, and the answer says so",
    )
    compute_seconds: float = Field(
        default=20.0,
        gt=0,
        description="time one request's computation (validation, repair, analysis, picture) "
        "may take before it is a 503",
    )
    package_seconds: float = Field(
        default=300.0,
        gt=0,
        description="time a commune's package may take to build; a request waits for it at "
        "most compute_seconds, then is told to ask again while the build goes on",
    )
    package_cache_bytes: int = Field(
        default=512 * 2**20,
        ge=0,
        description="packages each worker of `serve` keeps once built (per day and version of "
        "the data), bytes; 0: none kept",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="addresses of the proxies in front whose X-Forwarded-For names the client "
        "(comma-separated, e.g. 127.0.0.1 for a proxy on this machine); empty: nobody's",
    )
    rate_per_minute: int = Field(
        default=600,
        ge=0,
        description="requests per minute per client address without a token (0: no limit)",
    )
    heavy_rate_per_minute: int = Field(
        default=30,
        ge=0,
        description="of those, heavy ones (analyses, maps, reports, breakdowns, files)",
    )
    token_rate_per_minute: int = Field(
        default=3_000, ge=0, description="requests per minute per token (0: no limit)"
    )
    token_heavy_rate_per_minute: int = Field(default=300, ge=0, description="of those, heavy ones")
    heavy_requests: int = Field(
        default=4,
        ge=1,
        description="heavy requests served at once; the others wait (up to compute_seconds) "
        "before they take a database connection",
    )
    cached_answers: int = Field(
        default=64,
        ge=0,
        description="expensive answers (analyses, breakdowns, pages of the communes layer) "
        "kept per version of the layers they read; 0 keeps none",
    )
    compute_workers: int = Field(
        default=2, ge=1, description="CPU-heavy steps run at once, each on a thread of its own"
    )
    max_unpacked_bytes: int = Field(
        default=2 * 1024**3, ge=1024, description="what a zipped Shapefile may unpack to"
    )

    styles_path: Path = Field(
        default=PACKAGE / "maps" / "styles.json",
        description="the map styles (colours, labels, popups); default: the package's own. "
        "A planner's edited copy elsewhere survives upgrades",
    )
    web_assets_dir: Path = Field(
        default=PACKAGE / "maps" / "vendor",
        description="the web libraries served under /static/ (Leaflet, VectorGrid, geobuf, "
        "Swagger UI, ReDoc), one folder per npm package; default: the copies inside the "
        "package, made at set-up from npm (scripts/vendor_assets.py)",
    )
    sample_dir: Path = Field(
        default=PACKAGE / "data" / "samples",
        description="the sample territories `load-sample` loads; default: the package's own",
    )
    states_path: Path = Field(
        default=PACKAGE / "data" / "boundaries" / "ve_states.geojson",
        description="Venezuela's state boundaries `load-sample` loads",
    )

    service_bbox: tuple[float, float, float, float] = Field(
        default=(-75.0, -1.0, -58.0, 17.0),
        description="lon/lat envelope every stored geometry must fall in (Venezuela plus margin)",
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_data_dir_is_unset(cls, data: Any) -> Any:
        # GEO_COMUNA_DATA_DIR= (a service file's blank line) would be Path(""): the working
        # directory again
        if isinstance(data, dict) and data.get("data_dir") == "":
            data = {k: v for k, v in data.items() if k != "data_dir"}
        return data

    @model_validator(mode="after")
    def _data_dir_origin(self) -> Settings:
        if "data_dir" not in self.model_fields_set:
            self.data_dir, self._data_dir_from = default_data_dir()
        elif any(k.upper() == "GEO_COMUNA_DATA_DIR" and v for k, v in os.environ.items()):
            self._data_dir_from = "GEO_COMUNA_DATA_DIR"
        else:
            self._data_dir_from = Said("given to Settings", "dado a Settings")
        return self

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        if self.heavy_requests >= self.pool_max_size:
            raise ValueError(
                "heavy_requests must be below pool_max_size: cheap reads keep the difference"
            )
        if self.default_limit > self.max_limit:
            raise ValueError("default_limit must not exceed max_limit")
        for origin in self.embed_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"embed_origins: {origin!r} is not * nor an origin like https://example.org"
                )
        for origin in self.cors_origins:
            if not _CORS_ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"cors_origins: {origin!r} is not * nor an origin like https://example.org"
                )
        try:
            self.read_database_urls  # noqa: B018 - refused at start-up, not at the first read
        except json.JSONDecodeError as exc:
            raise ValueError(f"read_database_url: not a JSON list ({exc})") from None
        w, s, e, n = self.service_bbox
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ValueError("service_bbox must be west,south,east,north in degrees")
        return self

    @property
    def read_database_urls(self) -> list[str]:
        """The standbys of read_database_url, in order (empty: none)."""
        value = (self.read_database_url or "").strip()
        if value.startswith("["):
            urls = json.loads(value)
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise ValueError("read_database_url: a JSON list must hold URLs as strings")
        else:
            urls = value.split(",")
        return [u.strip() for u in urls if u.strip()]

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def data_dir_from(self) -> str:
        """Where data_dir comes from: GEO_COMUNA_DATA_DIR, recorded at setup (and in which
        file), or the per-user default."""
        return self._data_dir_from
