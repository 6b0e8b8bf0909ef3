"""Text normalisation and language detection shared by the engines and the entity extractor."""

from __future__ import annotations

import re
import unicodedata

MAX_TEXT_CHARS = 1000
"""Longer texts are cut before classification: intent lives in the first sentences, and cost stays bounded."""

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-zA-Z]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SPACES = re.compile(r"\s+")

# Russian written in Latin letters ("ne rabotaet internet"): word stems that English lacks. Words that both
# languages share (internet, router, tv, ...) are neutral and do not vote.
_TRANSLIT_STEMS = tuple(
    """
    rabot zakaz dogovor schet schyot spasib spsb blagodar svyaz svyaz oplat podkl podkly podkey nastr nastroi pomen
    smen izmen udal ostat rouming pozh zhal grafik kogda pochemu dobr vsego vstrech svidan privet zdra soedin
    chelov operatorom menedzh pereda zakaz propal otkl otkly lovit signala kanal pristav televiden tormoz medlen
    skorost nizk gde moy moi moya moe mne menya hochu khochu nuzh nado mozhn pomog balans skolk deneg dengi
    spisa oshibk rastorg otkaz zakryt usloviya srok famil adres obnov pasport dann akkaunt otzyv soglas uzhas
    servis pretenz nedovol ofis rezhim chasy parol vaif vayf tarif deshev perehod ceny cena stoit kakoi kakoy
    kakie kak chto cho est net poka dosvid bolsh simka zhiv dayte pozov peredayt ochen seychas segodnya vchera
    rubl podskazh skazh zdes tut uzhe esche eshe ili tolko ne da sps pomosh avtoplat uslug granic minut dait
    """.split()
)
_LONG_STEMS = tuple(stem for stem in _TRANSLIT_STEMS if len(stem) > 3)
_SHORT_STEMS = frozenset(stem for stem in _TRANSLIT_STEMS if len(stem) <= 3)
_TRANSLIT_ENDINGS = ("ogo", "ego", "yte", "yi", "iy", "yy", "aya", "oye", "ykh", "ikh", "ami", "yat", "yut", "tsya")
_NEUTRAL_WORDS = frozenset(
    "internet inet wifi wi fi tv iptv router modem roaming sms ok okay lte 4g 5g sim online ord".split()
)
_ENGLISH_WORDS = frozenset(
    """
    the a an is are was my your you to of in on for with and or not no yes it this that what why how when where
    please thanks thank hello hi hey bye me i can do does order plan bill payment balance contract data card
    tariff tariffs minute minutes set up see ya good morning evening day night help stop give get want need ok
    """.split()
)

def normalise(text: str) -> str:
    """Lowercase, fold ё to е, normalise Unicode and whitespace, and cut to MAX_TEXT_CHARS."""
    text = text[: MAX_TEXT_CHARS * 2]
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    return _SPACES.sub(" ", text).strip()[:MAX_TEXT_CHARS]


def has_letters(text: str) -> bool:
    """Whether the text has at least one letter of any script (emoji, digits and punctuation do not count)."""
    return _LETTER.search(text) is not None


def _is_translit(word: str) -> bool:
    if word in _ENGLISH_WORDS:
        return False
    if word in _SHORT_STEMS or word in _LONG_STEMS:
        return True
    if word.startswith(_LONG_STEMS):
        return True
    return len(word) > 4 and word.endswith(_TRANSLIT_ENDINGS)


def detect_language(text: str, default: str = "ru") -> str:
    """Guess ru or en: Cyrillic script wins, Latin text that reads as transliterated Russian is ru."""
    sample = text[:MAX_TEXT_CHARS]
    cyr = len(_CYRILLIC.findall(sample))
    lat = len(_LATIN.findall(sample))
    if cyr == 0 and lat == 0:
        return default
    if cyr * 3 >= lat:
        return "ru"
    words = [w for w in re.findall(r"[a-z]+", sample.lower()) if w not in _NEUTRAL_WORDS]
    if not words:
        return "en"
    votes = sum(1 for w in words if _is_translit(w))
    return "ru" if votes / len(words) >= 0.34 else "en"


def language_certain(text: str) -> bool:
    """Whether the text itself tells its language: enough letters, one script clearly ahead, and for Latin
    text at least one word that is not shared by both languages ("ok", "wifi", "sms" are not)."""
    sample = text[:MAX_TEXT_CHARS]
    cyr = len(_CYRILLIC.findall(sample))
    lat = len(_LATIN.findall(sample))
    if cyr + lat < 3:
        return False
    if cyr and lat and min(cyr, lat) * 3 > max(cyr, lat):
        return False  # "ok спс thx", half and half: either language could be the customer's
    if cyr >= lat:
        return True
    return any(w not in _NEUTRAL_WORDS for w in re.findall(r"[a-z]+", sample.lower()) if len(w) > 1)


_TRANSLIT_MAP = (
    ("shch", "щ"), ("sch", "щ"), ("zh", "ж"), ("kh", "х"), ("ch", "ч"), ("sh", "ш"), ("ts", "ц"),
    ("yu", "ю"), ("ya", "я"), ("yo", "е"), ("ye", "е"), ("iy", "ий"), ("yi", "ый"), ("yy", "ый"),
    ("a", "а"), ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"),
    ("j", "й"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"),
    ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"), ("c", "ц"), ("y", "ы"), ("w", "в"),
    ("x", "кс"), ("q", "к"),
)
_TRANSLIT_RE = re.compile("|".join(re.escape(src) for src, _ in _TRANSLIT_MAP))
_TRANSLIT_DICT = dict(_TRANSLIT_MAP)
_LATIN_WORD = re.compile(r"[a-z]+")
_SHORT_I = re.compile(r"(?<=[aeiou])y(?![aeiouy])")  # "moy", "pozhaluysta": y after a vowel is й


def _detransliterate_word(word: str) -> str:
    return _TRANSLIT_RE.sub(lambda t: _TRANSLIT_DICT[t.group(0)], _SHORT_I.sub("j", word))


def detransliterate(text: str) -> str:
    """Spell Latin-letter Russian in Cyrillic ("ne rabotaet" -> "не работает"), roughly but consistently."""
    return _LATIN_WORD.sub(lambda m: _detransliterate_word(m.group(0)), text)


def to_features_text(text: str, language: str | None = None) -> str:
    """The text the classifier sees: normalised, plus a Cyrillic spelling when it reads as transliteration."""
    norm = normalise(text)
    if _LATIN.search(norm) and (language or detect_language(norm)) == "ru":
        return f"{norm} {detransliterate(norm)}"
    return norm
