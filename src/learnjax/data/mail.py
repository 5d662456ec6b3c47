"""Generated e-mail with the properties of real mail that decide how a spam
filter must read it, made here from a seed (nothing downloaded):

- lengths like real mail: log-normal, median about 1,000 characters, a long
  tail of messages ten times longer;
- what real mail holds besides prose: a subject line, HTML remnants, URLs and
  addresses, order codes, numbers and dates, quoted replies, signatures and
  legal footers, a long tail of rare words (names, products, typos), and
  messages in English, German, French and Spanish;
- spam that does not announce itself: its subject and first lines read like
  ordinary mail ("following up on our call"); what gives it away comes later
  in the body. A reader of the first line or two sees no difference.
- what gives a message away is spread over many words: each kind of spam
  (and of ordinary mail) has its own topic, a few hundred words of which a
  message uses a handful, and every spam shares a looser style (a pool of a
  few hundred words, a few per message). A few labeled messages show only
  some of these words; the unlabeled mail shows which words go together.

One message per line (a message's line breaks become spaces), as
`learnjax pretrain --corpus` reads text. `MailWriter(seed).labeled(n)` draws
labeled messages (a pool to label and a test set); `write_mails` writes an
unlabeled corpus of a given size.
"""

from __future__ import annotations

import itertools
import math
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SPAM, HAM = "spam", "ham"
SPAM_SHARE = 0.5  # of the generated mail, labeled or not

COMMON = {
    "en": (
        "the to and of a in is for you on that it with this be are we have your as at will from or our can not an please "
        "by if all would about any more they was has there what when which one me my been their do so new also time get up "
        "out see just thanks today tomorrow week let know need like call next here some well work make sure could should"
    ),
    "de": (
        "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass "
        "sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch"
    ),
    "fr": (
        "le la les de des et en un une du est pour que qui dans pas sur au par plus ne se ce il avec son sont nous vous été très être aussi où déjà"
    ),
    "es": (
        "el la de que y en los del se las por un para con no una su al lo como más pero sus le ya o este sí porque esta "
        "entre cuando muy sin sobre también"
    ),
}
LANGUAGE_SHARES = {"en": 0.7, "de": 0.12, "fr": 0.1, "es": 0.08}
GREETINGS = {
    "en": ("Hi {name},", "Dear {name},", "Hello {name},"),
    "de": ("Hallo {name},", "Liebe {name},"),
    "fr": ("Bonjour {name},", "Cher {name},"),
    "es": ("Hola {name},", "Estimado {name},"),
}
CLOSINGS = {
    "en": ("Best regards,", "Thanks,", "Cheers,"),
    "de": ("Viele Grüße,", "Beste Grüße,"),
    "fr": ("Cordialement,", "Bien à vous,"),
    "es": ("Saludos,", "Un abrazo,"),
}
# How ordinary mail opens; spam copies it, so the first lines do not tell them apart.
OPENERS = (
    "following up on our call last week",
    "as discussed on the phone",
    "thanks for getting back to me so quickly",
    "I hope you had a good weekend",
    "quick note before the end of the day",
    "sorry for the late reply",
    "I wanted to reach out about the points below",
    "just checking in on where things stand",
)
SUBJECTS = (
    "Re: {word}",
    "Fwd: {word} {code}",
    "Follow up",
    "Quick question",
    "Re: our call",
    "{word} update",
    "Invoice {code}",
    "Your account",
    "Re: Re: {word}",
    "Next steps",
    "{word} and {word2}",
    "Documents for {word}",
)
HTML = (
    "<br>",
    "<br/>",
    "&nbsp;",
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "&amp;",
    "<b>",
    "</b>",
    "&gt;",
    "<td>",
    "</tr>",
    '<font color="#333333">',
    "</font>",
    '<span style="font-size:11px">',
    "</span>",
)
FOOTERS = (
    "This e-mail and any attachments are confidential and intended solely for the addressee.",
    "Please consider the environment before printing this e-mail.",
    "To unsubscribe from this list, click here or reply with remove in the subject.",
    "You are receiving this message because you registered on our site.",
    "Sent from my phone",
)
SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ra",
    "ten",
    "vor",
    "sul",
    "ei",
    "ber",
    "an",
    "ti",
    "qu",
    "ön",
    "zé",
    "ña",
    "del",
    "ux",
    "pri",
    "ost",
    "gra",
    "fen",
    "ly",
    "ch",
    "sch",
    "tra",
    "ne",
    "ol",
    "is",
    "um",
    "ar",
    "po",
    "dex",
    "mur",
    "sa",
    "vel",
    "ino",
)
TLDS = ("com", "org", "net", "de", "fr", "es", "io", "biz", "info")

TOPICS_PER_LABEL = 6
TOPIC_WORDS = 200  # each topic's vocabulary
STYLE_WORDS = 400  # each label's shared style
OPENING_SHARE = (0.3, 0.55)  # of the body, before the first word that tells spam from ham
OPENING_MIN = 250  # characters: a short message's too
TOPIC_RATE, STYLE_RATE = 0.12, 0.1  # of the words after the opening


def _pseudo_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    """`n` new distinct pseudo-words (not in `taken`, which they join)."""
    words: list[str] = []
    while len(words) < n:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _zipf_weights(n: int, exponent: float = 0.9) -> list[float]:
    return list(itertools.accumulate(1 / (rank + 1) ** exponent for rank in range(n)))


@dataclass(frozen=True)
class Mail:
    text: str
    label: str  # SPAM or HAM
    topic: int  # which of the label's topics


class MailWriter:
    """Draws messages. `seed` makes the vocabulary (topics, names, rare words);
    `stream` the messages drawn with it: streams of one seed are different
    messages of the same mail (an unlabeled corpus, a pool to label, a test
    set). The same seed and stream draw the same messages in the same order."""

    def __init__(self, seed: int = 0, stream: int = 0, rare_words: int = 40_000):
        rng = random.Random(seed)
        taken: set[str] = set()
        self.tail = sorted(_pseudo_words(rng, rare_words, taken))
        self.tail_weights = _zipf_weights(len(self.tail))
        self.names = [w.capitalize() for w in self.tail[:3000]]
        self.topics = {label: [_pseudo_words(rng, TOPIC_WORDS, taken) for _ in range(TOPICS_PER_LABEL)] for label in (SPAM, HAM)}
        self.style = {label: _pseudo_words(rng, STYLE_WORDS, taken) for label in (SPAM, HAM)}
        self.topic_weights, self.style_weights = _zipf_weights(TOPIC_WORDS), _zipf_weights(STYLE_WORDS, 1.0)
        self.rng = random.Random(f"{seed}:{stream}")

    def _filler(self, language: str) -> str:
        """A word that says nothing of the label: common words, the rare tail, numbers, markup, links."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.7:
            return rng.choice(COMMON[language].split())
        if roll < 0.88:
            return rng.choices(self.tail, cum_weights=self.tail_weights)[0]
        if roll < 0.92:
            return str(
                rng.choice((rng.randint(1, 99), rng.randint(100, 99999), f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.20{rng.randint(10, 26)}"))
            )
        if roll < 0.94:
            return rng.choice(self.names)
        if roll < 0.97:
            return rng.choice(HTML)
        if roll < 0.985:
            return f"https://www.{rng.choice(self.tail)}.{rng.choice(TLDS)}/{rng.choice(self.tail)}?id={rng.randint(1, 10**6)}"
        if roll < 0.993:
            return f"{rng.choice(self.tail)}@{rng.choice(self.tail)}.{rng.choice(TLDS)}"
        return self._code()

    def _code(self) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(self.rng.randint(5, 9)))

    def _telling(self, label: str, topic: int) -> str | None:
        """A word of the label's topic or style, or None (then a filler word)."""
        rng = self.rng
        roll = rng.random()
        if roll < TOPIC_RATE:
            return rng.choices(self.topics[label][topic], cum_weights=self.topic_weights)[0]
        if roll < TOPIC_RATE + STYLE_RATE:
            return rng.choices(self.style[label], cum_weights=self.style_weights)[0]
        return None

    def _sentences(self, language: str, characters: int, label: str | None = None, topic: int = 0) -> list[str]:
        """Sentences of about `characters` in all; with a label, some words tell it."""
        rng, sentences, length = self.rng, [], 0
        while length < characters:
            words = [(label and self._telling(label, topic)) or self._filler(language) for _ in range(rng.randint(6, 18))]
            sentence = " ".join(words)
            sentences.append(sentence[0].upper() + sentence[1:] + rng.choice((".", ".", ".", "?", "!")))
            length += len(sentences[-1]) + 1
        return sentences

    def message(self, label: str | None = None) -> Mail:
        rng = self.rng
        label = label or (SPAM if rng.random() < SPAM_SHARE else HAM)
        topic = rng.randrange(TOPICS_PER_LABEL)
        language = rng.choices(list(LANGUAGE_SHARES), list(LANGUAGE_SHARES.values()))[0]
        length = min(20_000, max(150, int(math.exp(rng.gauss(math.log(750), 0.75)))))
        word, word2 = rng.choice(self.tail), rng.choice(self.tail)
        parts = [
            "Subject: " + rng.choice(SUBJECTS).format(word=word, word2=word2, code=self._code()),
            rng.choice(GREETINGS[language]).format(name=rng.choice(self.names)),
        ]
        if language == "en":
            parts.append(rng.choice(OPENERS).capitalize() + ".")
        opening = max(OPENING_MIN, int(length * rng.uniform(*OPENING_SHARE)))
        parts += self._sentences(language, opening)  # the same for spam and ham
        parts += self._sentences(language, max(length - opening, 100), label, topic)
        parts += [
            rng.choice(CLOSINGS[language]),
            rng.choice(self.names),
            rng.choice(self.names) + " | " + rng.choice(self.tail).capitalize() + " GmbH",
            f"Tel. +{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000, 99999)}",
        ]
        if rng.random() < (0.35 if label == HAM else 0.1):  # a quoted reply: an earlier message of the thread
            quoted = self._sentences(language, int(length * rng.uniform(0.2, 0.8)), label if label == HAM else None, topic)
            parts += [f"On {rng.randint(1, 28)}.{rng.randint(1, 12)}.20{rng.randint(10, 26)}, {rng.choice(self.names)} wrote:"]
            parts += ["> " + s for s in quoted]
        if rng.random() < 0.4:
            parts.append(rng.choice(FOOTERS))
        return Mail(" ".join(parts), label, topic)

    def labeled(self, n: int) -> list[Mail]:
        """`n` messages, as many spam as ham (spam first if `n` is odd), shuffled."""
        mails = [self.message(SPAM if i % 2 == 0 else HAM) for i in range(n)]
        self.rng.shuffle(mails)
        return mails


def balanced_mails(pool: list[Mail], n: int, seed: int) -> list[Mail]:
    """`n` messages of `pool`, half spam, half ham (spam first if `n` is odd), drawn with `seed`, shuffled."""
    rng = random.Random(seed)
    chosen = rng.sample([m for m in pool if m.label == SPAM], n - n // 2) + rng.sample([m for m in pool if m.label == HAM], n // 2)
    rng.shuffle(chosen)
    return chosen


def mail_texts(megabytes: float, seed: int = 0, stream: int = 0) -> Iterator[str]:
    """Unlabeled messages until they hold `megabytes` of UTF-8 text (with a line break each)."""
    writer, size = MailWriter(seed, stream), 0
    while size < megabytes * 1e6:
        text = writer.message().text
        size += len(text.encode("utf-8")) + 1
        yield text


def write_mails(path: str | Path, megabytes: float = 5.0, seed: int = 0, stream: int = 0) -> dict:
    """Writes `mail_texts`, one per line; the same seed writes the same file.
    Returns its size and message count."""
    path, size, count = Path(path), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        for text in mail_texts(megabytes, seed, stream):
            f.write(text + "\n")
            size += len(text.encode("utf-8")) + 1
            count += 1
    return {"path": str(path), "bytes": size, "messages": count}
