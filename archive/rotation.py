"""Master key rotation: add a version, re-wrap data keys and tenant secrets, never re-encrypt payloads.

Re-wrapping runs in batches, one transaction each, so a rotation interrupted half-way is simply
resumed by running it again: every wrapped key records the master version it is wrapped under.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

import msgspec

from archive import db, ledger
from archive.crypto import DecryptionError, TenantCrypto
from archive.errors import Conflict
from archive.keyring import FileKeyProvider, KeyringError
from archive.runtime import Runtime
from archive.tables import ConversationKey, Tenant

BATCH = 500


class RotationReport(msgspec.Struct):
    active_version: int
    data_keys_rewrapped: int
    tenant_secrets_rewrapped: int
    # Keys that no longer unwrap (a row was tampered with or copied): left as they are, listed here.
    unreadable: list[str] = []


async def rotate_master(rt: Runtime, actor: str = "cli") -> RotationReport:
    settings = rt.settings
    if not settings.master_key:
        FileKeyProvider(settings.data_path).add_version()
    # With PARLEY_MASTER_KEY the operator adds the new version to the variable; this re-wraps to it.
    keyring = rt.keys.reload()
    per_tenant: Counter[UUID] = Counter()
    secrets = 0
    for tenant in await Tenant.select(Tenant.id, Tenant.wrapped_secret, Tenant.secret_version):
        if tenant["secret_version"] == keyring.active:
            continue
        crypto = TenantCrypto(keyring, tenant["id"], tenant["wrapped_secret"], tenant["secret_version"])
        wrapped, version = crypto.rewrap_tenant_secret(tenant["wrapped_secret"], tenant["secret_version"])
        await Tenant.update({Tenant.wrapped_secret: wrapped, Tenant.secret_version: version}).where(Tenant.id == tenant["id"])
        secrets += 1
    cryptos: dict[UUID, TenantCrypto] = {}
    unreadable: list[str] = []
    def stale() -> Any:
        return ConversationKey.select().where(ConversationKey.master_version != keyring.active)

    async for rows in db.keyset_pages(stale, ConversationKey.conversation, BATCH):
        async with db.write_transaction():
            for row in rows:
                tenant_id = row["tenant"]
                if tenant_id not in cryptos:
                    t = await Tenant.select().where(Tenant.id == tenant_id).first()
                    if t is None:  # the key's tenant row is gone (foreign keys make this a tampered store)
                        unreadable.append(str(row["conversation"]))
                        continue
                    cryptos[tenant_id] = TenantCrypto(keyring, tenant_id, t["wrapped_secret"], t["secret_version"])
                crypto = cryptos[tenant_id]
                try:
                    data_key = crypto.unwrap_data_key(row["conversation"], row["wrapped_key"], row["master_version"])
                except DecryptionError:
                    unreadable.append(str(row["conversation"]))
                    continue
                await ConversationKey.update(
                    {ConversationKey.wrapped_key: crypto.wrap_data_key(row["conversation"], data_key), ConversationKey.master_version: keyring.active}
                ).where(ConversationKey.conversation == row["conversation"])
                per_tenant[tenant_id] += 1
    for tenant in await Tenant.select(Tenant.id):
        await ledger.append(
            tenant["id"],
            ledger.Entry(actor=actor, action="key.rotate", details={"active_version": keyring.active, "data_keys_rewrapped": per_tenant[tenant["id"]]}),
        )
    return RotationReport(
        active_version=keyring.active, data_keys_rewrapped=sum(per_tenant.values()),
        tenant_secrets_rewrapped=secrets, unreadable=unreadable,
    )


async def retire_master(rt: Runtime, version: int) -> None:
    """Destroy an old master version; refused while anything is still wrapped under it."""
    if rt.settings.master_key:
        raise KeyringError("the keyring comes from PARLEY_MASTER_KEY: remove the version from the variable instead")
    in_use = await ConversationKey.count().where(ConversationKey.master_version == version)
    in_use += await Tenant.count().where(Tenant.secret_version == version)
    if in_use:
        raise Conflict(f"{in_use} keys are still wrapped under master version {version}; run 'parley keys rotate-master' first")
    FileKeyProvider(rt.settings.data_path).retire(version)
