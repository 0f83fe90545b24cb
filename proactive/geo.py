"""Where a visitor is: ``visitor.country`` and ``visitor.region`` from the client's IP address,
looked up offline, in this process — no request leaves the server, and the address itself is
never stored, logged or handed to the engine: only the country and region codes are.

Which database (``PARLEY_GEOIP_DATABASE``):

* ``builtin`` (the default): the ``iptocc`` package's table, shipped inside its wheel and rebuilt
  nightly from the five Regional Internet Registries' allocations. Country only (ISO 3166-1
  alpha-2, ``NO``). RIR data names the country a block is *registered* to; it agrees with
  commercial databases for ~95 % of IPv4 addresses — good for "show the Norwegian offer to
  Norway", not for city-level targeting.
* a path to a **MaxMind-format file** (``.mmdb``): the site owner's GeoIP2 / GeoLite2 Country or
  City, DB-IP Lite, or any database with MaxMind's record layout, read with the ``maxminddb``
  package. Country from ``country.iso_code`` (``registered_country`` when a record has no
  ``country``), and — where the database has subdivisions — the region as an ISO 3166-2 code
  (``US-CA``, ``NO-03``), or the subdivision's English name when it carries no code.
* ``off``: no lookup; ``visitor.country`` is never known.

Private, loopback and other non-public addresses have no country (``None``), as do addresses a
database does not cover.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Protocol

import msgspec

BUILTIN = "builtin"
OFF = "off"


class Location(msgspec.Struct, frozen=True):
    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    region: str | None = None  # ISO 3166-2 (``US-CA``), or the subdivision's name without a code


NOWHERE = Location()


class Locator(Protocol):
    def locate(self, address: str) -> Location: ...


def _public(address: str) -> str | None:
    """The address in canonical form, or None when no database can place it."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) if ip.is_global else None


class NoLocator:
    """``PARLEY_GEOIP_DATABASE=off``."""

    def locate(self, address: str) -> Location:
        return NOWHERE


class BuiltinLocator:
    """The RIR-allocation table of the ``iptocc`` wheel: country only."""

    def __init__(self) -> None:
        from iptocc import country_code

        self._country_code = country_code

    def locate(self, address: str) -> Location:
        ip = _public(address)
        if ip is None:
            return NOWHERE
        code = self._country_code(ip)
        return Location(code.upper()) if code else NOWHERE


class MaxMindLocator:
    """A MaxMind-format database file, memory-mapped by ``maxminddb`` (opened once a process)."""

    def __init__(self, path: str | Path) -> None:
        import maxminddb

        self._reader = maxminddb.open_database(str(path))

    def locate(self, address: str) -> Location:
        ip = _public(address)
        if ip is None:
            return NOWHERE
        record = self._reader.get(ip)
        return location_of(record) if isinstance(record, dict) else NOWHERE

    def close(self) -> None:
        self._reader.close()


def location_of(record: dict[str, Any]) -> Location:
    """A MaxMind-layout record → country and region (see the module docstring)."""
    place = record.get("country") or record.get("registered_country") or {}
    code = place.get("iso_code") if isinstance(place, dict) else None
    country = code.upper() if isinstance(code, str) and len(code) == 2 else None
    region = None
    subdivisions = record.get("subdivisions")
    if country and isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
        first = subdivisions[0]
        iso = first.get("iso_code")
        names = first.get("names")
        if isinstance(iso, str) and iso:
            region = f"{country}-{iso.upper()}"
        elif isinstance(names, dict) and isinstance(names.get("en"), str):
            region = names["en"][:64]
    return Location(country, region)


def located(where: Location) -> dict[str, str]:
    """A location as the props the server adds to a pageview (a browser's own are dropped: proactive.events)."""
    props = {"country": where.country} if where.country else {}
    if where.country and where.region:
        props["region"] = where.region
    return props


def locator_for(setting: str) -> Locator:
    """The locator ``PARLEY_GEOIP_DATABASE`` names (validated by config.settings)."""
    if setting == OFF:
        return NoLocator()
    if setting == BUILTIN:
        return BuiltinLocator()
    return MaxMindLocator(setting)
