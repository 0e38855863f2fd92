"""A commune's package over HTTP (api/package.py) is built once per day and version of the data
and kept: its ETag answers 304, a download cut short goes on with Range, a build longer than a
request may wait goes on after it (503 with Retry-After, then the package), and a build is
bounded by GEO_COMUNA_PACKAGE_SECONDS."""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.api import package as package_api
from geo_comuna.api import scratch
from geo_comuna.api.app import create_app
from geo_comuna.maps.package import GPKG
from geo_comuna.settings import Settings
from tests.live import serving as serve

pytestmark = pytest.mark.anyio
URL = "/communes/EL-MAIZAL/package"


def counted(
    monkeypatch: pytest.MonkeyPatch, builds: list[str], wait: float = 0.0
) -> Callable[..., Awaitable[Any]]:
    """build_package counting its builds (the commune id of each), each ``wait`` s late."""
    real = package_api.build_package

    async def build(conn: AsyncConnection, commune_id: int, *args: Any, **kwargs: Any) -> Any:
        builds.append(commune_id)
        await asyncio.sleep(wait)
        return await real(conn, commune_id, *args, **kwargs)

    monkeypatch.setattr(package_api, "build_package", build)
    return build


@asynccontextmanager
async def serving(
    dsn: str, settings: Settings, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its own pool on ``dsn`` (a build and the requests on connections of
    their own, as served), and a client of it."""
    app = create_app(settings, conninfo=dsn)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers=headers,
            timeout=120,
        ) as client,
    ):
        yield client


async def until_sent(client: httpx.AsyncClient, url: str = URL) -> httpx.Response:
    """Ask again, as Retry-After says, until the package comes (or 30 s)."""
    for _ in range(60):
        r = await client.get(url)
        if r.status_code != 503:
            return r
        await asyncio.sleep(0.5)
    raise AssertionError("the package never came")


async def test_a_package_is_kept_sent_again_and_resumed(
    own_db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[str] = []
    counted(monkeypatch, builds)
    async with (
        serving(own_db, settings) as client,
        await AsyncConnection.connect(own_db, autocommit=True) as conn,
    ):
        first = await client.get(URL)
        second = await client.get(URL)
        assert first.status_code == second.status_code == 200, first.text[:500]
        assert len(builds) == 1 and first.content == second.content
        with zipfile.ZipFile(io.BytesIO(first.content)) as zf:
            assert GPKG in zf.namelist()
        etag, size = first.headers["etag"], len(first.content)
        assert etag == second.headers["etag"] and not etag.startswith("W/")
        assert first.headers["content-length"] == str(size)
        assert 'filename="comuna-EL-MAIZAL.zip"' in first.headers["content-disposition"]

        current = await client.get(URL, headers={"If-None-Match": etag})
        assert current.status_code == 304 and current.headers["etag"] == etag
        # found from outside: Last-Modified moved on at every GET (the use noted in mtime)
        built = first.headers["last-modified"]
        await asyncio.sleep(1.1)
        later = await client.get(URL, headers={"Range": "bytes=10-", "If-Range": built})
        assert later.headers["last-modified"] == built and later.status_code == 206

        # a download cut after 1,000 bytes goes on from there
        rest = await client.get(URL, headers={"Range": "bytes=1000-", "If-Range": etag})
        assert rest.status_code == 206
        assert rest.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
        assert rest.content == first.content[1000:]

        # found from outside: a Range that is not valid was a 400; it is ignored (RFC 9110)
        for invalid in ("bytes=5-1", "bytes=x-y", "items=0-9", "bytes="):
            whole = await client.get(URL, headers={"Range": invalid})
            assert whole.status_code == 200 and whole.content == first.content, invalid
        past = await client.get(URL, headers={"Range": f"bytes={size}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"

        # gzip is not tried on a zip: its length stays known, and ranges keep their meaning
        plain = await client.get(URL, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert plain.headers["content-length"] == str(size) and plain.headers["etag"] == etag

        # any write makes another package; a range of the old one gets the new one whole
        await conn.execute(
            "UPDATE parcels SET notes = 'kept?' WHERE id = (SELECT min(id) FROM parcels)"
        )
        stale = await client.get(URL, headers={"Range": "bytes=1000-", "If-Range": etag})
        assert stale.status_code == 200 and stale.headers["etag"] != etag
    assert len(builds) == 2


async def test_a_member_and_the_public_get_packages_of_their_own(
    own_db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        _, admin_token = await accounts.add_user(conn, "package-admin", "admin", [])
    builds: list[str] = []
    counted(monkeypatch, builds)
    async with serving(own_db, settings) as client:
        public = await client.get(URL)
        admin = await client.get(URL, headers={"Authorization": f"Bearer {admin_token}"})
        again = await client.get(URL, headers={"Authorization": f"Bearer {admin_token}"})
    assert public.status_code == admin.status_code == again.status_code == 200
    assert public.headers["etag"] != admin.headers["etag"] == again.headers["etag"]
    assert len(public.content) < len(admin.content) and len(builds) == 2


async def test_a_long_build_goes_on_after_its_request(
    own_db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request waits compute_seconds; the build it started is not lost when that ends."""
    builds: list[str] = []
    counted(monkeypatch, builds, wait=1.5)
    quick = settings.model_copy(update={"compute_seconds": 0.5})
    async with serving(own_db, quick) as client:
        waited = await client.get(URL, params={"lang": "es"})
        assert waited.status_code == 503 and waited.headers["retry-after"] == "60"
        assert "se está preparando comuna-EL-MAIZAL.zip" in waited.json()["detail"]
        sent = await until_sent(client)
    assert sent.status_code == 200 and len(builds) == 1


async def test_a_build_is_bounded_and_builds_are_few(
    own_db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[str] = []
    counted(monkeypatch, builds, wait=2.0)
    bounded = settings.model_copy(update={"compute_seconds": 5.0, "package_seconds": 0.3})
    async with serving(own_db, bounded) as client:
        r = await client.get(URL)
    assert r.status_code == 503
    assert "took longer than 0.3 s, the most a package may take" in r.json()["detail"]

    # one build at a time and one waiting: a third commune is told to ask again
    busy = settings.model_copy(update={"compute_seconds": 0.5})
    async with serving(own_db, busy) as client:
        answers = [
            await client.get(f"/communes/{code}/package")
            for code in ("EL-MAIZAL", "5-DE-MARZO", "EL-MAIZAL", "MONTE-SINAI")
        ]
        details = [a.json()["detail"] for a in answers]
        assert [a.status_code for a in answers] == [503] * 4
        assert "is being built" in details[0] and "is being built" in details[1]
        assert "is being built" in details[2]  # the same build, waited for again
        assert "building other communes' packages" in details[3]
        assert answers[3].headers["retry-after"] == "60"  # found from outside: it had none
        for code in ("EL-MAIZAL", "5-DE-MARZO"):  # both builds end before the test does
            assert (await until_sent(client, f"/communes/{code}/package")).status_code == 200


async def test_workers_share_their_packages_and_build_each_once(tmp_path: Path) -> None:
    """Two workers' Packages on one folder: while one builds a package (holding its lock),
    the other waits for its file instead of building it again."""
    folder = tmp_path / "shared"
    one, two = (package_api.Packages(lambda: folder, 10**9) for _ in range(2))
    built: list[str] = []

    def build(by: str, seconds: float) -> Callable[[], Awaitable[Path]]:
        async def run() -> Path:
            built.append(by)
            await asyncio.sleep(seconds)
            (tmp_path / by).write_bytes(b"PK" + by.encode())
            return one.keep("k", tmp_path / by, finished=True)

        return run

    first = one.building("k", build("one", 1.0))
    await asyncio.sleep(0.2)  # its lock taken
    second = two.building("k", build("two", 0.0))
    assert await first == await second == folder / "k.zip"
    assert built == ["one"] and (folder / "k.zip").read_bytes() == b"PKone"
    assert not (folder / "k.lock").exists()


async def test_kept_packages_are_bounded_and_unfinished_ones_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "kept"
    packages = package_api.Packages(lambda: folder, 250)
    now = time.time()
    for i, key in enumerate(("a", "b", "c")):
        (tmp_path / key).write_bytes(b"x" * 100)
        packages.keep(key, tmp_path / key, finished=True)
        if key != "c":  # used long ago, "a" first; "c" is in use now
            os.utime(folder / f"{key}.zip", (now - 1000 + i, now - 1000 + i))
    (tmp_path / "d").write_bytes(b"x" * 100)
    packages.keep("d", tmp_path / "d", finished=True)
    assert sorted(p.name for p in folder.glob("*.zip")) == ["c.zip", "d.zip"]
    assert packages.get("a") is None and packages.get("c") is not None

    (tmp_path / "e").write_bytes(b"e")
    unfinished = packages.keep("e", tmp_path / "e", finished=False)
    assert packages.get("e") is not None and unfinished.name.startswith("e.until-")
    later = now + package_api.UNFINISHED_SECONDS + 5
    monkeypatch.setattr(package_api.time, "time", lambda: later)
    assert packages.get("e") is None and not unfinished.exists()


def test_serve_shares_one_folder_among_its_workers(own_db: str, tmp_path: Path) -> None:
    """`serve --workers 2`: each of six new connections may reach either worker; one package
    is built and kept, in the serving process' own scratch directory."""
    with serve(own_db, tmp_path / "serve.log", workers=2) as (proc, base):
        etags = set()
        for _ in range(6):
            r = httpx.get(f"{base}{URL}", timeout=120)  # a connection of its own each time
            assert r.status_code == 200, r.text[:500]
            etags.add(r.headers["etag"])
        [shared] = Path(tempfile.gettempdir()).glob(f"geo_comuna-scratch-{proc.pid}-*")
        kept = list((shared / "packages").glob("*.zip"))
    [etag] = etags
    assert [p.name for p in kept] == [etag.strip(chr(34)) + ".zip"]
    scratch.sweep()  # what the next server does first: a killed server's directory goes
    assert not shared.exists()


async def test_an_unfinished_package_has_an_etag_of_its_own_and_none_kept_is_kept_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found from outside: a package some analysis of which did not finish carried the key a
    complete one carries, so a client holding it got 304s for the complete one later; and with
    GEO_COMUNA_PACKAGE_CACHE_BYTES=0 a build the request could not wait for was never sent
    (each ask built anew) and its files piled up."""
    folder = tmp_path / "none-kept"
    packages = package_api.Packages(lambda: folder, 0)
    (tmp_path / "a").write_bytes(b"a")
    unfinished = packages.keep("k", tmp_path / "a", finished=False)
    (tmp_path / "b").write_bytes(b"b")
    finished = packages.keep("k2", tmp_path / "b", finished=True)
    first = package_api._etag("k", unfinished, unfinished.stat())
    assert first != '"k"' and first.startswith('"k-')
    # a complete build of the same data replaces the unfinished one
    (tmp_path / "a2").write_bytes(b"a2")
    complete = packages.keep("k", tmp_path / "a2", finished=True)
    assert packages.get("k")[0] == complete
    assert sorted(p.name for p in folder.glob("k.*")) == ["k.zip"]
    assert package_api._etag("k2", finished, finished.stat()) == '"k2"'
    # nothing kept past a minute after its last use; the one just kept stays for its asker
    assert packages.get("k") is not None and packages.get("k2") is not None
    monkeypatch.setattr(package_api, "IN_USE_SECONDS", 0.0)
    (tmp_path / "c").write_bytes(b"c")
    packages.keep("k3", tmp_path / "c", finished=True)
    assert sorted(p.name for p in folder.glob("*.zip")) == ["k3.zip"]
