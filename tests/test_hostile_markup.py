"""Script injection: HTML in a commune's name and a parcel's notes is shown as text in every
map, report and embed snippet, never run as markup.
"""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection

from tests.factories import feature
from tests.hostile import PARCELS

pytestmark = pytest.mark.anyio

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


async def test_script_injection_is_escaped_in_maps_and_reports(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """A commune name and parcel notes carrying HTML: every page shows them as text (escaped
    in HTML, \\u003c inside the page's JSON), never as markup."""
    commune = "EL-MAIZAL"
    cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (commune,))
    commune_id = (await cur.fetchone())[0]
    r = await client.patch(
        f"/collections/communes/items/{commune_id}",
        json={"properties": {"name": f"El Maizal {SCRIPT}", "source": IMG}},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/collections/parcels/items",
        json=feature(PARCELS, commune, notes=f"{IMG} {SCRIPT}", code=f"X{SCRIPT}"),
    )
    assert r.status_code == 201, r.text
    pages = [
        f"/maps/communes/{commune}",
        f"/maps/communes/{commune}?standalone=true",
        f"/maps/communes/{commune}?embed=true",
        f"/maps/communes/{commune}/water-hookups",
        f"/communes/{commune}/report",
        f"/communes/{commune}/report?download=true",
        "/maps/national",
        f"/maps/communes/{commune}/embed-snippet",
    ]
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert SCRIPT not in r.text and IMG not in r.text, path
        assert "alert(1)" in r.text or "embed-snippet" in path or "national" in path, path
    snippet = (await client.get(f"/maps/communes/{commune}/embed-snippet")).json()
    assert "<script" not in snippet["html"] and "&lt;script&gt;" in snippet["html"]
