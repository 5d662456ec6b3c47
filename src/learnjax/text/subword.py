"""A subword tokenizer for the user's own text: WordPiece, trained with the
Hugging Face `tokenizers` library.

A word-level vocabulary of real text holds every word ever seen, tens of
thousands of them, most seen once or twice, and a language model's output layer
scores all of them at every prediction. WordPiece keeps a vocabulary of a chosen
size instead (`VOCAB_SIZE` by default): frequent words whole, rare ones split
into pieces, a piece that continues a word marked `##` ("stethoscope" may become
`st ##eth ##os ##cope`). So no word is ever out of the vocabulary, only split.

The text is read as the word-level `Tokenizer` reads it: lower-cased, Unicode
NFC, split at spaces and punctuation; special tokens written in a text are
plain brackets around a word, save `[MASK]` in a text to fill in (`masks=True`).
Ids 0-6 are the same special tokens.
A character the vocabulary never saw makes its word `[UNK]` (WordPiece's rule);
every printable ASCII character is in every vocabulary.
"""

from __future__ import annotations

import itertools
import json
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Iterator

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as Backend

from learnjax.text.tokenizer import CLS_ID, MASK, PAD_ID, SPECIAL_TOKENS, UNK, BaseTokenizer, checked_vocabulary

VOCAB_SIZE = 8000
PIECE_PREFIX = "##"
SUBWORD_FORMAT = 1
# Always in the vocabulary, seen in the corpus or not (text is lower-cased first).
ALPHABET = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
_WRITTEN_MASK = re.compile(re.escape(MASK.lower()))
_ENCODE_CHUNK = 1024  # texts per call of the library's parallel batch encoder


def _as_read(text: str, masks: bool = False) -> str:
    """`text` as the library is given it: lower-cased (as its normalizer would),
    so that no special token written in it (matched before normalizing) is
    matched; with `masks`, `[mask]` in any case is then written as `[MASK]`, the one matched."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    text = text.lower()
    return _WRITTEN_MASK.sub(MASK, text) if masks and "[" in text else text


def _pipeline(model) -> Backend:
    """The library's tokenizer around a WordPiece `model`, reading text as `split_words` does."""
    backend = Backend(model)
    backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.NFC()])
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # spaces and punctuation
    backend.decoder = decoders.WordPiece(prefix=PIECE_PREFIX)
    # Only `[MASK]` is matched when written in a text, and only in one to fill in
    # (`_as_read`); `[PAD]`, `[CLS]` or a chat turn written there would end a row
    # early or speak for the assistant.
    backend.add_special_tokens([AddedToken(MASK, normalized=False, special=True)])
    return backend


def rereadable(texts: Iterable[str] | Callable[[], Iterable[str]]) -> Callable[[], Iterator[str]]:
    """A function that returns a new pass over `texts` at each call: `texts`
    itself if it is a function, a new iterator of an iterable that can be read
    again (a list, `learnjax.data.textfiles.TextLines`), or a list kept of a stream
    that cannot (a generator)."""
    if callable(texts):
        return lambda: iter(texts())
    if iter(texts) is texts:
        kept = list(texts)
        return lambda: iter(kept)
    return lambda: iter(texts)


class SubwordTokenizer(BaseTokenizer):
    """WordPiece pieces to integer ids and back (see the module's description).

    >>> tokenizer = SubwordTokenizer.train(["the nurse checks the stethoscope.", "the nurse checks the chart."] * 20, vocab_size=300)
    >>> tokenizer.tokens("The nurse checks the [MASK].", masks=True)
    ['the', 'nurse', 'checks', 'the', '[MASK]', '.']
    >>> tokenizer.decode(tokenizer.encode("The nurse checks the stethoscope."))
    'the nurse checks the stethoscope.'
    """

    kind = "subword"

    def __init__(self, vocab: Iterable[str]):
        pieces = checked_vocabulary(vocab)
        if not all(isinstance(p, str) and p for p in pieces):
            raise ValueError("its vocabulary holds entries that are not text")
        self.vocab: list[str] = pieces
        self.ids: dict[str, int] = {p: i for i, p in enumerate(pieces)}
        self._backend = _pipeline(models.WordPiece(self.ids, unk_token=UNK, continuing_subword_prefix=PIECE_PREFIX))

    @property
    def backend(self):
        """The `tokenizers` library's tokenizer underneath (to measure it alone)."""
        return self._backend

    @classmethod
    def train(cls, texts: Iterable[str] | Callable[[], Iterable[str]], vocab_size: int = VOCAB_SIZE, *, min_frequency: int = 2) -> SubwordTokenizer:
        """Learns a vocabulary of at most `vocab_size` tokens (special tokens
        included; the characters of the texts and `ALPHABET` are kept whole even
        beyond it) from `texts`: any iterable of texts, or a function that returns
        one. Pieces are merged only from pairs seen `min_frequency` times.

        The same texts always give the same vocabulary. (The library numbers the
        `##` pieces of single characters in the order of a hash map, which breaks
        ties between merges differently from run to run: tokenizers#1794. They
        are numbered here first, in sorted order.) So the texts are read twice:
        for their characters, then to train; a stream is kept in memory for that.
        """
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size must be an int above the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size!r}")
        read = rereadable(texts)
        seen: set[str] = set()
        for text in read():
            seen.update(unicodedata.normalize("NFC", _as_read(text)))
        if not any(not c.isspace() for c in seen):
            raise ValueError("no usable tokens: the texts are empty")
        characters = sorted(c for c in seen.union(ALPHABET) if not c.isspace())
        backend = _pipeline(models.WordPiece(unk_token=UNK, continuing_subword_prefix=PIECE_PREFIX))
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=characters,
            special_tokens=[*SPECIAL_TOKENS, *(PIECE_PREFIX + c for c in characters)],  # numbered first, in this order
            continuing_subword_prefix=PIECE_PREFIX,
            show_progress=False,
        )
        backend.train_from_iterator(map(_as_read, read()), trainer)
        by_id = sorted(backend.get_vocab(with_added_tokens=False).items(), key=lambda item: item[1])
        return cls(piece for piece, _ in by_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubwordTokenizer) and self.vocab == other.vocab

    def encode(self, text: str, *, masks: bool = False) -> list[int]:
        return self._backend.encode(_as_read(text, masks), add_special_tokens=False).ids

    def encode_texts(self, texts: Iterable[str], *, masks: bool = False) -> Iterator[list[int]]:
        texts = iter(texts)
        while chunk := list(itertools.islice(texts, _ENCODE_CHUNK)):
            for encoding in self._backend.encode_batch([_as_read(t, masks) for t in chunk], add_special_tokens=False):
                yield encoding.ids

    def continues_word(self, token: str) -> bool:
        return token.startswith(PIECE_PREFIX) and len(token) > len(PIECE_PREFIX)

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """The text of `ids`: pieces joined into their words, no space before
        punctuation (padding and `[CLS]` dropped); a first piece that continues
        a word is written without its "##"."""
        pieces = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"token id {i} is outside the vocabulary of {len(self.vocab)} tokens")
            if not (skip_special and i in (PAD_ID, CLS_ID)):
                pieces.append(self.vocab[i])
        if pieces and pieces[0].startswith(PIECE_PREFIX) and len(pieces[0]) > len(PIECE_PREFIX):
            # Text that starts inside a word (a continuation written after a prompt): the piece as it is spelled.
            pieces[0] = pieces[0][len(PIECE_PREFIX) :]
        return self._backend.decoder.decode(pieces)

    def to_json(self) -> str:
        # The vocabulary alone: the way text is read is this module's code, kept
        # stable under SUBWORD_FORMAT, not the library's JSON of its version.
        return json.dumps({"format": SUBWORD_FORMAT, "kind": self.kind, "model": "wordpiece", "vocab": self.vocab}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SubwordTokenizer:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("kind") != "subword" or data.get("format") != SUBWORD_FORMAT:
            raise ValueError(f"not a learnjax subword tokenizer (format {SUBWORD_FORMAT}): {text[:60]!r}")
        if not isinstance(data.get("vocab"), list):
            raise ValueError("its vocabulary is not a list")
        return cls(data["vocab"])
