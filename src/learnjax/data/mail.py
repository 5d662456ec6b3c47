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
- what gives a message away is spread over many words, real ones: each kind
  of spam (pills, loans, prizes...) and of ordinary mail (meetings, invoices,
  travel...) has its own topic, a few dozen words of which a message uses a
  handful, in runs of words that go together; and every spam shares a looser
  style ("free", "limited", "click"), as ordinary mail shares its own. A few
  labeled messages show only some of these words; the unlabeled mail shows
  which words go together.

One message per line (a message's line breaks become spaces), as
`learnjax pretrain --corpus` reads text. `MailWriter(seed).labeled(n)` draws
labeled messages (a pool to label and a test set); `write_mails` writes an
unlabeled corpus of a given size.
"""

from __future__ import annotations

import functools
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

# What tells spam from ham: real words (none of the openers' and subjects' that spam copies), as in real mail (a subword vocabulary
# keeps the frequent ones whole and splits the rest into pieces they share
# with their kin: "refinance", "refinancing"). Each label has six topics, and
# a style every message of the label shares. A topic's words come in runs of a
# few ("cheap generic pills", "quarterly budget review"): words that go
# together stand together, as in real text, where pre-training finds them.
TOPICS = {
    SPAM: (
        "pharmacy prescription pills meds generic tablets dosage capsules viagra cialis refill pharmacist medication weight loss diet "
        "supplements pain relief anxiety sleeping discreet packaging approved brand quality canadian drugstore cheapest online",
        "loan loans credit debt mortgage refinance refinancing rates approval lender score consolidation payday borrow funds repayment "
        "monthly installments interest bankruptcy qualify eligible application lenders homeowners",
        "winner lottery prize claim jackpot congratulations selected draw ticket reward sweepstakes award million dollars beneficiary "
        "agent processing fee notification lucky winning payout international transfer",
        "investment bitcoin crypto trading profit returns portfolio stock shares broker signals platform wallet token forex earnings "
        "passive income opportunity invest investors profits doubled market",
        "verify suspended password login security unusual activity confirm identity locked billing details restore access unauthorized "
        "bank card expired validate suspension verification credentials",
        "replica watches luxury designer handbags sunglasses outlet shoes jewelry clearance coupon wholesale authentic genuine rolex "
        "fashion wallets bags perfume collection",
    ),
    HAM: (
        "meeting agenda calendar slot room minutes attendees presentation slides invite reschedule availability afternoon morning "
        "quarterly session conference workshop",
        "project deadline milestone report deliverable requirements specification revision version scope timeline estimate resources "
        "testing release documentation prototype",
        "invoice payment receipt expense reimbursement accounting audit tax forecast spreadsheet figures balance ledger statement "
        "purchase vendor contract budget",
        "flight hotel booking itinerary airport train reservation venue visa taxi departure arrival luggage accommodation trip travel platform",
        "candidate interview resume position hiring onboarding salary manager role references colleague department policy vacation leave recruiting",
        "dinner birthday party kids school family lunch photos garden holiday wedding recipe movie concert friends neighbors grandma",
    ),
}
STYLE = {
    SPAM: (
        "free offer click limited exclusive act urgent bonus save cash instant cheap amazing discount guaranteed unbelievable hurry "
        "special promotion lowest expires unlimited miracle secret deal now risk-free"
    ),
    HAM: (
        "attached regards comments notes draft team colleagues mentioned shared document suggestions agreed "
        "reminder thoughts changes earlier finalize feedback review"
    ),
}
OPENING_SHARE = (0.3, 0.55)  # of the body, before the first word that tells spam from ham
OPENING_MIN = 250  # characters: a short message's too
TOPIC_RATE, STYLE_RATE = 0.06, 0.05  # runs started per word after the opening
RUN = (1, 3)  # words of a run


def _pseudo_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    """`n` new distinct pseudo-words (not in `taken`, which they join): names, products, typos, the rare tail."""
    words: list[str] = []
    while len(words) < n:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


@functools.cache
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
        # The seed decides which of a topic's words are frequent; the rare tail never repeats a telling word.
        self.topics = {label: [rng.sample(words.split(), len(words.split())) for words in TOPICS[label]] for label in (SPAM, HAM)}
        self.style = {label: rng.sample(STYLE[label].split(), len(STYLE[label].split())) for label in (SPAM, HAM)}
        taken = {word for label in (SPAM, HAM) for words in (*self.topics[label], self.style[label]) for word in words}
        self.tail = sorted(_pseudo_words(rng, rare_words, taken))
        self.tail_weights = _zipf_weights(len(self.tail))
        self.names = [w.capitalize() for w in self.tail[:3000]]
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

    def _telling(self, label: str, topic: int) -> list[str]:
        """A run of words of the label's topic or style, or none (then a filler word)."""
        rng = self.rng
        roll = rng.random()
        if roll < TOPIC_RATE:
            words = self.topics[label][topic]
        elif roll < TOPIC_RATE + STYLE_RATE:
            words = self.style[label]
        else:
            return []
        return list(dict.fromkeys(rng.choices(words, cum_weights=_zipf_weights(len(words)), k=rng.randint(*RUN))))  # no word twice in a row

    def _sentences(self, language: str, characters: int, label: str | None = None, topic: int = 0) -> list[str]:
        """Sentences of about `characters` in all; with a label, some runs of words tell it."""
        rng, sentences, length = self.rng, [], 0
        while length < characters:
            words: list[str] = []
            for _ in range(rng.randint(6, 18)):
                words += (label and self._telling(label, topic)) or [self._filler(language)]
            sentence = " ".join(words)
            sentences.append(sentence[0].upper() + sentence[1:] + rng.choice((".", ".", ".", "?", "!")))
            length += len(sentences[-1]) + 1
        return sentences

    def message(self, label: str | None = None) -> Mail:
        rng = self.rng
        label = label or (SPAM if rng.random() < SPAM_SHARE else HAM)
        topic = rng.randrange(len(self.topics[label]))
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
