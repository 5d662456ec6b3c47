"""Pre-training: a small Transformer learns from unlabeled text by recovering hidden words.

Run it: python snippets/pretraining_loop.py
"""

import jax
import optax
from flax import nnx

from learnjax import corpus
from learnjax.masking import masked_batch
from learnjax.model import EncoderConfig, MaskedLanguageModel
from learnjax.steps import masked_prediction_step
from learnjax.tokenizer import Tokenizer
from learnjax.training import batch_indices

texts = corpus.build_corpus(10_000)  # unlabeled sentences and messages
tokenizer = Tokenizer.from_texts(texts)
tokens, segments = tokenizer.encode_packed(texts, max_len=32)  # (N, 32): several texts per row

config = EncoderConfig(vocab_size=len(tokenizer), max_len=32, d_model=64, n_layers=2, n_heads=4, d_ff=128)
model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adamw(3e-3), wrt=nnx.Param)

key = jax.random.key(0)
steps = 200
for step, rows in enumerate(batch_indices(len(tokens), batch_size=64, steps=steps, seed=0)):
    batch = masked_batch(jax.random.fold_in(key, step), tokens[rows], segments[rows], len(tokenizer), rate=0.25)
    loss, accuracy = masked_prediction_step(model, optimizer, batch)
    if step % 50 == 0 or step == steps - 1:
        print(f"step {step:3d}   loss {float(loss):.3f}   hidden words recovered {float(accuracy):5.1%}")
