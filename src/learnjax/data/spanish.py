"""A second language for the world: Spanish, written from the same facts as
the English corpus by templates that follow its grammar (no JAX).

Spanish, because it makes a translator learn more than a word-for-word
lookup while staying in the alphabet and word boundaries the word tokenizer
reads (Japanese would need its own segmentation): every noun has a gender
that its article and adjectives agree with ("la fresa es roja", "el plátano
es amarillo"), in number too ("las fresas son rojas"), and plurals follow
spelling rules ("limón", "limones"); verbs are conjugated by number and tense
("bebe", "beben", "bebió", "bebieron"), irregulars included ("ve", "vio").

`english` and `spanish` write one `Statement` (a fact, a subject, a tense) in
each language; the lexicon is small, and every form it writes is checked by
the tests against the rules above.
"""

from __future__ import annotations

from dataclasses import dataclass

from learnjax.data import world

# Nouns: the Spanish word and its gender ("m" or "f"); plurals by rule (`plural`).
PLACES = {
    "café": ("cafetería", "f"),
    "pub": ("taberna", "f"),
    "bakery": ("panadería", "f"),
    "market": ("mercado", "m"),
    "pharmacy": ("farmacia", "f"),
    "library": ("biblioteca", "f"),
    "cinema": ("cine", "m"),
    "zoo": ("zoo", "m"),
    "museum": ("museo", "m"),
    "restaurant": ("restaurante", "m"),
    "bank": ("banco", "m"),
    "park": ("parque", "m"),
}
THINGS = {  # the object of each place's activity, as the English corpus says it (mass or plural)
    "coffee": "café",
    "beer": "cerveza",
    "bread": "pan",
    "vegetables": "verduras",
    "medicine": "medicinas",
    "books": "libros",
    "films": "películas",
    "lions": "leones",
    "paintings": "cuadros",
    "pasta": "pasta",
    "money": "dinero",
    "frisbee": "frisbi",
}
# Verbs: present 3rd person singular and plural, preterite singular and plural.
VERBS = {
    "drink": ("bebe", "beben", "bebió", "bebieron"),
    "buy": ("compra", "compran", "compró", "compraron"),
    "borrow": ("toma prestados", "toman prestados", "tomó prestados", "tomaron prestados"),
    "watch": ("ve", "ven", "vio", "vieron"),
    "see": ("ve", "ven", "vio", "vieron"),
    "eat": ("come", "comen", "comió", "comieron"),
    "withdraw": ("saca", "sacan", "sacó", "sacaron"),
    "play": ("juega al", "juegan al", "jugó al", "jugaron al"),
}
COLOURED = {  # thing: (noun, gender)
    "banana": ("plátano", "m"),
    "lemon": ("limón", "m"),
    "tomato": ("tomate", "m"),
    "strawberry": ("fresa", "f"),
    "cucumber": ("pepino", "m"),
    "carrot": ("zanahoria", "f"),
    "cherry": ("cereza", "f"),
    "plum": ("ciruela", "f"),
    "frog": ("rana", "f"),
    "mouse": ("ratón", "m"),
    "swan": ("cisne", "m"),
    "crow": ("cuervo", "m"),
}
COLOURS = {
    "yellow": "amarillo",
    "red": "rojo",
    "green": "verde",
    "purple": "morado",
    "white": "blanco",
    "black": "negro",
    "orange": "naranja",
    "grey": "gris",
}
RELATIVES = {  # English: (Spanish, plural); "my" is "mi", "mis"
    "sister": ("hermana", False),
    "brother": ("hermano", False),
    "aunt": ("tía", False),
    "uncle": ("tío", False),
    "friends": ("amigos", True),
    "parents": ("padres", True),
    "cousins": ("primos", True),
    "grandparents": ("abuelos", True),
}
ACTIVITIES = tuple(a for a in world.ACTIVITIES if a.place in PLACES)
ARTICLES = {("m", False): "el", ("f", False): "la", ("m", True): "los", ("f", True): "las"}
_UNACCENT = str.maketrans("áéíóú", "aeiou")


def plural(noun: str) -> str:
    """A noun's plural: a vowel takes -s; -z becomes -ces; another consonant
    takes -es, and a last-syllable accent goes ("limón", "limones")."""
    if noun[-1] in "aeiouáéó":
        return noun + "s"
    if noun.endswith("z"):
        return noun[:-1] + "ces"
    return noun[:-2] + noun[-2:].translate(_UNACCENT) + "es"


def agreeing(adjective: str, gender: str, is_plural: bool) -> str:
    """An adjective agreeing with its noun: -o changes to -a for the feminine;
    others keep their form (verde, gris, naranja); plurals by `plural`,
    except "naranja", which stays as it is."""
    form = adjective[:-1] + "a" if adjective.endswith("o") and gender == "f" else adjective
    return form if not is_plural or adjective == "naranja" else plural(form)


@dataclass(frozen=True)
class Statement:
    """One fact in one tense: someone's activity at a place, or a thing's colour."""

    subject: str  # a name of `world.NAMES`, or a key of `RELATIVES` (colours: unused)
    fact: str  # the place of an activity (a key of `PLACES`), or a thing of `COLOURED`
    past: bool = False
    plural: bool = False  # colours only: "the cherries are red"


def _is_plural_subject(subject: str) -> bool:
    return subject in RELATIVES and RELATIVES[subject][1]


def english(s: Statement) -> str:
    """The statement in the English corpus's words."""
    if s.fact in COLOURED:
        thing = english_plural(s.fact) if s.plural else s.fact
        colour = dict(world.COLOURS)[s.fact]
        return f"the {thing} {('were' if s.plural else 'was') if s.past else ('are' if s.plural else 'is')} {colour}."
    activity = next(a for a in ACTIVITIES if a.place == s.fact)
    subject = f"my {s.subject}" if s.subject in RELATIVES else s.subject
    verb = activity.verb.past if s.past else activity.verb.base if _is_plural_subject(s.subject) else activity.verb.third
    return f"{subject} {verb} {activity.thing} at the {activity.place}."


def english_plural(noun: str) -> str:
    """An English plural, for the coloured things' nouns."""
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "sh", "ch", "x", "o")):
        return noun + "es"
    return {"mouse": "mice"}.get(noun, noun + "s")


def spanish(s: Statement) -> str:
    """The statement in Spanish: articles, adjectives and verbs agreeing."""
    if s.fact in COLOURED:
        noun, gender = COLOURED[s.fact]
        verb = ("eran" if s.plural else "era") if s.past else ("son" if s.plural else "es")  # a state: the imperfect
        colour = agreeing(COLOURS[dict(world.COLOURS)[s.fact]], gender, s.plural)
        return f"{ARTICLES[gender, s.plural]} {plural(noun) if s.plural else noun} {verb} {colour}."
    activity = next(a for a in ACTIVITIES if a.place == s.fact)
    if s.subject in RELATIVES:
        word, many = RELATIVES[s.subject]
        subject = f"{'mis' if many else 'mi'} {word}"
    else:
        subject, many = s.subject, False
    verb = VERBS[activity.verb.base][2 * s.past + many]
    place, gender = PLACES[activity.place]
    return f"{subject} {verb} {THINGS[activity.thing]} en {ARTICLES[gender, False]} {place}."


def all_statements() -> list[Statement]:
    """Every statement the lexicon can write: each subject at each place, each
    coloured thing, one or many, in both tenses."""
    subjects = [name for name, _ in world.NAMES] + list(RELATIVES)
    return [Statement(who, a.place, past) for who in subjects for a in ACTIVITIES for past in (False, True)] + [
        Statement("", thing, past, many) for thing in COLOURED for past in (False, True) for many in (False, True)
    ]


def monolingual_texts(n: int, seed: int = 0) -> list[str]:
    """`n` texts about the world, half English, half Spanish, shuffled, with no
    statement said in both languages: the English half and the Spanish half
    are drawn from disjoint statements, so the corpus holds no translated pair."""
    import random

    rng = random.Random(seed)
    pool = all_statements()
    rng.shuffle(pool)
    said_in = {"english": pool[: len(pool) // 2], "spanish": pool[len(pool) // 2 :]}
    texts = [english(rng.choice(said_in["english"])) for _ in range(n // 2)] + [spanish(rng.choice(said_in["spanish"])) for _ in range(n - n // 2)]
    rng.shuffle(texts)
    return texts


def parallel_pairs(texts: list[str]) -> list[tuple[str, str]]:
    """The (English, Spanish) translations of one statement that are both among
    `texts`: none in a monolingual corpus."""
    present = set(texts)
    return [(english(s), spanish(s)) for s in all_statements() if english(s) in present and spanish(s) in present]
