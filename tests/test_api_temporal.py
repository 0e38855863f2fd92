"""``?datetime=`` on each layer's temporal property, and the collections' extent.temporal.

Expected counts are worked out here from every parcel of the sample territories, read once
without a filter, so that the SQL behind ``datetime`` is checked against plain Python."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
import pytest

from geo_comuna.api.temporal import parse_datetime
from geo_comuna.errors import InvalidInput
from geo_comuna.features.query import Interval
from geo_comuna.layers import LAYERS

pytestmark = pytest.mark.anyio
ITEMS = "/collections/parcels/items"


async def recovered(client: httpx.AsyncClient) -> list[dt.date | None]:
    """recovered_on of every parcel, as the API serves them without a filter."""
    page = (await client.get(ITEMS, params={"limit": 10_000})).json()
    assert page["numberReturned"] == page["numberMatched"] > 100
    return [
        None if (v := f["properties"]["recovered_on"]) is None else dt.date.fromisoformat(v)
        for f in page["features"]
    ]


async def matched(client: httpx.AsyncClient, value: str) -> tuple[int, list[str]]:
    r = await client.get(ITEMS, params={"datetime": value, "limit": 10_000})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["numberReturned"] == page["numberMatched"]
    return page["numberMatched"], [f["properties"]["recovered_on"] for f in page["features"]]


def count(days: list[dt.date | None], keep: Callable[[dt.date], bool]) -> int:
    return sum(1 for d in days if d is not None and keep(d))


async def test_an_instant_matches_its_day(client: httpx.AsyncClient) -> None:
    days = await recovered(client)
    busiest = max(set(d for d in days if d), key=days.count)  # several parcels share a day
    expected = count(days, lambda d: d == busiest)
    assert expected > 1
    for value in (
        busiest.isoformat(),
        f"{busiest.isoformat()}T00:00:00Z",
        f"{busiest.isoformat()}T23:59:59.999Z",
        f"{busiest.isoformat()}T20:30:00-03:00",  # 23:30 UTC, the same day
    ):
        n, found = await matched(client, value)
        assert n == expected, value
        assert set(found) == {busiest.isoformat()}
    # 22:00 in Caracas (-04:00) is 02:00 UTC the next day
    n, _ = await matched(client, f"{busiest.isoformat()}T22:00:00-04:00")
    assert n == count(days, lambda d: d == busiest + dt.timedelta(days=1))


@pytest.mark.parametrize(
    ("instant", "interval", "function"),
    [
        ("{d}T12:00:00Z", "TIMESTAMP('{d}T12:00:00Z')", "T_INTERSECTS"),
        ("{d}T12:00:00Z/..", "INTERVAL('{d}T12:00:00Z', '..')", "T_INTERSECTS"),
        ("../{d}T12:00:00Z", "INTERVAL('..', '{d}T12:00:00Z')", "T_INTERSECTS"),
        (
            "{d}T00:00:00Z/{d}T00:00:00Z",
            "INTERVAL('{d}T00:00:00Z', '{d}T00:00:00Z')",
            "T_INTERSECTS",
        ),
    ],
)
async def test_datetime_and_a_temporal_filter_agree(
    client: httpx.AsyncClient, instant: str, interval: str, function: str
) -> None:
    """GDAL and OWSLib send datetime=, QGIS 3.28+ a CQL2 temporal function: for the same
    question they got 1 and 0 parcels (2 and 1 for the open interval), the filter taking a
    date for its midnight. The date is its whole day in both; the counts are worked out here
    from every parcel's date."""
    days = [d for d in await recovered(client) if d is not None]
    d = days[len(days) // 2]
    at = dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.UTC)
    expected = {
        "{d}T12:00:00Z": sum(1 for x in days if x == d),
        "{d}T12:00:00Z/..": sum(1 for x in days if x >= d),
        "../{d}T12:00:00Z": sum(1 for x in days if x <= at.date()),
        "{d}T00:00:00Z/{d}T00:00:00Z": sum(1 for x in days if x == d),
    }[instant]
    count, _ = await matched(client, instant.format(d=d))
    r = await client.get(
        ITEMS,
        params={"filter": f"{function}(recovered_on, {interval.format(d=d)})", "limit": 10_000},
    )
    assert r.status_code == 200, r.text
    assert count == r.json()["numberMatched"] == expected > 0


async def test_a_day_against_an_instant_within_it(client: httpx.AsyncClient) -> None:
    """T_BEFORE, T_AFTER and T_DISJOINT of a date and a timestamp within some day: that day is
    neither before, after nor disjoint from it (its whole day holds the instant)."""
    days = [d for d in await recovered(client) if d is not None]
    d = days[len(days) // 3]
    expected = {
        "T_BEFORE": sum(1 for x in days if x < d),
        "T_AFTER": sum(1 for x in days if x > d),
        "T_DISJOINT": sum(1 for x in days if x != d),
    }
    for function, count in expected.items():
        where = f"{function}(recovered_on, TIMESTAMP('{d}T18:30:00Z'))"
        r = await client.get(ITEMS, params={"filter": where, "limit": 10_000})
        assert r.status_code == 200 and r.json()["numberMatched"] == count > 0, (where, r.text)


async def test_a_closed_interval_includes_both_ends(client: httpx.AsyncClient) -> None:
    days = await recovered(client)
    dated = sorted(d for d in days if d)
    start, end = dated[len(dated) // 4], dated[3 * len(dated) // 4]
    expected = count(days, lambda d: start <= d <= end)
    n, found = await matched(client, f"{start}/{end}")
    assert n == expected and 0 < n < len(dated)
    assert min(found) == start.isoformat() and max(found) == end.isoformat()
    n, _ = await matched(client, f"{start}T12:00:00Z/{end}T00:00:00Z")
    assert n == expected  # each end reaches into its day


async def test_open_intervals(client: httpx.AsyncClient) -> None:
    days = await recovered(client)
    cut = dt.date(2015, 1, 1)
    after = count(days, lambda d: d >= cut)
    before = count(days, lambda d: d <= cut)
    assert 0 < after < len(days) and 0 < before < len(days)
    assert (await matched(client, "2015-01-01/.."))[0] == after
    assert (await matched(client, "2015-01-01/"))[0] == after
    assert (await matched(client, "../2015-01-01"))[0] == before
    assert (await matched(client, "/2015-01-01T00:00:00Z"))[0] == before
    # parcels never recovered have no date: they are in no interval, even an unbounded one
    assert (await matched(client, "../.."))[0] == count(days, lambda d: True) < len(days)


async def test_qgis_bounds_for_no_bound(client: httpx.AsyncClient) -> None:
    """QGIS turns ``recovered_on >= '2015-01-01'`` into an interval up to year 9999 and
    ``<=`` into one from year 0000, which Python has no date for."""
    days = await recovered(client)
    n, _ = await matched(client, "2015-01-01T00:00:00.000Z/9999-12-31T00:00:00Z")
    assert n == count(days, lambda d: d >= dt.date(2015, 1, 1))
    n, _ = await matched(client, "0000-01-01T00:00:00Z/2015-01-01T00:00:00.000Z")
    assert n == count(days, lambda d: d <= dt.date(2015, 1, 1))


async def test_datetime_combines_with_other_filters(client: httpx.AsyncClient) -> None:
    page = (await client.get(ITEMS, params={"limit": 10_000, "commune": "EL-MAIZAL"})).json()
    expected = sum(
        1
        for f in page["features"]
        if (v := f["properties"]["recovered_on"]) and v.startswith("2009")
    )
    r = await client.get(
        ITEMS, params={"commune": "EL-MAIZAL", "datetime": "2009-01-01/2009-12-31", "limit": 1}
    )
    assert r.json()["numberMatched"] == expected > 0
    nxt = next(link["href"] for link in r.json()["links"] if link["rel"] == "next")
    assert "datetime=2009-01-01%2F2009-12-31" in nxt  # paging keeps the filter


async def test_communes_filter_by_founded(client: httpx.AsyncClient) -> None:
    page = (await client.get("/collections/communes/items", params={"limit": 1000})).json()
    founded = [f["properties"]["founded"] for f in page["features"] if f["properties"]["founded"]]
    assert founded
    r = await client.get("/collections/communes/items", params={"datetime": founded[0]})
    assert r.json()["numberMatched"] == founded.count(founded[0])


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2020-13-01",
        "2020-02-30",
        "2020-05-01T25:00:00Z",
        "2020-05-01T10:00:00+24:00",
        "..",
        "",
        "2021-01-01/2020-01-01",
        "2020-01-01/2020-02-01/2020-03-01",
        "2020-05-01T10:00Z",
    ],
)
async def test_bad_datetimes_are_400(client: httpx.AsyncClient, value: str) -> None:
    r = await client.get(ITEMS, params={"datetime": value})
    assert r.status_code == 400, (value, r.text)
    assert "datetime" in r.json()["detail"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2015-13-01", "no existe el mes 13"),
        ("2015-02-29", "2015-02 tiene 28 días"),
        ("2015-02-01T24:00:00Z", "no existe la hora 24"),
        ("2015-02-01T10:60:00Z", "no existe el minuto 60"),
        ("2015-02-01T10:00:00+25:00", "ninguna zona horaria dista +25:00 de UTC"),
    ],
)
async def test_a_moment_that_does_not_exist_says_which_part_in_spanish(
    client: httpx.AsyncClient, value: str, why: str
) -> None:
    """Found from outside: Python's own words ("month must be in 1..12") ended a Spanish
    answer."""
    r = await client.get("/collections/parcels/items", params={"datetime": value, "lang": "es"})
    assert r.status_code == 400 and f"no es un momento que exista ({why})" in r.json()["detail"]
    assert "must be" not in r.json()["detail"]


async def test_a_layer_without_time_refuses_datetime(client: httpx.AsyncClient) -> None:
    r = await client.get("/collections/dwellings/items", params={"datetime": "2020-01-01"})
    assert r.status_code == 400 and "no date" in r.json()["detail"]


def test_parse_datetime_edges() -> None:
    assert parse_datetime(None) is None
    assert parse_datetime("2020-05-01") == Interval(dt.date(2020, 5, 1), dt.date(2020, 5, 1))
    assert parse_datetime("2016-12-31T23:59:60Z") == Interval(
        dt.date(2016, 12, 31), dt.date(2016, 12, 31)
    )
    assert parse_datetime("0001-01-01T01:00:00+02:00").start == dt.date.min
    assert parse_datetime("9999-12-31T23:00:00-05:00").end == dt.date.max
    assert parse_datetime("../..") == Interval(None, None)
    # GDAL 3.6 writes a date field's value with a bare T
    assert parse_datetime("2015-01-01T/2016-12-31T") == Interval(
        dt.date(2015, 1, 1), dt.date(2016, 12, 31)
    )
    for bad in ("2015-01-01 ", "2015-01-01TT", "2015-01-01 T"):
        with pytest.raises(InvalidInput):
            parse_datetime(bad + "x" if bad.endswith(" ") else bad)
    with pytest.raises(InvalidInput):
        parse_datetime("2020-05-01T10:00:00+99:00")


async def test_extent_temporal_spans_the_dated_features(client: httpx.AsyncClient) -> None:
    days = [d for d in await recovered(client) if d]
    parcels = (await client.get("/collections/parcels")).json()
    temporal = parcels["extent"]["temporal"]
    assert temporal["interval"] == [[f"{min(days)}T00:00:00Z", f"{max(days)}T23:59:59Z"]]
    assert temporal["trs"] == "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
    listed = {c["id"]: c for c in (await client.get("/collections")).json()["collections"]}
    assert listed["parcels"]["extent"]["temporal"] == temporal
    for name, layer in LAYERS.items():
        assert ("temporal" in listed[name].get("extent", {})) == (layer.temporal is not None)


async def test_extent_temporal_follows_writes(client: httpx.AsyncClient) -> None:
    from tests.factories import feature

    body = feature(LAYERS["parcels"], commune="EL-MAIZAL", recovered_on="2024-02-29")
    assert (await client.post(ITEMS, json=body)).status_code == 201
    temporal = (await client.get("/collections/parcels")).json()["extent"]["temporal"]
    assert temporal["interval"][0][1] == "2024-02-29T23:59:59Z"


@pytest.mark.parametrize(
    ("lang", "written"),
    [
        ("cql2-text", "recovered_on >= TIMESTAMP('2020-01-17T12:00:00-25:00')"),
        ("cql2-text", "T_AFTER(recovered_on, timestamp('2020-01-17T12:00:00.5+01:60'))"),
        (
            "cql2-json",
            '{"op": ">=", "args": [{"property": "recovered_on"}, '
            '{"timestamp": "2020-01-17T12:00:00+24:00"}]}',
        ),
        ("cql2-text", "T_INTERSECTS(recovered_on, INTERVAL('2015-01-01T00:00:00-25:00', '..'))"),
        (
            "cql2-json",
            '{"op": "t_intersects", "args": [{"property": "recovered_on"}, '
            '{"interval": ["2015-01-01T00:00:00Z", "2020-01-01T00:00:00+01:60"]}]}',
        ),
    ],
)
async def test_a_filters_offset_no_zone_has_is_refused_as_datetimes_is(
    client: httpx.AsyncClient, lang: str, written: str
) -> None:
    """Found from outside: ?datetime= refused -25:00 and the CQL2 parser moved a TIMESTAMP
    with it to UTC as if it were a zone, so the filter was applied."""
    r = await client.get(ITEMS, params={"filter": written, "filter-lang": lang, "lang": "es"})
    assert r.status_code == 400, r.text
    assert "ninguna zona horaria dista" in r.json()["detail"]
    fine = written.replace("-25:00", "-04:00").replace("+01:60", "+01:00")
    fine = fine.replace("+24:00", "+23:59")
    r = await client.get(ITEMS, params={"filter": fine, "filter-lang": lang})
    assert r.status_code == 200, r.text
