"""The process-wide things domain code needs: settings and the master keyring."""

from __future__ import annotations

import msgspec

from archive.keyring import MasterKeyring, load_keyring
from config.settings import Settings


class Runtime(msgspec.Struct, frozen=True):
    settings: Settings
    keyring: MasterKeyring


def build_runtime(settings: Settings) -> Runtime:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    from archive.revocations import watch

    watch.configure(settings.data_path)
    return Runtime(settings=settings, keyring=load_keyring(settings.master_key, settings.data_path))
