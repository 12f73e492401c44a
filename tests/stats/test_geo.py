"""A view's country: the CDN's headers behind a trusted proxy only, else the owner's GeoIP database (a small
.mmdb the test writes), never the address stored."""

from __future__ import annotations

import pytest

from service.core.config import ConfigError
from service.stats import geo

from .. import mmdb
from ..helpers import BACKENDS, BROWSER, fold

TOKEN = "correct horse battery staple"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NETWORKS = {
    "198.51.100.0/24": {"country": {"iso_code": "DE", "names": {"en": "Germany"}}, "continent": {"code": "EU"}},
    "2001:db8::/32": {"registered_country": {"iso_code": "FR"}},  # no country: the registered one
    "203.0.113.0/28": {"country": {"iso_code": "<b>"}},  # hostile data in the owner's file: not a country
}


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "country.mmdb"
    mmdb.write(path, NETWORKS)
    geo._reader.cache_clear()
    geo._lookup.cache_clear()
    yield str(path)
    geo._reader.cache_clear()
    geo._lookup.cache_clear()


def view(client, ip, headers=None):
    answer = client.post("/api/visitors", json={"path": "/"}, headers={**BROWSER, **(headers or {})},
                         environ_base={"REMOTE_ADDR": ip})
    assert answer.status_code == 200 and answer.json["counted"] is True
    return answer


def countries(client) -> dict:
    fold(client.application)
    rows = client.get("/api/stats?range=today", headers=BEARER).json["tables"]["countries"]
    return {row["value"]: row["count"] for row in rows}


@pytest.mark.parametrize("backend", BACKENDS)
def test_country_from_the_owners_database_without_storing_the_address(make_app, database, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, GEOIP_DATABASE=database, VISITOR_RATE_LIMIT="off")
    client = app.test_client()
    for ip in ("198.51.100.7", "::ffff:198.51.100.8", "2001:db8::1", "203.0.113.5", "192.0.2.1", "fe80::1%eth0"):
        view(client, ip)
    # headers are not believed without a trusted proxy: the database decides
    view(client, "198.51.100.9", headers={"CF-IPCountry": "US", "CloudFront-Viewer-Country": "US"})
    assert countries(client) == {"DE": 3, "FR": 1, "(unknown)": 3}
    stored = repr(list(app.extensions["vitae.storage"].export()))
    assert "198.51.100" not in stored and "2001:db8" not in stored and "192.0.2.1" not in stored


def test_behind_a_trusted_proxy_the_cdn_headers_come_first(make_app, database):
    client = make_app(STATS_TOKEN=TOKEN, GEOIP_DATABASE=database, TRUSTED_PROXIES="1",
                      VISITOR_RATE_LIMIT="off").test_client()
    visitors = [
        ({"CloudFront-Viewer-Country": "JP", "CF-IPCountry": "US"}, "JP"),  # CloudFront's first (AWS)
        ({"CF-IPCountry": "BR"}, "BR"),  # Cloudflare in front
        ({"CF-IPCountry": "XX"}, "DE"),  # Cloudflare does not know: the database does
        ({"CF-IPCountry": "<script>"}, "DE"), ({"CF-IPCountry": "de"}, "DE"), ({"CF-IPCountry": "DEU"}, "DE"),
        ({"CF-IPCountry": "D\u0301E"}, "DE"), ({"CloudFront-Viewer-Country": "\u202eUS"}, "DE"),
    ]
    for n, (headers, _) in enumerate(visitors):
        view(client, "10.0.0.2", headers={**headers, "X-Forwarded-For": f"198.51.100.{n}",
                                          "User-Agent": f"{BROWSER['User-Agent']} v/{n}"})
    expected: dict[str, int] = {}
    for _, country in visitors:
        expected[country] = expected.get(country, 0) + 1
    assert countries(client) == expected


def test_origin_secret_makes_the_cdn_headers_trusted(make_app):
    client = make_app(STATS_TOKEN=TOKEN, ORIGIN_SECRET="s" * 32).test_client()
    view(client, "203.0.113.7", headers={"X-Origin-Verify": "s" * 32, "CloudFront-Viewer-Country": "NZ"})
    fold(client.application)
    rows = client.get("/api/stats?range=today&compare=none", headers={**BEARER, "X-Origin-Verify": "s" * 32}).json
    assert rows["tables"]["countries"] == [{"value": "NZ", "count": 1}]


def test_without_a_database_or_proxy_the_country_is_unknown(make_app):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    view(client, "198.51.100.7", headers={"CloudFront-Viewer-Country": "DE", "CF-IPCountry": "DE"})
    assert countries(client) == {"(unknown)": 1}


def test_a_missing_database_stops_start_up(make_app, tmp_path):
    with pytest.raises(ConfigError) as raised:
        make_app(GEOIP_DATABASE=str(tmp_path / "absent.mmdb"))
    assert "GEOIP_DATABASE" in str(raised.value)


def _damaged_metadata(path) -> bytes:
    """A real database whose metadata has one key misspelt (one byte changed, as on a damaged disk)."""
    mmdb.write(path, NETWORKS)
    data = path.read_bytes()
    assert data.count(b"node_count") == 1
    return data.replace(b"node_count", b"node_cXunt")


@pytest.mark.parametrize(("content", "error"), [(lambda path: b"not a database" * 100, "InvalidDatabaseError"),
                                                (_damaged_metadata, "TypeError")], ids=["junk", "metadata"])
def test_a_corrupt_database_leaves_countries_unknown_and_says_so_once(make_app, tmp_path, caplog, content, error):
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(content(broken))
    geo._reader.cache_clear()
    geo._lookup.cache_clear()
    client = make_app(STATS_TOKEN=TOKEN, GEOIP_DATABASE=str(broken), VISITOR_RATE_LIMIT="off").test_client()
    for n in range(3):
        view(client, f"198.51.100.{n}")
    assert countries(client) == {"(unknown)": 3}
    assert [r.message for r in caplog.records if "GEOIP_DATABASE" in r.message] == [
        f"GEOIP_DATABASE cannot be read, countries stay unknown until a restart: {error}"]
    geo._reader.cache_clear()


def test_country_codes_are_two_capital_letters_only():
    assert [geo.code(v) for v in ("DE", "de", "XX", "DEU", "", None, 12, "D", "É\u0301")] == [
        "DE", None, None, None, None, None, None, None, None]
