"""A saved tokenizer of either kind read back: the one module that knows both
kinds, so that neither tokenizer module needs the other."""

from __future__ import annotations

import json

from learnjax.text.subword import SubwordTokenizer
from learnjax.text.tokenizer import TOKENIZER_KINDS, BaseTokenizer, Tokenizer


def tokenizer_from_json(text: str) -> BaseTokenizer:
    """A saved tokenizer of either kind (`BaseTokenizer.to_json`)."""
    try:
        kind = json.loads(text).get("kind", "word")
    except (ValueError, AttributeError):
        kind = "word"  # Tokenizer.from_json says what is wrong with it
    if kind == "subword":
        return SubwordTokenizer.from_json(text)
    if kind != "word":
        raise ValueError(f"unknown tokenizer kind {kind!r}; this learnjax reads {', '.join(TOKENIZER_KINDS)}")
    return Tokenizer.from_json(text)
