"""Self-supervised learning: hide some words of a sentence;
the hidden words are the answers.

Run it: python snippets/masking_a_sentence.py
"""

import jax

from learnjax import Tokenizer, mask_tokens
from learnjax.data import corpus

texts = corpus.build_corpus(2_000)  # unlabeled text: nobody wrote any answers
tokenizer = Tokenizer.from_texts(texts)

sentence = "Today I went to the café and drank coffee."
tokens = tokenizer.encode_batch([sentence], max_len=12)  # (1, 12), padded
key = jax.random.key(7)  # the same key always hides the same words
inputs, targets, weights = mask_tokens(key, tokens, len(tokenizer), rate=0.3)

print(f"{'token':>8} {'model sees':>11} {'answer':>8}")
for token, seen, target, scored in zip(tokens[0], inputs[0], targets[0],
                                       weights[0]):
    answer = tokenizer.vocab[int(target)] if scored else ""
    word, shown = tokenizer.vocab[int(token)], tokenizer.vocab[int(seen)]
    print(f"{word:>8} {shown:>11} {answer:>8}")
