"""Pre-training: a small Transformer learns from unlabeled text
by recovering hidden words.

Run it: python snippets/pretraining_loop.py
"""

import jax
import optax
from flax import nnx

from learnjax import Tokenizer, corpus, mask_tokens
from learnjax.model import EncoderConfig, MaskedLanguageModel
from learnjax.readable import masked_word_step
from learnjax.training import batch_indices

texts = corpus.build_corpus(10_000)  # unlabeled sentences and messages
tokenizer = Tokenizer.from_texts(texts)
tokens, segments = tokenizer.encode_packed(texts, max_len=32)  # several texts per row

config = EncoderConfig(vocab_size=len(tokenizer), max_len=32, d_model=64,
                       n_layers=2, n_heads=4, d_ff=128)
model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adamw(3e-3), wrt=nnx.Param)

key = jax.random.key(0)
steps = 200
batches = batch_indices(len(tokens), batch_size=64, steps=steps, seed=0)
for step, rows in enumerate(batches):  # 64 random rows per step
    hide = jax.random.fold_in(key, step)  # new words hidden at every step
    inputs, targets, weights = mask_tokens(hide, tokens[rows], len(tokenizer), 0.25)
    loss, accuracy = masked_word_step(model, optimizer, inputs, segments[rows],
                                      targets, weights)
    if step % 50 == 0 or step == steps - 1:
        print(f"step {step:3d}   loss {float(loss):.3f}   "
              f"hidden words recovered {float(accuracy):5.1%}")
