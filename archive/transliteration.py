"""Cyrillic typed in Latin letters: a *typing key* shared by a Cyrillic word and the ways people
spell it without a Cyrillic keyboard, so that ``posylka`` meets ``посылка`` and ``schet``,
``shchet`` and ``schyot`` all meet ``счёт``.

Index side, a Cyrillic word's normal form is romanised with anyascii (BGN/PCGN-style for Russian:
ж zh, х kh, ц ts, ч ch, ш sh, щ shch, ы y, й y, ю yu, я ya) and reduced by ``typing_key``, which
folds together what reviewers actually type for the same letter: GOST/ISO spellings (j, c, x,
shh), German-style ``sch`` and ``w``, ``h`` for х, ``i`` for й/ы, soft and hard signs left out,
doubled letters typed once, ``yo``/``e`` for ё and ``ye``/``e`` for е.

Query side, a Latin word (plain ASCII, or with the letters of scientific/ISO 9 and Slavic-keyboard
spellings: š, č, ž, ë, ʹ …; a word with other letters, ø or ä, is not read as Cyrillic) is first spelled back into Cyrillic (a few candidates where typing is
ambiguous), because the Cyrillic normal form comes from a stemmer or lemmatizer that needs
Cyrillic endings: ``posylku`` → ``посылку`` → stem ``посылк``. Only the key of each candidate's
normal form is searched, so the spelling-back needs to be right about endings, not every letter.
"""

from __future__ import annotations

import re
from itertools import product

from anyascii import anyascii

# Languages written in Cyrillic whose normal forms are Cyrillic (Serbian's Snowball stemmer already
# answers in Latin for both scripts, so Serbian needs no key).
CYRILLIC_LANGUAGES = frozenset({"ru", "uk", "bg", "mk", "be", "kk", "ky", "tg", "mn"})
MIN_LATIN_LETTERS = 4  # "net", "da", "no" typed in English must not find нет, да, но
MAX_CANDIDATES = 12

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# Applied in order; each step only sees what the previous ones left.
_LOOSEN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[^a-z]"), ""),  # soft/hard signs (', ", ʹ, ʺ), digits
    (re.compile(r"shch|sch|shh"), "sh"),  # щ and сч sound alike and are typed alike
    (re.compile(r"kh"), "h"),
    (re.compile(r"x"), "ks"),
    (re.compile(r"ts|tz|cz"), "c"),
    (re.compile(r"w"), "v"),
    (re.compile(r"[yj]"), "i"),
    (re.compile(r"(.)\1+"), r"\1"),
    (re.compile(r"i([eo])"), "e"),  # ye/je/ie for е, yo/jo/io for ё
]


def is_cyrillic(word: str) -> bool:
    return _CYRILLIC.search(word) is not None


def romanize(word: str) -> str:
    return anyascii(word).lower()


def typing_key(latin: str) -> str:
    key = latin
    for pattern, replacement in _LOOSEN:
        key = pattern.sub(replacement, key)
    return key


def cyrillic_key(word: str) -> str:
    """The typing key of a Cyrillic word (or normal form)."""
    return typing_key(romanize(word))


# Latin spelling → Cyrillic letters it may stand for, preferred first (longest spellings first).
_RU: dict[str, tuple[str, ...]] = {
    "shch": ("щ",), "sch": ("щ", "сч"), "shh": ("щ",), "sh": ("ш",), "ch": ("ч",), "zh": ("ж",), "kh": ("х",),
    "ts": ("ц", "тс"), "tz": ("ц",), "cz": ("ц",), "ya": ("я",), "ja": ("я",), "ia": ("я", "ия"), "yu": ("ю",),
    "ju": ("ю",), "iu": ("ю", "ию"), "yo": ("ё", "йо"), "jo": ("ё",), "io": ("ё", "ио"), "ye": ("е",), "je": ("е",),
    "a": ("а",), "b": ("б",), "v": ("в",), "w": ("в",), "g": ("г",), "d": ("д",), "e": ("е", "э"), "z": ("з",),
    "i": ("и", "й"), "y": ("ы", "й"), "j": ("й", "ж"), "k": ("к",), "q": ("к",), "l": ("л",), "m": ("м",), "n": ("н",),
    "o": ("о",), "p": ("п",), "r": ("р",), "s": ("с",), "t": ("т",), "u": ("у",), "f": ("ф",), "h": ("х",),
    "x": ("кс", "х"), "c": ("ц", "к"), "'": ("ь",),
    # Scientific and ISO 9 letters, and what a reviewer with a Slovene, Croatian or Czech keyboard
    # types: a word with š is not the Slovene word when the š stands for ш.
    "š": ("ш",), "šč": ("щ",), "ŝ": ("щ",), "č": ("ч",), "ž": ("ж",), "ë": ("ё",), "è": ("э",), "â": ("я",),
    "û": ("ю",), "ý": ("ы",), "ʹ": ("ь",), "ʺ": ("ъ",),
}
_UK = {**_RU, "y": ("и", "й"), "i": ("і", "и"), "yi": ("ї",), "ji": ("ї",), "ye": ("є",), "je": ("є",), "ie": ("є",),
       "h": ("г", "х"), "g": ("ґ", "г")}
_BG = {**_RU, "sht": ("щ",), "sh": ("ш",), "y": ("ъ", "й"), "a": ("а", "ъ"), "u": ("у", "ъ")}
_TABLES = {"uk": _UK, "bg": _BG}
_LATIN_WORD = re.compile("[a-z'" + "".join(sorted({c for k in _RU for c in k if not c.isascii()})) + "]+")
_VOWELS = set("аеёиоуыэюяіїєъ")


def _units(word: str, table: dict[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    longest = max(len(k) for k in table)
    units, i = [], 0
    while i < len(word):
        for size in range(min(longest, len(word) - i), 0, -1):
            options = table.get(word[i:i + size])
            if options:
                units.append(options)
                i += size
                break
        else:
            return []  # a letter no table knows: not Cyrillic typed in Latin
    return units


# Endings typed without the soft sign or the final й (most romanisations drop ь, and many write
# ый/ий as "y"): each spelling-back also tries the ending a stemmer would recognise.
_ENDINGS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"(?:тся|тс[яа]|ця)$"), ("ться", "тся")),
    (re.compile(r"(?:тсь|ць)$"), ("ться",)),
    (re.compile(r"ы$"), ("ый",)),
    (re.compile(r"и$"), ("ий",)),
    (re.compile(r"([бвгджзклмнпрстфхцчшщ])$"), (r"\1ь",)),
]


def cyrillic_candidates(latin: str, language: str, min_letters: int = MIN_LATIN_LETTERS) -> list[str]:
    """Cyrillic spellings ``latin`` may stand for, most likely first (at most MAX_CANDIDATES)."""
    if len(latin) < min_letters or not _LATIN_WORD.fullmatch(latin):
        return []
    units = _units(latin, _TABLES.get(language, _RU))
    if not units:
        return []
    # Prefer й for y/i after a vowel and ы/и elsewhere; then fewer second choices first.
    ranked: dict[str, int] = {}
    for choice in product(*(range(len(u)) for u in units)):
        letters = [u[c] for u, c in zip(units, choice)]
        penalty = 0
        for k, (u, c) in enumerate(zip(units, choice)):
            after_vowel = k > 0 and letters[k - 1][-1] in _VOWELS
            if "й" in u and len(u) > 1:
                penalty += (c != u.index("й")) if after_vowel else (u[c] == "й")
            else:
                penalty += c
        word = "".join(letters)
        ranked[word] = min(penalty, ranked.get(word, penalty))
        for pattern, endings in _ENDINGS:
            for ending in endings:
                variant = pattern.sub(ending, word)
                if variant != word:
                    ranked.setdefault(variant, penalty + 1)
        if len(ranked) > 512:  # pathological input: enough to rank from
            break
    return sorted(ranked, key=lambda w: (ranked[w], w))[:MAX_CANDIDATES]
