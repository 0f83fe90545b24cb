"""One normal form per word and language, so that inflections meet: a Snowball stem where Snowball
has an algorithm for the language, a dictionary lemma where it has none, the word itself otherwise.

Lemmatizers were chosen by measurement on Universal Dependencies test sets (docs/search.md,
"Word forms"): lemmagen3 for Slovenian, Croatian, Bosnian, Slovak and Ukrainian; simplemma for
Bulgarian, Icelandic, Latvian and Macedonian (lemmagen3 has no model for the last three that a
commercial product may use). Both ship their data inside the PyPI package: nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import Stemmer

SURFACE = ""  # the "language" of words left as they are

# BCP 47 primary subtag → Snowball algorithm (PyStemmer 3 ships Snowball 3).
STEMMERS: dict[str, str] = {
    "en": "english", "nb": "norwegian", "nn": "norwegian", "no": "norwegian", "ru": "russian",
    "de": "german", "sv": "swedish", "da": "danish", "fi": "finnish", "fr": "french", "es": "spanish",
    "it": "italian", "nl": "dutch", "pt": "portuguese", "pl": "polish", "cs": "czech", "tr": "turkish",
    "hu": "hungarian", "ro": "romanian", "el": "greek", "lt": "lithuanian", "et": "estonian",
    "ar": "arabic", "hi": "hindi", "id": "indonesian", "ga": "irish", "sr": "serbian", "cnr": "serbian",
    "ca": "catalan", "eu": "basque", "hy": "armenian", "fa": "persian", "ta": "tamil", "ne": "nepali",
    "yi": "yiddish", "eo": "esperanto",
}
# Languages Snowball lacks → (lemmatizer, its language code).
LEMMATIZERS: dict[str, tuple[str, str]] = {
    "sl": ("lemmagen3", "sl"), "hr": ("lemmagen3", "hr"), "bs": ("lemmagen3", "hr"), "sh": ("lemmagen3", "hr"),
    "sk": ("lemmagen3", "sk"), "uk": ("lemmagen3", "uk"),
    "bg": ("simplemma", "bg"), "is": ("simplemma", "is"), "lv": ("simplemma", "lv"), "mk": ("simplemma", "mk"),
}


@lru_cache(maxsize=64)
def normalizer(language: str) -> Callable[[str], str] | None:
    """The function that maps a case-folded word of ``language`` to its normal form, if any."""
    if language in STEMMERS:
        # No PyStemmer cache (size 0): the analyzer keeps normal forms itself, and PyStemmer's own
        # cache, once full, is purged whole every few new words (~10 µs a word in running text).
        stem: Callable[[str], str] = Stemmer.Stemmer(STEMMERS[language], 0).stemWord
        return stem
    if language not in LEMMATIZERS:
        return None
    library, code = LEMMATIZERS[language]
    if library == "lemmagen3":
        import lemmagen3

        lemmatize: Callable[[str], str] = lemmagen3.Lemmatizer(code).lemmatize
        return lemmatize
    import simplemma

    return lambda word: simplemma.lemmatize(word, lang=code).casefold()


def normal_form(word: str, language: str) -> str:
    normalize = normalizer(language)
    return normalize(word) if normalize is not None else word
