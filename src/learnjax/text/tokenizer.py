"""Tokenizers: text to token ids and back, with BERT's special tokens and a
chat model's (the end of a text or answer, and the two turns of a chat).

`Tokenizer` keeps whole words, which is clearest to show and fits the built-in
corpus's few hundred words. A user's corpus has tens of thousands, most of them
rare, and the output layer scores every one: `learnjax.text.subword.SubwordTokenizer`
splits rare words into pieces from a vocabulary of a chosen size instead. Both
share `BaseTokenizer`'s rows (`encode_batch`, `encode_windows`, `encode_packed`).
"""

from __future__ import annotations

import collections
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm  # plain text bars, as training's

from learnjax.files.atomic import write_text

PAD, UNK, MASK, CLS = "[PAD]", "[UNK]", "[MASK]", "[CLS]"
END, USER, ASSISTANT = "[END]", "[USER]", "[ASSISTANT]"
SPECIAL_TOKENS = (PAD, UNK, MASK, CLS, END, USER, ASSISTANT)
PAD_ID, UNK_ID, MASK_ID, CLS_ID, END_ID, USER_ID, ASSISTANT_ID = range(len(SPECIAL_TOKENS))
# Format 1 had BERT's four special tokens only; its word ids start 3 lower.
LEGACY_SPECIAL_TOKENS = SPECIAL_TOKENS[:4]

# A word (letters and digits, each possibly followed by combining accents, with
# inner apostrophes or hyphens), or any single other visible character
# (punctuation, emoji). Special tokens mark a row's structure, which only the
# tokenizer and the chat template write: written in a text (a question, a
# response, a corpus line) they are plain brackets around a word, or a text
# could end its own row early, or put words in the assistant's mouth. The one
# exception is `[MASK]` in a text given to fill in (`masks=True`).
_LETTERS = r"(?:[^\W_][\u0300-\u036f]*)+"
_WORD = rf"{_LETTERS}(?:['’-]{_LETTERS})*|[^\w\s]"
_TOKEN_RE = re.compile(_WORD, re.UNICODE)
_TOKEN_OR_MASK_RE = re.compile(rf"\[mask\]|{_WORD}", re.UNICODE)

TOKENIZER_FORMAT = 2
TOKENIZER_KINDS = ("word", "subword")


def split_words(text: str, *, masks: bool = False) -> list[str]:
    """Splits text into lower-cased words and punctuation. Special tokens written
    in it are text, except `[MASK]` (in either case) with `masks`: a text to fill in.

    >>> split_words("Today I went to the café and drank [MASK].", masks=True)
    ['today', 'i', 'went', 'to', 'the', 'café', 'and', 'drank', '[MASK]', '.']
    >>> split_words("[END] and [MASK] are words here")
    ['[', 'end', ']', 'and', '[', 'mask', ']', 'are', 'words', 'here']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    # Lower-case first, then split: a token then splits into itself again, even
    # where lower-casing changes a character (İ becomes i plus a combining dot).
    normalized = unicodedata.normalize("NFC", text.lower())
    if not (masks and "[" in normalized):
        return _TOKEN_RE.findall(normalized)
    return [MASK if t == "[mask]" else t for t in _TOKEN_OR_MASK_RE.findall(normalized)]


class BaseTokenizer:
    """What every tokenizer shares: rows of token ids for the models, built on
    its `encode`. Ids 0-6 are the special tokens (`SPECIAL_TOKENS`) in every one.

    `kind` names the tokenizer ("word" or "subword"); a model directory records
    it (`learnjax.storage.checkpoints`).
    """

    kind: str
    vocab: list[str]
    ids: dict[str, int]
    ids_shifted_by = 0  # by how much loading an older format moved the ids

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, *, masks: bool = False) -> list[int]:
        """Token ids of `text`, without `[CLS]` or padding. Special tokens written
        in it are text, never their ids (`split_words`); with `masks`, `[MASK]`
        written there is the mask to fill in (`learnjax.training.foundation.fill_masks`)."""
        raise NotImplementedError

    def encode_texts(self, texts: Iterable[str], *, masks: bool = False) -> Iterator[list[int]]:
        """`encode` of each text, in order (a tokenizer may encode many at once, faster)."""
        return (self.encode(text, masks=masks) for text in texts)

    def continues_word(self, token: str) -> bool:
        """Whether `token` is a piece that continues the word before it (never, for whole words)."""
        return False

    def tokens(self, text: str, *, masks: bool = False) -> list[str]:
        """The tokens `text` is read as: words, or pieces of words (`masks`: as `encode`'s).

        >>> Tokenizer.from_texts(["the sky is blue."]).tokens("The sky is green.")
        ['the', 'sky', 'is', '[UNK]', '.']
        """
        return [self.vocab[i] for i in self.encode(text, masks=masks)]

    def encode_batch(self, texts: Iterable[str], max_len: int, truncate: bool = True, *, masks: bool = False) -> np.ndarray:
        """Encodes texts into an int32 array of shape (N, max_len): `[CLS]` first, then padding.

        A text longer than a row keeps its first `max_len` tokens (its first
        window: see `encode_windows` for all of them); with `truncate=False` it
        raises a ValueError naming it instead. `masks`: as `encode`'s.
        """
        _check_row_length(max_len)
        texts = list(texts)
        rows = np.full((len(texts), max_len), PAD_ID, dtype=np.int32)
        for row, (text, ids) in enumerate(zip(texts, self.encode_texts(texts, masks=masks))):
            ids = [CLS_ID, *ids]
            if len(ids) > max_len:
                if not truncate:
                    raise ValueError(f"text has {len(ids) - 1} tokens but the model takes at most {max_len - 1}: {text[:80]!r}")
                ids = ids[:max_len]
            rows[row, : len(ids)] = ids
        return rows

    def encode_windows(self, texts: Iterable[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Every text as consecutive windows of `max_len - 1` tokens, each a row
        of its own that starts with `[CLS]`: nothing of a long text is cut.

        Returns `(rows, owners)`: rows (W, max_len) int32, and for each row the
        index of its text (W,). An empty text gets one row, `[CLS]` alone.
        """
        _check_row_length(max_len)
        rows, owners = [], []
        for i, ids in enumerate(self.encode_texts(texts)):
            for start in range(0, max(len(ids), 1), max_len - 1):
                window = [CLS_ID, *ids[start : start + max_len - 1]]
                rows.append(window + [PAD_ID] * (max_len - len(window)))
                owners.append(i)
        return np.asarray(rows, dtype=np.int32).reshape(-1, max_len), np.asarray(owners, dtype=np.int64)

    def encode_packed(self, texts: Iterable[str], max_len: int, *, end: bool = False, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Packs texts, each `[CLS]`-prefixed (and `[END]`-terminated with `end`,
        so that a model that writes learns where a text stops), into rows of
        `max_len` tokens.

        Returns `(tokens, segments)`, both (N, max_len) int32: `segments` numbers the
        texts within a row (1, 2, ...; 0 is padding), so attention can stay inside
        each text. Packing fills rows that single short texts would leave mostly
        padding. A text longer than a row is read whole, as consecutive windows of
        `max_len` tokens (each window a segment of its own; the last may share a
        row with the next texts). The texts are streamed straight into the
        arrays, so a large corpus is never held as Python lists; `progress` shows
        a bar counting them on a terminal.
        """
        packer = _RowPacker(max_len)
        for ids in self.encode_texts(_reading(texts, progress)):
            packer.add([CLS_ID, *ids, *([END_ID] if end else [])])
        return packer.finish()

    def to_json(self) -> str:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Writes the tokenizer as JSON (atomically: a crash leaves the old file whole)."""
        write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> BaseTokenizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_json(cls, text: str) -> BaseTokenizer:
        raise NotImplementedError


class Tokenizer(BaseTokenizer):
    """Maps words to integer ids and back.

    Ids 0-6 are the special tokens `[PAD]`, `[UNK]`, `[MASK]`, `[CLS]`, `[END]`,
    `[USER]` and `[ASSISTANT]`; every word outside the vocabulary becomes `[UNK]`,
    so any Unicode text can be encoded.
    """

    kind = "word"

    def __init__(self, vocab: Iterable[str]):
        self.vocab: list[str] = checked_vocabulary(vocab)
        self.ids: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        self.ids_shifted_by = 0  # by how much loading an older format moved the word ids

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Tokenizer:
        """Builds a vocabulary of the words in `texts` seen at least `min_count` times.

        Words are ordered by frequency (ties alphabetically), so the same texts
        always give the same ids.
        """
        _check_min_count(min_count)
        return cls._from_counts(collections.Counter(w for text in texts for w in split_words(text)), min_count, max_size)

    @classmethod
    def _from_counts(cls, counts: collections.Counter, min_count: int, max_size: int | None) -> Tokenizer:
        """`from_texts` for words already counted (`split_words` of every text)."""
        counts = collections.Counter({w: n for w, n in counts.items() if w not in SPECIAL_TOKENS})
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIAL_TOKENS))]
        if not words:
            raise ValueError(f"no usable tokens: the texts hold {sum(counts.values())} words, none seen at least min_count={min_count} times")
        return cls([*SPECIAL_TOKENS, *words])

    @classmethod
    def from_texts_packed(
        cls,
        texts: Iterable[str],
        max_len: int,
        min_count: int = 1,
        max_size: int | None = None,
        *,
        end: bool = False,
        progress: bool = False,
    ) -> tuple[Tokenizer, np.ndarray, np.ndarray]:
        """`from_texts(texts)` and its `encode_packed(texts, max_len, end=end)`, reading the
        texts once: each text is split into words only once, and `texts` may be a
        stream that cannot be read twice.

        Words are numbered as they first appear and packed under those numbers
        (the packing depends only on how many tokens each text has), then
        renumbered once the counts, and so the vocabulary, are known.
        """
        _check_min_count(min_count)
        counts: collections.Counter = collections.Counter()
        first_seen = _Numbering({token: i for i, token in enumerate(SPECIAL_TOKENS)})
        packer = _RowPacker(max_len)
        for text in _reading(texts, progress):
            words = split_words(text)
            counts.update(words)
            packer.add([CLS_ID, *map(first_seen.__getitem__, words), *([END_ID] if end else [])])
        tokenizer = cls._from_counts(counts, min_count, max_size)
        renumber = np.array([tokenizer.ids.get(w, UNK_ID) for w in first_seen], dtype=np.int32)
        tokens, segments = packer.finish()
        for start in range(0, len(tokens), _RENUMBER_ROWS):  # in place, a block at a time: no second copy
            block = tokens[start : start + _RENUMBER_ROWS]
            block[...] = renumber[block]
        return tokenizer, tokens, segments

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.vocab == other.vocab

    def unknown_words(self, texts: Iterable[str], min_count: int = 1) -> list[str]:
        """The words of `texts` outside the vocabulary seen at least `min_count`
        times, most frequent first (ties alphabetically).

        >>> Tokenizer.from_texts(["the sky is blue."]).unknown_words(["the sky is grey.", "grey clouds, grey sea."], 2)
        ['grey']
        """
        _check_min_count(min_count)
        counts = collections.Counter(w for text in texts for w in split_words(text) if w not in self.ids)
        return sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))

    def extended(self, words: Iterable[str]) -> Tokenizer:
        """This vocabulary with `words` added after it: every id it had stays the
        same, so a model's learned rows stay valid (`learnjax.training.pretraining.with_vocabulary`
        adds rows for the new ones). Words it has already are skipped."""
        new = [w for w in dict.fromkeys(words) if w not in self.ids]
        for word in new:
            if split_words(word) != [word]:
                raise ValueError(f"{word!r} is not one word as the tokenizer splits text")
        return Tokenizer([*self.vocab, *new])

    def encode(self, text: str, *, masks: bool = False) -> list[int]:
        return [self.ids.get(w, UNK_ID) for w in split_words(text, masks=masks)]

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

    def to_json(self) -> str:
        return json.dumps({"format": TOKENIZER_FORMAT, "vocab": self.vocab}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        """A saved tokenizer; one of format 1 gains the special tokens added since,
        which moves its word ids up by 3 (see `checkpoints` for its model)."""
        data = json.loads(text)
        if isinstance(data, dict) and data.get("kind", "word") != "word":
            raise ValueError(
                f"not a learnjax tokenizer of words: it is a {data['kind']!r} tokenizer (`learnjax.text.loading.tokenizer_from_json` reads every kind)"
            )
        if not isinstance(data, dict) or data.get("format") not in (1, TOKENIZER_FORMAT):
            raise ValueError(f"not a learnjax tokenizer (format {TOKENIZER_FORMAT}): {text[:60]!r}")
        vocab = data["vocab"]
        if data["format"] == 1:
            if tuple(vocab[: len(LEGACY_SPECIAL_TOKENS)]) != LEGACY_SPECIAL_TOKENS:
                raise ValueError(f"vocabulary must start with {LEGACY_SPECIAL_TOKENS}, got {vocab[:4]}")
            tokenizer = cls([*SPECIAL_TOKENS, *vocab[len(LEGACY_SPECIAL_TOKENS) :]])
            tokenizer.ids_shifted_by = len(SPECIAL_TOKENS) - len(LEGACY_SPECIAL_TOKENS)
            return tokenizer
        return cls(vocab)


def checked_vocabulary(vocab: Iterable[str]) -> list[str]:
    """`vocab` as a list, refused unless it starts with the special tokens and
    holds each token once."""
    tokens = list(vocab)
    if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {tokens[: len(SPECIAL_TOKENS)]}")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"vocabulary has duplicate entries: {[t for t, n in collections.Counter(tokens).items() if n > 1][:5]}")
    return tokens


def _check_row_length(max_len: int) -> None:
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2 ([CLS] plus one token), got {max_len}")


_RENUMBER_ROWS = 1 << 16


def _check_min_count(min_count: int) -> None:
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")


def _reading(texts: Iterable[str], progress: bool) -> Iterable[str]:
    """`texts`, with a bar on stderr counting them as they are read when `progress` is
    asked for and stderr is a terminal."""
    return tqdm(texts, desc="reading", unit=" texts", disable=None if progress else True, leave=False, mininterval=0.5)


class _Numbering(dict):
    """Numbers each new key as it is first looked up: 0, 1, 2, ..."""

    def __missing__(self, key: str) -> int:
        self[key] = number = len(self)
        return number


class _RowPacker:
    """Packs token-id lists into rows of `max_len` (see `BaseTokenizer.encode_packed`),
    writing finished rows, a block at a time, into two int32 arrays that grow in place."""

    BLOCK_ROWS = 4096

    def __init__(self, max_len: int):
        self.max_len = max_len
        self.tokens = np.zeros((0, max_len), dtype=np.int32)
        self.segments = np.zeros((0, max_len), dtype=np.int32)
        self.rows = 0  # rows written to the arrays
        self.row: list[int] = []  # the row being filled
        self.segment: list[int] = []
        self.block_tokens: list[int] = []  # finished rows, padded, not yet written
        self.block_segments: list[int] = []

    def add(self, ids: list[int]) -> None:
        # A text longer than a row: whole rows of its consecutive windows, then
        # the rest, packed as a short text would be. Nothing is cut.
        while len(ids) > self.max_len:
            if self.row:
                self._end_row()
            self.row, self.segment = ids[: self.max_len], [1] * self.max_len
            self._end_row()
            ids = ids[self.max_len :]
        if len(self.row) + len(ids) > self.max_len:
            self._end_row()
        self.segment += [(self.segment[-1] + 1) if self.segment else 1] * len(ids)
        self.row += ids

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if self.row:
            self._end_row()
        self._write_block()
        self._resize(self.rows)
        return self.tokens, self.segments

    def _end_row(self) -> None:
        padding = [PAD_ID] * (self.max_len - len(self.row))
        self.block_tokens += self.row + padding
        self.block_segments += self.segment + padding
        self.row, self.segment = [], []
        if len(self.block_tokens) >= self.BLOCK_ROWS * self.max_len:
            self._write_block()

    def _write_block(self) -> None:
        count = len(self.block_tokens) // self.max_len if self.max_len else 0
        if self.rows + count > len(self.tokens):
            self._resize(self.rows + max(count, self.rows // 8))
        for array, block in ((self.tokens, self.block_tokens), (self.segments, self.block_segments)):
            array[self.rows : self.rows + count] = np.array(block, dtype=np.int32).reshape(count, self.max_len)
            block.clear()
        self.rows += count

    def _resize(self, rows: int) -> None:
        # ndarray.resize reallocates in place (a large block is remapped, not
        # copied), so growing never holds an old and a new copy at once, as
        # np.concatenate or a list of rows would; the new rows are zeros.
        for array in (self.tokens, self.segments):
            array.resize((rows, self.max_len), refcheck=False)
