"""A generated corpus of e-mail-like text, for measuring learnjax on real-sized
text without downloading any: one message per line, about 1,100 characters
each, with what real mail holds that the built-in corpus does not: tens of
thousands of distinct words (most seen once or twice: names, products, codes,
typos), HTML remnants, URLs and addresses, numbers and dates, quoted replies,
signatures, and messages in English, German, French and Spanish.

    python -m benchmarks.mail_corpus OUT.txt [--mb 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import random
import string
from pathlib import Path

COMMON = {
    "en": ("the to and of a in is for you on that it with this be are we have your as at will from or our can not an please "
           "by if all would about any more they was has there what when which one me my been their do so new also time get up "
           "out see just thanks meeting today tomorrow week report attached send let know need like call next project team "
           "update before after could should here some well work make sure review order account information price offer"),
    "de": ("der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass "
           "sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch "
           "man sein wurde sei bitte danke gruß termin morgen woche bericht anbei grüße"),
    "fr": ("le la les de des et en un une du est pour que qui dans pas sur au par plus ne se ce il avec son sont nous vous "
           "merci bonjour cordialement réunion demain semaine rapport ci-joint envoyer été très être aussi où déjà"),
    "es": ("el la de que y en los del se las por un para con no una su al lo como más pero sus le ya o este sí porque esta "
           "entre cuando muy sin sobre también gracias hola saludos reunión mañana semana informe adjunto envío está"),
}
LANGUAGE_SHARES = {"en": 0.7, "de": 0.12, "fr": 0.1, "es": 0.08}
GREETINGS = {"en": ("Hi {name},", "Dear {name},", "Hello {name},"), "de": ("Hallo {name},", "Liebe {name},"),
             "fr": ("Bonjour {name},", "Cher {name},"), "es": ("Hola {name},", "Estimado {name},")}
CLOSINGS = {"en": ("Best regards,", "Thanks,", "Cheers,"), "de": ("Viele Grüße,", "Beste Grüße,"), "fr": ("Cordialement,", "Bien à vous,"),
            "es": ("Saludos,", "Un abrazo,")}
HTML = ("<br>", "<br/>", "&nbsp;", "<div>", "</div>", "<p>", "</p>", "&amp;", "<b>", "</b>", "&gt;")
SYLLABLES = ("ka", "lo", "mi", "ra", "ten", "vor", "sul", "ei", "ber", "an", "ti", "qu", "ön", "zé", "ña", "del", "ux", "pri", "ost",
             "gra", "fen", "ly", "ch", "sch", "tra", "ne", "ol", "is", "um", "ar")
TLDS = ("com", "org", "net", "de", "fr", "es", "io")


def _rare_words(rng: random.Random, n: int) -> list[str]:
    """`n` distinct pseudo-words: the long tail of a real vocabulary."""
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class MailWriter:
    """Draws messages: common words of the message's language, and a Zipf-like
    tail of rare words, names and codes."""

    def __init__(self, seed: int = 0, rare_words: int = 40_000):
        self.rng = random.Random(seed)
        self.tail = _rare_words(self.rng, rare_words)
        self.cumulative = list(itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(self.tail))))
        self.names = [w.capitalize() for w in self.tail[:3000]]

    def _word(self, language: str) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.72:
            return rng.choice(COMMON[language].split())
        if roll < 0.9:
            return rng.choices(self.tail, cum_weights=self.cumulative)[0]
        if roll < 0.93:
            return str(rng.choice((rng.randint(1, 99), rng.randint(100, 99999), f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.20{rng.randint(10, 26)}")))
        if roll < 0.95:
            return rng.choice(self.names)
        if roll < 0.97:
            return rng.choice(HTML)
        if roll < 0.98:
            return f"https://www.{rng.choice(self.tail)}.{rng.choice(TLDS)}/{rng.choice(self.tail)}?id={rng.randint(1, 10**6)}"
        if roll < 0.99:
            return f"{rng.choice(self.tail)}@{rng.choice(self.tail)}.{rng.choice(TLDS)}"
        return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(rng.randint(5, 9)))  # an order code

    def message(self) -> str:
        rng = self.rng
        language = rng.choices(list(LANGUAGE_SHARES), list(LANGUAGE_SHARES.values()))[0]
        target = max(200, int(rng.gauss(1100, 400)))
        parts = [rng.choice(GREETINGS[language]).format(name=rng.choice(self.names))]
        length = len(parts[0])
        while length < target:
            sentence = " ".join(self._word(language) for _ in range(rng.randint(6, 18)))
            sentence = sentence[0].upper() + sentence[1:] + rng.choice((".", ".", ".", "?", "!"))
            if rng.random() < 0.08:
                sentence = "> " + sentence  # a quoted reply
            parts.append(sentence)
            length += len(sentence) + 1
        parts += [rng.choice(CLOSINGS[language]), rng.choice(self.names), f"Tel. +{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000, 99999)}"]
        return " ".join(parts)


def write_mails(path: str | Path, megabytes: float = 5.0, seed: int = 0) -> dict:
    """Writes messages, one per line, until the file holds `megabytes` of UTF-8
    text; the same seed writes the same file. Returns its size and message count."""
    writer, path = MailWriter(seed), Path(path)
    limit, size, count = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < limit:
            line = writer.message() + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            count += 1
    return {"path": str(path), "bytes": size, "messages": count}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_mails(args.out, args.mb, args.seed))
