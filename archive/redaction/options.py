"""What a tenant can switch: how cards are masked, e-mail and phone redaction, which national
identity numbers to look for, and where phone numbers written without a country code come from.

Cards and IBANs are always redacted; there is no option to turn them off (PCI DSS leaves no room).

Phone regions. A number written with its country code (``+47 …``, ``0047 …``) is recognised
whatever the regions say. A number in national format (``912 34 567``, ``8 (912) 345-67-89``) is
read only for the regions that apply to the conversation, because every extra region is another
chance for an order or build number to pass as a phone number (any eight digits are a valid
Norwegian number): the conversation's language gives its regions, plus the regions the tenant
set explicitly; only when the conversation has no (known) language do the tenant's fallback
regions apply — those of its default languages, and Norway when nothing at all is known.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import msgspec
import phonenumbers

NationalId = Literal["no", "se", "dk", "fi", "si", "ru"]
NATIONAL_IDS: tuple[str, ...] = ("no", "se", "dk", "fi", "si", "ru")

# Region hints for numbers written without a country code, by conversation language. English gets
# both GB and US because both write national numbers that way in support chats.
LANGUAGE_REGIONS: dict[str, tuple[str, ...]] = {
    "no": ("NO",), "nb": ("NO",), "nn": ("NO",),
    "ru": ("RU",), "sl": ("SI",), "de": ("DE",), "en": ("GB", "US"),
    "sv": ("SE",), "da": ("DK",), "fi": ("FI",), "is": ("IS",), "et": ("EE",), "lv": ("LV",), "lt": ("LT",),
    "pl": ("PL",), "uk": ("UA",), "be": ("BY",), "kk": ("KZ",), "nl": ("NL",), "fr": ("FR",), "es": ("ES",),
    "it": ("IT",), "pt": ("PT",), "cs": ("CZ",), "sk": ("SK",), "hr": ("HR",), "sr": ("RS",), "hu": ("HU",),
}
# When neither the conversation nor the tenant says anything: Parley's home market.
LAST_RESORT_REGIONS = ("NO",)


def _region_list(value: list[str]) -> list[str]:
    unknown = [r for r in value if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"phone_regions: unknown ISO 3166 region(s) {', '.join(unknown)}; use codes such as NO, SE, DE")
    return value


class RedactionOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    card_mask: Literal["partial", "full"] = "partial"
    redact_email: bool = True
    redact_phone: bool = True
    national_ids: list[NationalId] = msgspec.field(default_factory=lambda: ["no"])
    # ISO 3166 regions the tenant chose explicitly: their national formats are recognised in every
    # conversation, whatever its language.
    phone_regions: list[str] = msgspec.field(default_factory=list)
    # Regions for conversations whose language is unknown, when phone_regions is empty.
    fallback_regions: list[str] = msgspec.field(default_factory=lambda: list(LAST_RESORT_REGIONS))

    def __post_init__(self) -> None:
        _region_list(self.phone_regions)
        _region_list(self.fallback_regions)


@lru_cache(maxsize=512)  # asked per conversation and per message; a handful of tags in practice
def regions_for_language(language: str | None) -> tuple[str, ...]:
    """A BCP 47 tag's regions: its region subtag when it names one (``de-AT`` → AT), then its
    language's (``de`` → DE, ``en`` → GB, US); () for no or an unknown language."""
    if not language:
        return ()
    parts = language.replace("_", "-").split("-")
    subtags = [p.upper() for p in parts[1:] if len(p) == 2 and p.upper() in phonenumbers.SUPPORTED_REGIONS]
    return tuple(dict.fromkeys([*subtags[:1], *LANGUAGE_REGIONS.get(parts[0].lower(), ())]))


def phone_regions_for(options: RedactionOptions, language: str | None) -> list[str]:
    """The regions whose national formats are read in a conversation in ``language``."""
    spoken = regions_for_language(language)
    if spoken:
        return list(dict.fromkeys([*spoken, *options.phone_regions]))
    return list(options.phone_regions or options.fallback_regions)


def options_from(settings: Any) -> RedactionOptions:
    """Build options from anything with the same attribute names (tenant settings, say).

    Missing attributes keep their defaults. ``phone_regions`` (None or missing: not set) is what
    the tenant chose explicitly; the fallback regions are those of the settings'
    ``default_languages``, or Norway when they name none.
    """
    if isinstance(settings, RedactionOptions):
        return settings
    defaults = RedactionOptions()
    ids = getattr(settings, "national_ids", None)
    regions = getattr(settings, "phone_regions", None) or []
    derived = [r for lang in getattr(settings, "default_languages", None) or () for r in regions_for_language(lang)]
    return msgspec.convert(
        {
            "card_mask": getattr(settings, "card_mask", defaults.card_mask),
            "redact_email": getattr(settings, "redact_email", defaults.redact_email),
            "redact_phone": getattr(settings, "redact_phone", defaults.redact_phone),
            "national_ids": list(defaults.national_ids if ids is None else ids),
            "phone_regions": list(dict.fromkeys(r.upper() for r in regions)),
            "fallback_regions": list(dict.fromkeys(derived)) or list(LAST_RESORT_REGIONS),
        },
        RedactionOptions,
    )
