"""Generated chat conversations in Norwegian, Russian, Slovenian, English and German, fresh text
that does not repeat: ``make bench`` needs nothing outside the repository and its locked packages.

Real chat text is about half function words (a closed class: pronouns, articles, prepositions,
greetings) and half content words drawn from an open vocabulary with a long tail, plus tokens
no dictionary has — names, order numbers, codes, misspellings. The generator mirrors that:

* function words and chat phrases per language, written out below, Zipf-weighted in list order;
* content words: real inflected forms from simplemma's dictionaries (a locked dependency; read,
  not copied: its data keeps its own licences), ``CONTENT_LEMMAS`` lemmas per language, ranked
  shortest-first with noise (frequent words are short) and drawn Zipf-like, then one of the
  lemma's forms at random, so stemmers and lemmatizers see real inflection;
* open-class tokens: generated surnames and places, order and ticket numbers, product codes, and
  words with one letter wrong.

The text is grammatical nonsense, on purpose statistically chat-like: the bench measures what the
analyzer and index do with the token stream. ``Stats`` reports how much of it is new to a word
cache (real chat text keeps introducing words; a recycled sentence pool does not).
"""

from __future__ import annotations

import random
import string
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

LANGS = ["nb", "ru", "sl", "en", "de"]
CONTENT_LEMMAS = 30_000
# Shares of a message's tokens (the rest are content words).
FUNCTION_SHARE = 0.46
OPEN_CLASS_SHARE = 0.05
TYPO_SHARE = 0.02

FUNCTION_WORDS: dict[str, str] = {
    "en": """the I you to and a is it of that my for in your on this have be with can we not do was
        please order me are what but so if at just no it's there will from would as get an all or
        can't yes did they about how thanks one i'm you're here when could which out up by been has
        let know need any our still help now then should see also only sorry why them more because
        sure ok hello hi thank some today again after before than too very much where who were""",
    "nb": """jeg du det er og å på ikke har en i til meg med for at som kan vi de den men så var om et
        hva fra dere skal vil hei takk ja nei bare også når hvordan min mitt mine din ditt deres
        eller da her der nå må etter før fordi hvis noe noen alle mer veldig litt ennå igjen enn
        kunne skulle ville hadde blitt blir går får gjør sier ser vet tror beklager selvfølgelig
        ok hvorfor hvor hvem hvilken dette disse sin sitt sine oss seg han hun dem mye""",
    "sl": """je in se da ne na v za sem so pa z ki to me ali bi kaj mi ste lahko tudi še kot po ko
        smo bo iz od do pri že vas vam sta bila bilo hvala prosim da ja ne zdravo živjo tako samo
        ker če kje kdaj zakaj kako kateri moj moja moje vaš vaša vaše naš naša njegov njen zelo
        malo več potem prej spet danes jutri včeraj mogoče seveda žal ok res kar vse vsi nič
        nekaj tukaj tam zdaj imam imate ima bom boste bomo""",
    "ru": """и в не я на что с вы это по мне у меня как но да а к за от так же все мой моя моё мои
        ваш ваша ваше ваши из о бы есть нет был была было можно нужно пожалуйста спасибо
        здравствуйте добрый день если когда где почему как какой какая уже ещё только тоже очень
        сейчас потом сегодня завтра вчера или чтобы вот тут там нас вас вам нам его её их они
        мы он она оно при до после без для через хорошо ладно конечно извините""",
    "de": """ich die der und das ist nicht zu sie es ein ich's mit den auf für sie haben eine mein
        meine dem ist wir wie bitte danke ja nein hallo aber auch noch schon nur wenn dass was
        wann wo warum welche welcher kann können muss müssen habe hat hatte wurde wird war sind
        bei von aus nach vor über unter zum zur im am es gibt sehr etwas alles nichts mehr heute
        morgen gestern wieder leider natürlich okay so dann denn doch mal ihr ihre ihnen uns""",
}
# Openers and closers a chat desk types all day (whole phrases, used at a message's start).
PHRASES: dict[str, list[str]] = {
    "en": ["Hi there", "Thanks for waiting", "Let me check that for you", "Is there anything else", "Have a nice day",
           "I understand", "One moment please", "Good morning"],
    "nb": ["Hei og velkommen", "Takk for at du venter", "Jeg skal sjekke det", "Er det noe mer", "Ha en fin dag",
           "Jeg forstår", "Et øyeblikk", "God morgen"],
    "sl": ["Pozdravljeni", "Hvala za potrpežljivost", "Takoj preverim", "Vam lahko še kako pomagam", "Lep dan še naprej",
           "Razumem", "Trenutek prosim", "Dobro jutro"],
    "ru": ["Здравствуйте", "Спасибо за ожидание", "Сейчас проверю", "Могу ли я ещё чем-то помочь", "Хорошего дня",
           "Понимаю", "Одну минуту", "Доброе утро"],
    "de": ["Guten Tag", "Danke für Ihre Geduld", "Ich schaue gleich nach", "Kann ich sonst noch helfen", "Schönen Tag noch",
           "Verstehe", "Einen Moment bitte", "Guten Morgen"],
}
NUMBER_WORDS: dict[str, list[str]] = {
    "en": ["order", "ticket", "invoice", "case"], "nb": ["ordre", "sak", "faktura", "bestilling"],
    "sl": ["naročilo", "zahtevek", "račun", "številka"], "ru": ["заказ", "заявка", "счёт", "номер"],
    "de": ["Bestellung", "Ticket", "Rechnung", "Vorgang"],
}
SYLLABLES: dict[str, list[str]] = {
    "latin": ["ka", "ri", "mo", "len", "sta", "vik", "ber", "an", "to", "ne", "dal", "sen", "ho", "lm", "gar", "ru",
              "pe", "tr", "ol", "in", "ač", "ik", "sø", "rå", "ek", "ma", "ün", "ße"],
    "cyrillic": ["ка", "ри", "мо", "лен", "ста", "вик", "бер", "ан", "то", "не", "даль", "сен", "хо", "гар", "ру",
                 "пе", "тр", "ол", "ин", "ов", "ев", "ко", "щу", "жа", "ёл", "ий"],
}


class Vocabulary:
    """What the generator draws one language's words from."""

    def __init__(self, language: str, rng: random.Random) -> None:
        from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory

        self.language = language
        self.function = FUNCTION_WORDS[language].split()
        forms: dict[str, list[str]] = defaultdict(list)
        for form, lemma in DefaultDictionaryFactory().get_dictionary(language).items():
            if form.isalpha() and 2 <= len(form) <= 20 and lemma.isalpha():
                forms[lemma].append(form)
        lemmas = rng.sample(sorted(forms), min(CONTENT_LEMMAS, len(forms)))
        lemmas.sort(key=lambda lemma: len(lemma) + rng.gauss(0, 3))  # the law of abbreviation, loosely
        self.content = [sorted(forms[lemma]) for lemma in lemmas]
        self.letters = "абвгдежзийклмнопрстуфхцчшщыэюя" if language == "ru" else string.ascii_lowercase
        self.syllables = SYLLABLES["cyrillic" if language == "ru" else "latin"]


class ChatText:
    """Fresh chat messages per language (deterministic for a given ``random.Random``)."""

    def __init__(self, seed: int = 2026) -> None:
        rng = random.Random(seed)
        self.vocabularies = {language: Vocabulary(language, rng) for language in LANGS}

    def _name(self, rng: random.Random, vocabulary: Vocabulary) -> str:
        return "".join(rng.choice(vocabulary.syllables) for _ in range(rng.randint(2, 4))).capitalize()

    def _typo(self, rng: random.Random, vocabulary: Vocabulary, word: str) -> str:
        i = rng.randrange(len(word))
        edit = rng.randrange(3)
        if edit == 0 and len(word) > 3:
            return word[:i] + word[i + 1:]
        if edit == 1:
            return word[:i] + rng.choice(vocabulary.letters) + word[i + 1:]
        return word[:i] + rng.choice(vocabulary.letters) + word[i:]

    def _open_class(self, rng: random.Random, vocabulary: Vocabulary) -> str:
        roll = rng.random()
        if roll < 0.4:
            return self._name(rng, vocabulary)
        if roll < 0.8:
            return f"{rng.choice(NUMBER_WORDS[vocabulary.language])} {rng.randint(10_000, 99_999_999)}"
        return f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{rng.randint(100, 9999)}"

    def words(self, rng: random.Random, vocabulary: Vocabulary, n: int) -> list[str]:
        """``n`` words of running text. Ranks are drawn log-uniformly (rank = N ** u), the
        continuous form of Zipf's law with exponent 1: one random number per draw, no search."""
        function, content = vocabulary.function, vocabulary.content
        n_function, n_content = len(function) + 1, len(content) + 1
        out = []
        rand = rng.random
        for _ in range(n):
            roll = rand()
            if roll < FUNCTION_SHARE:
                out.append(function[int(n_function ** rand()) - 1])
                continue
            if roll < FUNCTION_SHARE + OPEN_CLASS_SHARE:
                out.append(self._open_class(rng, vocabulary))
                continue
            forms = content[int(n_content ** rand()) - 1]
            word = forms[int(rand() * len(forms))]
            out.append(self._typo(rng, vocabulary, word) if roll < FUNCTION_SHARE + OPEN_CLASS_SHARE + TYPO_SHARE else word)
        return out

    def message(self, rng: random.Random, language: str, chars: int) -> str:
        """About ``chars`` characters of sentences (never cut inside a word)."""
        vocabulary = self.vocabularies[language]
        parts: list[str] = []
        length = 0
        if rng.random() < 0.15:
            parts.append(rng.choice(PHRASES[language]) + rng.choice(".!,"))
            length = len(parts[0]) + 1
        pending = self.words(rng, vocabulary, max(2, (chars - length) // 6))
        while pending and length < chars:
            take = rng.randint(4, 14)
            sentence, pending = pending[:take], pending[take:]
            text = " ".join(sentence)
            parts.append(text[:1].upper() + text[1:] + rng.choice(".?!."))
            length += len(parts[-1]) + 1
        return " ".join(parts)


@lru_cache(maxsize=1)
def chat_text() -> ChatText:
    return ChatText()


def sentences(n: int = 5000, seed: int = 1) -> list[str]:
    """A pool of fresh generated sentences in every language (for benches that need short texts)."""
    rng, text = random.Random(seed), chat_text()
    return [text.message(rng, LANGS[i % len(LANGS)], 60) for i in range(n)]


def conversation(rng: random.Random, text: ChatText, index: int, messages: int = 20, chars: int = 1500) -> dict[str, Any]:
    """A finished conversation in ``LANGS[index % 5]``: ~``chars`` characters over ``messages``
    messages, visitor and agent taking turns; every fifth carries a card number to redact."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=index % 400_000)
    language = LANGS[index % len(LANGS)]
    per_message = chars // messages
    msgs = []
    for i in range(messages):
        body = text.message(rng, language, per_message)
        if i == 3 and index % 5 == 0:
            body = body[: per_message - 30] + " card 4111 1111 1111 1111"
        msgs.append({"at": (start + timedelta(seconds=20 * i)).isoformat(),
                     "sender": {"role": "visitor" if i % 2 == 0 else "agent", "id": f"a-{index % 7}"}, "text": body})
    return {
        "external_id": f"bench-{index}-{rng.getrandbits(32):x}",
        "site": "shop",
        "channel": "web",
        "language": language,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(seconds=20 * messages)).isoformat(),
        "visitor": {"id": f"v-{index}", "name": "Visitor", "email": f"v{index}@example.org"},
        "agents": [{"id": f"a-{index % 7}", "name": "Agent"}],
        "tags": ["bench"],
        "messages": msgs,
    }


def word_cache_hit_rate(corpus: list[dict[str, Any]]) -> float:
    """Share of the corpus' words (per language) that an unbounded word cache has seen before."""
    from archive.analysis import words

    seen: set[tuple[str, str]] = set()
    total = 0
    for conv in corpus:
        for message in conv["messages"]:
            for word in words(message["text"]):
                seen.add((word, conv["language"]))
                total += 1
    return 1 - len(seen) / total if total else 0.0
