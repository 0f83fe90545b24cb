"""Tenant settings: PUT replaces them whole, PATCH changes only the fields it names."""

from __future__ import annotations


async def test_patch_changes_only_the_fields_given(client, tenant):
    admin = tenant.headers("admin")
    chosen = {"national_ids": ["no", "ru", "si"], "default_languages": ["nb", "ru", "sl"], "phone_regions": ["NO"]}
    current = (await client.get("/v1/admin/settings", headers=admin)).json()
    assert (await client.put("/v1/admin/settings", json={**current, **chosen}, headers=admin)).status_code == 200

    # Setting the report's time zone (docs/kpi.md) must not switch off Russian and Slovenian ids.
    patched = await client.patch("/v1/admin/settings", json={"time_zone": "Europe/Oslo"}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**current, **chosen, "time_zone": "Europe/Oslo"}
    assert (await client.get("/v1/admin/settings", headers=admin)).json() == patched.json()

    # null is a value (phone regions not set), not "leave it".
    cleared = await client.patch("/v1/admin/settings", json={"phone_regions": None}, headers=admin)
    assert cleared.json()["phone_regions"] is None and cleared.json()["national_ids"] == ["no", "ru", "si"]

    audit = (await client.get("/v1/audit?action=settings.change", headers=admin)).json()
    assert audit[-1]["details"]["settings"]["national_ids"] == ["no", "ru", "si"]


async def test_put_replaces_the_whole_settings(client, tenant):
    admin = tenant.headers("admin")
    current = (await client.get("/v1/admin/settings", headers=admin)).json()
    await client.put("/v1/admin/settings", json={**current, "national_ids": ["no", "ru"]}, headers=admin)
    replaced = await client.put("/v1/admin/settings", json={"time_zone": "Europe/Oslo"}, headers=admin)
    assert replaced.json()["national_ids"] == ["no"]  # left out: back to the default


async def test_a_bad_patch_names_each_field_and_changes_nothing(client, tenant):
    admin = tenant.headers("admin")
    before = (await client.get("/v1/admin/settings", headers=admin)).json()
    refused = await client.patch("/v1/admin/settings", json={"fcr_days": 0, "national_ids": ["xx"], "colour": "red"}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert {e["path"] for e in refused.json()["errors"]} >= {"fcr_days", "national_ids[0]", "colour"}
    bad_zone = await client.patch("/v1/admin/settings", json={"time_zone": "Mars/Olympus"}, headers=admin)
    assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["path"] == "time_zone"
    assert (await client.get("/v1/admin/settings", headers=admin)).json() == before
    forbidden = await client.patch("/v1/admin/settings", json={"time_zone": "UTC"}, headers=tenant.headers("compliance"))
    assert forbidden.status_code == 403
