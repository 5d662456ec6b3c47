# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook: self-supervised pre-training
#
# Every figure of the [self-supervised learning](../../self-supervised-learning/) and
# [pre-training](../../pre-training/) pages, in one notebook that ran when this site was
# built. Download it with the button at the top of the page and run it with
# `pip install learnjax[docs]` (or from a clone: `pip install -e ".[docs]"`).

# %%
import jax

from learnjax import experiments, fill_mask, foundation_model, mask_tokens
from learnjax.data import corpus
from learnjax.evaluation.language_model import cloze_accuracy, grammar_accuracy
from learnjax.site import plots

# %% [markdown]
# ## Masking a real sentence
#
# The chosen positions (highlighted) become the exercise: the model sees the middle
# row and must produce the bottom one.

# %%
foundation = foundation_model()  # pre-trained once, then loaded from the cache
tokenizer = foundation.tokenizer
tokens = tokenizer.encode_batch(["Today I went to the café and drank coffee."], max_len=12)
inputs, targets, weights = mask_tokens(jax.random.key(7), tokens, len(tokenizer), rate=0.3)

words = [tokenizer.vocab[int(t)] for t in tokens[0]]
fig, _ = plots.masking_grid(
    words,
    {"model sees": [tokenizer.vocab[int(i)] for i in inputs[0]],
     "answer": [tokenizer.vocab[int(t)] if w else "" for t, w in zip(targets[0], weights[0])]},
    highlight=[bool(w) for w in weights[0]],
)

# %% [markdown]
# ## The pre-training loss

# %%
fig, _ = plots.loss_curve(foundation.history.loss, ylabel="masked-prediction loss")
print(f"pre-training took {foundation.seconds:.0f} s for {len(foundation.history.loss)} steps")

# %% [markdown]
# ## The café test

# %%
predictions = fill_mask(foundation, "Today I went to the café and drank [MASK].", top_k=5)
fig, _ = plots.top_k_bars(predictions, title="Today I went to the café and drank [MASK].")

# %% [markdown]
# ## Held-out cloze sentences and grammar

# %%
print("cloze:", cloze_accuracy(foundation))
print("agreement:", grammar_accuracy(foundation, corpus.grammar_probes(corpus.build_corpus())))

# %% [markdown]
# ## More unlabeled text, better learning

# %%
curve = experiments.scaling_curve()
fig, _ = plots.learning_curves(
    {"held-out hidden words recovered": [{"x": r["n_texts"], "mean": r["held_out_accuracy"]} for r in curve]},
    xlabel="unlabeled texts in the corpus", ylabel="held-out accuracy",
)
