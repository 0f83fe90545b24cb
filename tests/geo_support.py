"""A tiny MaxMind-format database for country targeting tests, written with ``mmdb-writer``.

Public addresses (private ones never have a country), mapped as a GeoIP2 City database would be:
"""

from __future__ import annotations

from pathlib import Path

# address → (country, region as visitor.region reads it)
PLACES = {
    "81.2.69.160": ("GB", "GB-ENG"),
    "89.160.20.112": ("SE", "SE-E"),
    "2a02:cf40::1": ("NO", "NO-03"),
    "216.160.83.56": ("US", "US-WA"),
}
NETWORKS = {
    "81.2.69.0/24": {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}, "subdivisions": [{"iso_code": "ENG"}]},
    "89.160.20.0/24": {"country": {"iso_code": "SE"}, "subdivisions": [{"iso_code": "E", "names": {"en": "Östergötland"}}]},
    "2a02:cf40::/29": {"country": {"iso_code": "NO"}, "subdivisions": [{"iso_code": "03", "names": {"en": "Oslo"}}]},
    "216.160.83.0/24": {"country": {"iso_code": "US"}, "subdivisions": [{"iso_code": "WA"}]},
    # a record without a country but with its registration, and one whose subdivision has only a name
    "175.16.199.0/24": {"registered_country": {"iso_code": "CN"}},
    "2.125.160.0/24": {"country": {"iso_code": "GB"}, "subdivisions": [{"names": {"en": "Scotland"}}]},
}


def write_test_database(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="Parley-Test-City", ipv4_compatible=True)
    for network, record in NETWORKS.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
