"""SODA formats: CSV and GeoJSON paged like JSON, and the rows.csv export."""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict

from tests.server.http.flows import publish, refused
from tests.server.http.soda_data import PERMITS


async def text_of(
    api: aiohttp.ClientSession, path: str, **headers: str
) -> tuple[str, CIMultiDict[str]]:
    async with api.get(path, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.text(), CIMultiDict(resp.headers)


async def test_csv_pages_and_quotes_like_hosted(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    query = "$select=permit,fee,issued&$order=permit&$limit=2&$offset=1"
    body, headers = await text_of(api, f"/resource/{ff}.csv?{query}")
    assert body == (
        '"permit","fee","issued"\n"A2","250.5","2026-06-05T13:30:00.000"\n"A3","100",\n'
    )
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["X-SODA2-Fields"] == '["permit","fee","issued"]'
    assert headers["X-SODA2-Types"] == '["text","number","floating_timestamp"]'
    same, _ = await text_of(api, f"/resource/{ff}?{query}", Accept="text/csv")
    assert same == body
    grouped, _ = await text_of(api, f"/resource/{ff}.csv?$select=kind,count(*)&$group=kind")
    assert grouped == '"kind","count"\n"Garden Shed","1"\n"deck","1"\n"fence","2"\n'


async def test_geojson_is_a_paged_feature_collection(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    query = "$select=permit,location,fee&$order=permit&$limit=2&$offset=1"
    async with api.get(f"/resource/{ff}.geojson?{query}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/vnd.geo+json;charset=utf-8"
        assert resp.headers["X-SODA2-Types"] == '["text","point","number"]'
        body = await resp.json(content_type=None)
    assert body == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-122.4, 47.7]},
                "properties": {"permit": "A2", "fee": "250.5"},
            },
            {"type": "Feature", "geometry": None, "properties": {"permit": "A3", "fee": "100"}},
        ],
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
    }
    accepted, _ = await text_of(api, f"/resource/{ff}?{query}", Accept="application/vnd.geo+json")
    async with api.get(f"/resource/{ff}.geojson?{query}") as resp:
        assert accepted == await resp.text()


async def test_rows_csv_download_is_the_whole_export(api: aiohttp.ClientSession) -> None:
    data = (
        b"Permit No,Issued On,Fee,Location\n"
        b"A1,2026-06-04T00:00:00,100,POINT (-122.3 47.6)\n"
        b"A2,2026-06-05T13:30:00,250.5,\n"
    )
    ff, _ = await publish(api, data)
    expected = (
        '"Permit No","Issued On","Fee","Location"\n'
        '"A1","06/04/2026 12:00:00 AM","100","POINT (-122.3 47.6)"\n'
        '"A2","06/05/2026 01:30:00 PM","250.5",\n'
    )
    path = f"/api/views/{ff}/rows.csv?accessType=DOWNLOAD"
    body, headers = await text_of(api, path)
    assert body == expected
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="Rows.csv"'
    assert headers["ETag"].startswith('"')
    inline, headers = await text_of(api, f"/api/views/{ff}/rows.csv")
    assert inline == expected
    assert "Content-Disposition" not in headers


async def test_unknown_format_is_a_400(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    await refused(
        api,
        "GET",
        f"/resource/{ff}.xml",
        (400, "bad_request"),
        "unsupported format '.xml'; use .json, .csv or .geojson",
    )
