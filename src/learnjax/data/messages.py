"""Labeled messages: spam (offers, prizes, scams) and not spam (personal chats).

A message is a frame with two topic words of its class: "Quick question about
the voucher and the refund." Most frames fit either class, so the topic words
decide. Within each class the topic words are drawn with falling frequency
(Zipf-like): the labeled pool mostly repeats the common ones, while the test set
uses only the rare ones. A small labeled subset has rarely seen a rare word; the
unlabeled corpus has seen all of them, each beside other words of its class. So
a model pre-trained on the corpus knows that "jackpot" keeps company with
"prize", and a model trained on a few labels alone does not: exactly what
pre-training should transfer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

SPAM, HAM = 1, 0
LABEL_NAMES = ("not spam", "spam")

# Most frequent first; the test set draws only from the rare half.
TOPICS = {
    SPAM: (
        "prize",
        "offer",
        "discount",
        "voucher",
        "deal",
        "reward",
        "cash",
        "bonus",
        "sale",
        "coupon",
        "loan",
        "credit",
        "jackpot",
        "lottery",
        "giveaway",
        "cashback",
        "promotion",
        "bargain",
        "refund",
        "payout",
        "casino",
        "crypto",
        "investment",
        "mortgage",
    ),
    HAM: (
        "dinner",
        "lunch",
        "party",
        "film",
        "keys",
        "homework",
        "birthday",
        "picnic",
        "train",
        "umbrella",
        "groceries",
        "concert",
        "barbecue",
        "wedding",
        "laundry",
        "rehearsal",
        "sleepover",
        "recipe",
        "garden",
        "puppy",
        "photos",
        "match",
        "babysitter",
        "haircut",
    ),
}
N_COMMON = 12

NEUTRAL_FRAMES = (
    "quick question about the {a} and the {b}.",
    "did you get my message about the {a}? the {b} too.",
    "don't forget the {a} tomorrow, and the {b}.",
    "good news about the {a}! the {b} is sorted too.",
    "reminder: the {a} is today. details about the {b} below.",
    "can we talk about the {a}? and the {b}.",
    "i have news about the {a} and the {b}, call me.",
    "re: your {a}. the {b} is confirmed.",
)
CLASS_FRAMES = {
    SPAM: (
        "congratulations! your {a} is waiting. click the link to claim the {b}.",
        "act now: {a} and {b} for selected customers only!",
        "exclusive {a} plus a free {b}, reply yes to get it.",
    ),
    HAM: (
        "hi mum, thanks for the {a}. see you at the {b}?",
        "running late for the {a}, save me some of the {b}.",
        "love you! let's talk about the {a} and the {b} tonight x",
    ),
}
CLASS_FRAME_SHARE = 0.3
ENDINGS = ("", "thanks.", "see you soon.", "ok?", "cheers", "let me know.")


@dataclass(frozen=True)
class Message:
    text: str
    label: int  # SPAM or HAM


def _topic(rng: random.Random, label: int, split: str) -> str:
    words = TOPICS[label]
    if split == "held_out":
        return rng.choice(words[N_COMMON:])
    if split == "any":
        return rng.choice(words)
    return rng.choices(words, weights=[1 / (rank + 1) for rank in range(len(words))])[0]


def random_message(rng: random.Random, spam: bool, split: str = "pool") -> Message:
    """One message. `split` picks how topic words are drawn: "pool" (common words
    often, rare ones seldom), "held_out" (rare words only) or "any" (all alike)."""
    if split not in ("pool", "held_out", "any"):
        raise ValueError(f"split must be 'pool', 'held_out' or 'any', got {split!r}")
    label = SPAM if spam else HAM
    frames = CLASS_FRAMES[label] if rng.random() < CLASS_FRAME_SHARE else NEUTRAL_FRAMES
    a = _topic(rng, label, split)
    b = _topic(rng, label, split)
    while b == a:
        b = _topic(rng, label, split)
    text = f"{rng.choice(frames).format(a=a, b=b)} {rng.choice(ENDINGS)}".strip()
    return Message(text[0].upper() + text[1:], label)


def _unique_balanced(n: int, seed: int, split: str, exclude: set[str] = frozenset()) -> list[Message]:
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2 (half spam, half not), got {n}")
    rng = random.Random(seed)
    found: dict[bool, dict[str, Message]] = {True: {}, False: {}}
    attempts = 0
    while min(len(found[True]), len(found[False])) < n // 2:
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(f"cannot make {n} distinct {split} messages")
        spam = len(found[True]) < len(found[False]) or (len(found[True]) == len(found[False]) and rng.random() < 0.5)
        message = random_message(rng, spam, split)
        if message.text not in exclude:
            found[spam].setdefault(message.text, message)
    items = list(found[True].values())[: n // 2] + list(found[False].values())[: n // 2]
    rng.shuffle(items)
    return items


POOL_SIZE, DEV_SIZE, TEST_SIZE = 512, 128, 400

# Every labeled message fits in 24 tokens ([CLS] included): classifiers of
# messages read rows of this length, shorter (and faster) than the corpus rows.
MESSAGE_MAX_LEN = 24


@lru_cache(maxsize=4)
def labeled_splits(seed: int = 0) -> dict[str, tuple[Message, ...]]:
    """The labeled data: a training `pool`, a `dev` set for choosing learning rates
    (pool wording, disjoint from the pool) and a `test` set in held-out wording."""
    pool = _unique_balanced(POOL_SIZE, seed, "pool")
    dev = _unique_balanced(DEV_SIZE, seed + 1, "pool", exclude={m.text for m in pool})
    test = _unique_balanced(TEST_SIZE, seed + 2, "held_out")
    return {"pool": tuple(pool), "dev": tuple(dev), "test": tuple(test)}


def held_out_texts() -> tuple[str, ...]:
    """Texts of the test set, which the unlabeled corpus must never contain."""
    return tuple(m.text for m in labeled_splits()["test"])


def balanced_subset(messages: tuple[Message, ...], n: int, seed: int) -> list[Message]:
    """`n` messages, half of each label, drawn with `seed` (the first n of a shuffle)."""
    by_label = {label: [m for m in messages if m.label == label] for label in (SPAM, HAM)}
    if n < 2 or n // 2 > min(len(v) for v in by_label.values()):
        raise ValueError(f"n must be between 2 and {2 * min(len(v) for v in by_label.values())}, got {n}")
    rng = random.Random(seed)
    chosen = []
    for label in (SPAM, HAM):
        chosen += rng.sample(by_label[label], n // 2 + (n % 2 if label == SPAM else 0))
    rng.shuffle(chosen)
    return chosen
