"""A word-level tokenizer built from text, with BERT's special tokens and a
chat model's (the end of a text or answer, and the two turns of a chat)."""

from __future__ import annotations

import collections
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

PAD, UNK, MASK, CLS = "[PAD]", "[UNK]", "[MASK]", "[CLS]"
END, USER, ASSISTANT = "[END]", "[USER]", "[ASSISTANT]"
SPECIAL_TOKENS = (PAD, UNK, MASK, CLS, END, USER, ASSISTANT)
PAD_ID, UNK_ID, MASK_ID, CLS_ID, END_ID, USER_ID, ASSISTANT_ID = range(len(SPECIAL_TOKENS))
# Format 1 had BERT's four special tokens only; its word ids start 3 lower.
LEGACY_SPECIAL_TOKENS = SPECIAL_TOKENS[:4]

# A word (letters and digits, each possibly followed by combining accents, with
# inner apostrophes or hyphens), `[MASK]` or `[UNK]` written in brackets, or any
# single other visible character (punctuation, emoji). The other special tokens
# mark a row's structure, which only the tokenizer and the chat template write:
# in a text they are plain brackets around a word, or a text could end its own
# row early, or put words in the assistant's mouth.
_LETTERS = r"(?:[^\W_][\u0300-\u036f]*)+"
_TOKEN_RE = re.compile(rf"\[(?:unk|mask)\]|{_LETTERS}(?:['’-]{_LETTERS})*|[^\w\s]", re.UNICODE)

TOKENIZER_FORMAT = 2


def split_words(text: str) -> list[str]:
    """Splits text into lower-cased words and punctuation; special tokens stay whole.

    >>> split_words("Today I went to the café and drank [MASK].")
    ['today', 'i', 'went', 'to', 'the', 'café', 'and', 'drank', '[MASK]', '.']
    >>> split_words("[PAD] is a word here")
    ['[', 'pad', ']', 'is', 'a', 'word', 'here']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    # Lower-case first, then split: a token then splits into itself again, even
    # where lower-casing changes a character (İ becomes i plus a combining dot).
    normalized = unicodedata.normalize("NFC", text.lower())
    return [t.upper() if t.startswith("[") and t.upper() in SPECIAL_TOKENS else t for t in _TOKEN_RE.findall(normalized)]


class Tokenizer:
    """Maps words to integer ids and back.

    Ids 0-6 are the special tokens `[PAD]`, `[UNK]`, `[MASK]`, `[CLS]`, `[END]`,
    `[USER]` and `[ASSISTANT]`; every word outside the vocabulary becomes `[UNK]`,
    so any Unicode text can be encoded.
    """

    def __init__(self, vocab: Iterable[str]):
        words = list(vocab)
        if tuple(words[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {words[: len(SPECIAL_TOKENS)]}")
        if len(set(words)) != len(words):
            dupes = [w for w, n in collections.Counter(words).items() if n > 1]
            raise ValueError(f"vocabulary has duplicate entries: {dupes[:5]}")
        self.vocab: list[str] = words
        self.ids: dict[str, int] = {w: i for i, w in enumerate(words)}
        self.ids_shifted_by = 0  # by how much loading an older format moved the word ids

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Tokenizer:
        """Builds a vocabulary of the words in `texts` seen at least `min_count` times.

        Words are ordered by frequency (ties alphabetically), so the same texts
        always give the same ids.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts = collections.Counter(w for text in texts for w in split_words(text))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIAL_TOKENS))]
        if not words:
            raise ValueError(
                f"no usable tokens: the texts hold {sum(counts.values())} words, none seen "
                f"at least min_count={min_count} times"
            )
        return cls([*SPECIAL_TOKENS, *words])

    def __len__(self) -> int:
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.vocab == other.vocab

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without `[CLS]` or padding."""
        return [self.ids.get(w, UNK_ID) for w in split_words(text)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Joins the words of `ids` with spaces (padding and `[CLS]` dropped)."""
        words = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"token id {i} is outside the vocabulary of {len(self.vocab)} words")
            if skip_special and i in (PAD_ID, CLS_ID):
                continue
            words.append(self.vocab[i])
        return " ".join(words)

    def encode_batch(self, texts: Iterable[str], max_len: int, truncate: bool = True) -> np.ndarray:
        """Encodes texts into an int32 array of shape (N, max_len): `[CLS]` first, then padding.

        With `truncate=False` a text that does not fit raises a ValueError naming it.
        """
        if max_len < 2:
            raise ValueError(f"max_len must be at least 2 ([CLS] plus one token), got {max_len}")
        rows = []
        for text in texts:
            ids = [CLS_ID, *self.encode(text)]
            if len(ids) > max_len:
                if not truncate:
                    raise ValueError(
                        f"text has {len(ids) - 1} tokens but the model takes at most "
                        f"{max_len - 1}: {text[:80]!r}"
                    )
                ids = ids[:max_len]
            rows.append(ids + [PAD_ID] * (max_len - len(ids)))
        return np.asarray(rows, dtype=np.int32).reshape(-1, max_len)

    def encode_packed(self, texts: Iterable[str], max_len: int, *, end: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Packs texts, each `[CLS]`-prefixed (and `[END]`-terminated with `end`,
        so that a model that writes learns where a text stops), into rows of
        `max_len` tokens.

        Returns `(tokens, segments)`, both (N, max_len) int32: `segments` numbers the
        texts within a row (1, 2, ...; 0 is padding), so attention can stay inside
        each text. Packing fills rows that single short texts would leave mostly
        padding. Texts longer than a row are truncated.
        """
        rows, segs = [], []
        row: list[int] = []
        seg: list[int] = []
        for text in texts:
            ids = [CLS_ID, *self.encode(text), *([END_ID] if end else [])][:max_len]
            if len(row) + len(ids) > max_len:
                rows.append(row)
                segs.append(seg)
                row, seg = [], []
            seg += [(seg[-1] + 1) if seg else 1] * len(ids)
            row += ids
        if row:
            rows.append(row)
            segs.append(seg)
        tokens = np.zeros((len(rows), max_len), dtype=np.int32)
        segments = np.zeros((len(rows), max_len), dtype=np.int32)
        for i, (r, g) in enumerate(zip(rows, segs)):
            tokens[i, : len(r)] = r
            segments[i, : len(g)] = g
        return tokens, segments

    def to_json(self) -> str:
        return json.dumps({"format": TOKENIZER_FORMAT, "vocab": self.vocab}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        """A saved tokenizer; one of format 1 gains the special tokens added since,
        which moves its word ids up by 3 (see `checkpoints` for its model)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") not in (1, TOKENIZER_FORMAT):
            raise ValueError(f"not a learnjax tokenizer (format {TOKENIZER_FORMAT}): {text[:60]!r}")
        vocab = data["vocab"]
        if data["format"] == 1:
            if tuple(vocab[: len(LEGACY_SPECIAL_TOKENS)]) != LEGACY_SPECIAL_TOKENS:
                raise ValueError(f"vocabulary must start with {LEGACY_SPECIAL_TOKENS}, got {vocab[:4]}")
            tokenizer = cls([*SPECIAL_TOKENS, *vocab[len(LEGACY_SPECIAL_TOKENS):]])
            tokenizer.ids_shifted_by = len(SPECIAL_TOKENS) - len(LEGACY_SPECIAL_TOKENS)
            return tokenizer
        return cls(vocab)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the vocabulary as JSON (atomically: a crash leaves the old file whole)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
