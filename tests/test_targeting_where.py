"""Targeting, where the visitor is: ``visitor.country`` and ``visitor.region`` from the client's
address, looked up offline (the built-in RIR table, or the site owner's MaxMind file); the address
is never stored — only the codes are, on the pageview — so explain, stats and backtests read it
like any field. Behind a trusted proxy the address comes from X-Forwarded-For, from no one else."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from litestar import Request

from api.composition import build_runtime
from api.proactive import client_address
from archive.errors import InvalidInput
from archive.tables import Site
from config.settings import ConfigError, load_settings, trusted_networks
from proactive import backtest, service, store
from proactive import state as visitor_state
from proactive.geo import BuiltinLocator, Location, MaxMindLocator, NoLocator, located
from proactive.rules import compile_all, load_document
from proactive.tables import VisitorMemory
from tests.conftest import LOG_STREAM
from tests.engagement_support import (  # noqa: F401  (fixtures)
    ORIGIN,
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    pageview,
    rule,
    shop,
    stats,
)
from tests.geo_support import PLACES, write_test_database
from tests.test_targeting_when import Bench, at


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_database(tmp_path_factory.mktemp("geo") / "test-city.mmdb")


@pytest.fixture
async def runtime(runtime, settings, clock, database):
    """The engine on a manual clock, reading the test database, behind trusted proxies: the load
    balancer at 127.0.0.1 (the test client's address) and the site's own inside 10.0.0.0/8."""
    geo = msgspec.structs.replace(settings, geoip_database=str(database), trusted_proxies="127.0.0.1,10.0.0.0/8")
    engine_rt = build_runtime(geo, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await engine_rt.start(migrate=False)
    yield engine_rt
    await engine_rt.stop()


async def from_address(visitor: Visitor, address: str | None, *events: dict[str, Any]) -> Any:
    """What the snippet sends, through the proxy at 127.0.0.1, for a client at ``address``."""
    body = {"site_key": visitor.tenant.site["site_key"], "visitor_id": visitor.id, "session_id": "tab-1",
            "events": [{"at": int(visitor.clock.time() * 1000), **e} for e in events]}
    headers = {"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0"}
    if address is not None:
        headers["x-forwarded-for"] = f"{address}, 10.1.2.3"  # the client, then an inner proxy of the site's own
    response = await visitor.client.post("/v1/collect", content=json.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    visitor.received.extend(response.json()["invitations"])
    return response


# --- the lookup ----------------------------------------------------------------------------------


@pytest.mark.parametrize("address,expected", sorted(PLACES.items()))
def test_the_site_owners_maxmind_file_gives_country_and_region(database, address, expected):
    assert MaxMindLocator(database).locate(address) == Location(*expected)


def test_a_record_without_a_country_is_placed_by_its_registration_and_a_region_without_a_code_by_its_name(database):
    locator = MaxMindLocator(database)
    assert locator.locate("175.16.199.1") == Location("CN", None)
    assert locator.locate("2.125.160.216") == Location("GB", "Scotland")
    assert locator.locate("::ffff:81.2.69.160") == Location("GB", "GB-ENG")  # an IPv4 address as IPv6 sockets report it


@pytest.mark.parametrize("address", ["10.0.0.1", "127.0.0.1", "192.168.1.20", "::1", "fd00::1", "8.8.8.8", "unknown", ""])
def test_private_unknown_and_unreadable_addresses_have_no_country(database, address):
    assert MaxMindLocator(database).locate(address) == Location()


def test_the_builtin_table_places_public_addresses_and_no_private_ones():
    locator = BuiltinLocator()
    assert locator.locate("8.8.8.8") == Location("US", None)  # RIR allocations name countries only
    assert locator.locate("2001:4860:4860::8888").country == "US"
    assert locator.locate("10.0.0.1") == Location()
    assert NoLocator().locate("8.8.8.8") == Location()


def test_a_geoip_database_that_is_not_a_file_stops_startup_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="PARLEY_GEOIP_DATABASE"):
        load_settings({"PARLEY_GEOIP_DATABASE": str(tmp_path / "missing.mmdb")})
    assert load_settings({"PARLEY_GEOIP_DATABASE": "off"}).geoip_database == "off"
    assert load_settings({}).geoip_database == "builtin"


def _request(peer: str, forwarded: str | None) -> Request[Any, Any, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "POST", "path": "/v1/collect", "headers": headers, "client": (peer, 5000),
                    "query_string": b"", "app": None, "scheme": "http", "server": ("parley", 80), "root_path": ""})  # type: ignore[typeddict-item]


def test_forwarded_for_names_the_client_only_when_a_trusted_proxy_sent_it():
    trusted = trusted_networks("10.0.0.0/8")
    assert client_address(_request("10.0.0.5", "81.2.69.160, 10.0.0.9"), trusted) == "81.2.69.160"
    assert client_address(_request("89.160.20.112", "81.2.69.160"), trusted) == "89.160.20.112"  # forged: ignored
    assert client_address(_request("10.0.0.5", "81.2.69.160"), []) == "10.0.0.5"  # no proxy trusted


def test_norway_unquoted_in_yaml_is_refused_with_the_reason():
    document = b"rules: [{name: r, site: shop, invite: {message: hi}, when: {field: visitor.country, op: in, value: [NO, SE]}}]"
    with pytest.raises(InvalidInput) as refused:
        compile_all(load_document(document))
    assert refused.value.errors[0].path == "rules[0].when.value" and 'quote them ("NO")' in refused.value.errors[0].message


def test_a_pageview_without_a_location_keeps_the_visitors_last_country():
    bench = Bench(at("2026-11-23T10:00"))
    bench.rules(when={"field": "visitor.country", "op": "eq", "value": "NO"})
    bench.send("pageview", props=located(Location("NO", "NO-03")))
    bench.send("pageview", props={})
    assert (bench.state.country, bench.state.region) == ("NO", "NO-03")
    bench.send("pageview", props=located(Location("SE")))
    assert (bench.state.country, bench.state.region) == ("SE", None)


# --- end to end ----------------------------------------------------------------------------------


NORDIC = {"field": "visitor.country", "op": "in", "value": ["NO", "SE", "DK"]}


async def test_a_country_rule_invites_visitors_from_those_countries_only(client, shop, clock, runtime):
    await import_rules(client, shop, rule("nordic", when=NORDIC))
    oslo, london = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await from_address(oslo, "2a02:cf40::1", pageview("/"))
    await from_address(london, "81.2.69.160", pageview("/"))
    advance(runtime, clock, 1)
    assert [i["rule"] for i in oslo.received + await _beat(oslo)] == ["nordic"]
    assert london.received + await _beat(london) == []
    [outcome] = [o for o in await london.explain() if o["rule"] == "nordic"]
    assert not outcome["condition"] and outcome["trace"][0].startswith("✗ visitor.country = 'GB' in ")


async def _beat(visitor: Visitor) -> list[dict[str, Any]]:
    response = await from_address(visitor, None, {"type": "heartbeat"})
    return list(response.json()["invitations"])


async def test_a_region_rule_reads_iso_3166_2_codes(client, shop, clock, runtime):
    await import_rules(client, shop, rule("washington", when={"field": "visitor.region", "op": "eq", "value": "US-WA"}))
    seattle = Visitor(client, shop, clock)
    await from_address(seattle, "216.160.83.56", pageview("/"))
    [outcome] = [o for o in await seattle.explain() if o["rule"] == "washington"]
    assert outcome["condition"] and "✓ visitor.region = 'US-WA' eq 'US-WA'" in outcome["trace"]


async def test_a_browser_cannot_claim_a_country(client, shop, clock, runtime):
    await import_rules(client, shop, rule("nordic", when=NORDIC))
    faker = Visitor(client, shop, clock)
    await from_address(faker, None, pageview("/", props={"country": "NO", "region": "NO-03"}))
    [outcome] = [o for o in await faker.explain() if o["rule"] == "nordic"]
    assert not outcome["condition"] and "visitor.country = None" in outcome["trace"][0]


async def test_the_address_is_not_stored_only_the_country(client, shop, clock, runtime):
    await import_rules(client, shop, rule("nordic", when=NORDIC))
    visitor = Visitor(client, shop, clock)
    await from_address(visitor, "89.160.20.112", pageview("/"), {"type": "scroll", "props": {"depth": 50}})
    await runtime.engagement.journal.drain()
    crypto = (await runtime.tenants.context(shop.id)).crypto
    events = await store.opened_events(shop.id, crypto)
    assert [e["props"] for e in events if e["type"] == "pageview"] == [{"country": "SE", "region": "SE-E"}]
    assert [e["props"] for e in events if e["type"] == "scroll"] == [{"depth": 50}]  # only pageviews carry the location
    key = await visitor.key(runtime)
    stored = await VisitorMemory.select(VisitorMemory.state).where(VisitorMemory.visitor_hash == key[1]).first()
    assert stored is not None and b"SE-E" not in stored["state"]  # sealed at rest...
    memory = visitor_state.opened(crypto, key[1], stored["state"])
    assert b"SE-E" in memory  # ...and the region is what it holds
    for what in (json.dumps(events, default=str).encode(), memory, LOG_STREAM.getvalue().encode()):
        assert b"89.160.20" not in what


async def test_a_backtest_of_country_rules_decides_what_live_did_and_stats_count_it(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule("nordic", when=NORDIC),
                             rule("britain", when={"field": "visitor.country", "op": "eq", "value": "GB"}, priority=-1))
    for address in ["2a02:cf40::1", "81.2.69.160", "89.160.20.112", "10.9.8.7"]:
        visitor = Visitor(client, shop, clock)
        await from_address(visitor, address, pageview("/"), pageview("/pricing"))
        advance(runtime, clock, 30)
    await runtime.engagement.settle()
    live = sorted((d.at, d.visitor_hash, d.rule_id, d.outcome) for d in runtime.engagement.engine.decisions if d.rule_id in ids.values())
    assert sorted(d[2:] for d in live) == sorted([(ids["nordic"], "sent")] * 2 + [(ids["britain"], "sent")])
    site_id = UUID(shop.site["id"])
    settings = await Site.select(Site.settings).where(Site.id == site_id).first()
    crypto = (await runtime.tenants.context(shop.id)).crypto
    batches = await store.replay_batches(site_id, store.recent_cutoff(clock.time(), 86400), crypto)
    entries = [e for e in runtime.engagement.engine.rules[site_id] if e.id in ids.values()]
    replayed = backtest.replay(entries, site_id, service.site_config(settings["settings"]), batches, clock.time()).decisions
    assert sorted((d.at, d.visitor_hash, d.rule_id, d.outcome) for d in replayed) == live
    assert (await stats(client, shop, ids["nordic"]))["counts"]["sent"] == 2
