"""Translation from English to Spanish: the pairs a translator is tuned and
tested on, and the monolingual corpora its foundations read (no JAX).

A pair is one `spanish.Statement` written in both languages, the English as a
prompt ("translate: anna drinks coffee at the café."), the Spanish as the
response. The statements are split once: `train` (the tuning pairs are drawn
from it), `dev` (to choose the learning rate), `held_out` (sentences never in a
tuning pair) and `new_words`: the statements about `NEW_WORD_FACTS`, whose
words (museo, cuadros, plátano, cereza, ...) no other pair holds. Those words
are only in the monolingual corpus, where no sentence is said in both
languages (`spanish.monolingual_texts`).
"""

from __future__ import annotations

import random

from learnjax.data import spanish
from learnjax.data.questions import Example
from learnjax.text.tokenizer import split_words

PROMPT = "translate: "
SPLITS = ("train", "dev", "held_out", "new_words")
HELD_OUT_SHARE, DEV_SHARE = 0.25, 0.12
# A place and two coloured things whose sentences are all in `new_words`: their
# nouns (and the museum's paintings) are in no other pair, and the bilingual
# corpus speaks of each in both languages, every form of them (a test checks it).
NEW_WORD_FACTS = ("museum", "banana", "cherry")
LANGUAGES = ("english", "bilingual")


def pair(statement: spanish.Statement) -> Example:
    """The statement as a prompt in English and its response in Spanish."""
    return Example(PROMPT + spanish.english(statement), spanish.spanish(statement))


def statement_splits(seed: int = 0) -> dict[str, list[spanish.Statement]]:
    """Every statement of the lexicon in exactly one of `SPLITS`."""
    statements = spanish.all_statements()
    rest = [s for s in statements if s.fact not in NEW_WORD_FACTS]
    random.Random(seed).shuffle(rest)
    held, dev = round(HELD_OUT_SHARE * len(rest)), round(DEV_SHARE * len(rest))
    return {
        "train": rest[held + dev :],
        "dev": rest[held : held + dev],
        "held_out": rest[:held],
        "new_words": [s for s in statements if s.fact in NEW_WORD_FACTS],
    }


def examples(split: str, n: int | None = None, seed: int = 0) -> list[Example]:
    """The pairs of `split`: all of them in a fixed order, or `n` drawn by `seed`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    statements = statement_splits()[split]
    if n is not None:
        if not 0 < n <= len(statements):
            raise ValueError(f"n={n} pairs: the {split} split has {len(statements)}")
        statements = random.Random(seed).sample(statements, n)
    return [pair(s) for s in statements]


def training_examples(n: int, seed: int = 0) -> list[Example]:
    """`n` tuning pairs, drawn from the `train` statements by `seed`."""
    return examples("train", n, seed)


def leaked(training: list[Example], split: str = "held_out") -> list[str]:
    """The prompts of `training` that are sentences of `split`: none, when the
    split is kept out of tuning."""
    kept_out = {e.prompt for e in examples(split)}
    return [e.prompt for e in training if e.prompt in kept_out]


def words(texts) -> set[str]:
    """The words (and punctuation) of `texts`, as the word tokenizer splits them."""
    return {w for t in texts for w in split_words(t)}


def new_words() -> list[str]:
    """The Spanish words of the `new_words` pairs that no other pair holds."""
    elsewhere = words(e.response for split in SPLITS[:-1] for e in examples(split))
    return sorted(words(e.response for e in examples("new_words")) - elsewhere)


def key_word(statement: spanish.Statement) -> str:
    """The Spanish noun that names the statement's fact: the place, or the coloured thing (in its number)."""
    if statement.fact in spanish.COLOURED:
        noun = spanish.COLOURED[statement.fact][0]
        return spanish.plural(noun) if statement.plural else noun
    return spanish.PLACES[statement.fact][0]


def corpus(language: str, tokens: int, seed: int = 0) -> list[str]:
    """Texts about the world of about `tokens` tokens (each text's words and its
    end), English only or half English, half Spanish (`spanish.monolingual_texts`:
    never one statement in both). The same budget for both languages gives
    foundations that read as much text."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {language!r}")
    n = tokens // 5 + 1  # more texts than the budget needs: none has fewer than 5 tokens
    if language == "bilingual":
        drawn = spanish.monolingual_texts(n, seed)  # one draw: each statement in one language only
    else:
        rng = random.Random(seed)
        statements = spanish.all_statements()
        drawn = [spanish.english(rng.choice(statements)) for _ in range(n)]
    texts, count = [], 0
    for text in drawn:
        if count >= tokens:
            break
        texts.append(text)
        count += len(split_words(text)) + 1
    return texts


def token_count(texts: list[str]) -> int:
    """The tokens `corpus` counts: each text's words and its end."""
    return sum(len(split_words(t)) + 1 for t in texts)
