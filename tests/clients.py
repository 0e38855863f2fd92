"""What the tests of real clients (GDAL, OWSLib, QGIS) share: a real `geo-comuna serve` on a
database of its own for a whole test module, and the requests its log says it answered."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from psycopg.conninfo import make_conninfo

from geo_comuna.db.pool import with_options
from geo_comuna.settings import Settings
from tests.conftest import _drop, _recreate
from tests.live import serving

#: uvicorn's access log line: client - "METHOD /path?query HTTP/1.1" status
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


@dataclass(frozen=True)
class Request:
    """One request the server answered, as its access log has it."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class Live:
    base: str
    dsn: str
    log: Path

    def mark(self) -> int:
        """Where the log ends now: ``requests(since=mark)`` reads only what follows."""
        return self.log.stat().st_size

    def requests(self, since: int = 0) -> list[Request]:
        """What the log says was answered since ``since``. A response's line is written
        just after the response (api/access_log.py): a request of our own, once its line
        is there, says every line before it is too."""
        settle = f"/settle-{uuid.uuid4().hex}"  # no such page: a 404, and its line
        assert httpx.get(f"{self.base}{settle}").status_code == 404
        deadline = time.monotonic() + 10
        while True:
            with open(self.log, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
            if settle in text:
                break
            assert time.monotonic() < deadline, f"no access line for {settle}: {text[-2000:]}"
            time.sleep(0.02)
        out = []
        for match in _ACCESS.finditer(text):
            target = urlsplit(match["target"])
            query = dict(parse_qsl(target.query, keep_blank_values=True))
            if not target.path.startswith("/settle-"):
                out.append(Request(match["method"], target.path, query, int(match["status"])))
        return out


@contextmanager
def live_server(
    admin_conninfo: str, template_db: str, settings: Settings, log: Path, **env: str
) -> Iterator[Live]:
    """`geo-comuna serve` (tests/live.py) on a copy of the template database (states and
    sample territories), both gone at the end."""
    name = f"geo_comuna_c_{uuid.uuid4().hex[:10]}"
    _recreate(admin_conninfo, name, template_db)
    dsn = with_options(make_conninfo(admin_conninfo, dbname=name), settings)
    try:
        with serving(dsn, log, **env) as (_, base):
            yield Live(base, dsn, log)
    finally:
        _drop(admin_conninfo, name)
