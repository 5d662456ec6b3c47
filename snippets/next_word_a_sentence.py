"""Self-supervised learning, the generative way: every word of a sentence is the
answer for the words before it.

Run it: python snippets/next_word_a_sentence.py
"""

from learnjax import Tokenizer
from learnjax.data import corpus
from learnjax.training.steps import next_word_targets

texts = corpus.build_corpus(2_000)  # the same unlabeled text
tokenizer = Tokenizer.from_texts(texts)

sentence = "Today I went to the café and drank coffee."
# [CLS], the words, [END]:
tokens, segments = tokenizer.encode_packed([sentence], max_len=12, end=True)
targets, weights = next_word_targets(tokens, segments, learn=segments > 0)

print(f"{'the model has read':<44} {'answer':>8}")
for position, (target, scored) in enumerate(zip(targets[0], weights[0])):
    if scored:
        read = " ".join(tokenizer.vocab[int(t)] for t in tokens[0, :position + 1])
        print(f"{read:<44} {tokenizer.vocab[int(target)]:>8}")
