"""What a tenant can switch: how cards are masked, e-mail and phone redaction, which national
identity numbers to look for, and where phone numbers written without a country code come from.

Cards and IBANs are always redacted; there is no option to turn them off (PCI DSS leaves no room).
"""

from __future__ import annotations

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
    "sv": ("SE",), "da": ("DK",), "fi": ("FI",),
}


class RedactionOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    card_mask: Literal["partial", "full"] = "partial"
    redact_email: bool = True
    redact_phone: bool = True
    national_ids: list[NationalId] = msgspec.field(default_factory=lambda: ["no"])
    # ISO 3166 regions whose national phone formats are recognised; international numbers
    # (+47 …, 0047 …) are recognised whatever this says.
    phone_regions: list[str] = msgspec.field(default_factory=lambda: ["NO"])

    def __post_init__(self) -> None:
        unknown = [r for r in self.phone_regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"phone_regions: unknown ISO 3166 region(s) {', '.join(unknown)}; use codes such as NO, SE, DE")


def regions_for_language(language: str | None) -> tuple[str, ...]:
    if not language:
        return ()
    return LANGUAGE_REGIONS.get(language.split("-")[0].lower(), ())


def options_from(settings: Any) -> RedactionOptions:
    """Build options from anything with the same attribute names (tenant settings, say).

    Missing attributes keep their defaults; ``phone_regions`` not given is derived from the
    settings' ``default_languages``, with Norway as the fallback.
    """
    if isinstance(settings, RedactionOptions):
        return settings
    defaults = RedactionOptions()
    ids = getattr(settings, "national_ids", None)
    regions = getattr(settings, "phone_regions", None)
    if regions is None:
        derived = [r for lang in getattr(settings, "default_languages", None) or () for r in regions_for_language(lang)]
        regions = list(dict.fromkeys(derived + defaults.phone_regions))
    return msgspec.convert(
        {
            "card_mask": getattr(settings, "card_mask", defaults.card_mask),
            "redact_email": getattr(settings, "redact_email", defaults.redact_email),
            "redact_phone": getattr(settings, "redact_phone", defaults.redact_phone),
            "national_ids": list(defaults.national_ids if ids is None else ids),
            "phone_regions": [r.upper() for r in regions],
        },
        RedactionOptions,
    )
