"""Pre-training: a Transformer learns to recover hidden words of unlabeled text.

Run it: python snippets/pretraining_loop.py"""

import jax
import optax
from flax import nnx

from learnjax import Tokenizer, mask_tokens
from learnjax.data import corpus
from learnjax.models.transformer import MaskedLanguageModel, TransformerConfig
from learnjax.training.loops import batch_indices
from learnjax.training.readable import masked_word_step

texts = corpus.build_corpus(10_000)  # unlabeled sentences and messages
tokenizer = Tokenizer.from_texts(texts)
tokens, segments = tokenizer.encode_packed(texts, max_len=32)  # packed rows

config = TransformerConfig(len(tokenizer), max_len=32, d_model=64,
                       n_layers=2, n_heads=4, d_ff=128)
model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adamw(3e-3), wrt=nnx.Param)
steps = 200
for step, rows in enumerate(batch_indices(len(tokens), 64, steps, seed=0)):
    hide = jax.random.fold_in(jax.random.key(0), step)  # other words each step
    seen, target, hidden = mask_tokens(hide, tokens[rows], len(tokenizer), 0.25)
    loss, acc = masked_word_step(model, optimizer, seen, segments[rows],
                                 target, hidden)
    if step % 50 == 0 or step == steps - 1:
        print(f"step {step:3d} loss {loss:.3f} hidden words recovered {acc:5.1%}")
