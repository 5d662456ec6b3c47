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
# Every figure of the [self-supervised learning](../self-supervised-learning.md) and
# [pre-training](../pre-training.md) pages, in one notebook that ran when this site was
# built. Download it with the button at the top of the page and run it with
# `pip install learnjax[docs]` (or from a clone: `pip install -e ".[docs]"`).

# %%
import jax
import matplotlib.pyplot as plt

from learnjax import corpus, experiments, fill_mask, foundation_model, mask_tokens
from learnjax.pretraining import cloze_accuracy, grammar_accuracy

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

fig, ax = plt.subplots(figsize=(9, 1.6))
ax.axis("off")
table = ax.table(
    cellText=[[tokenizer.vocab[int(t)] for t in row] for row in (tokens[0], inputs[0])]
    + [[tokenizer.vocab[int(t)] if w else "" for t, w in zip(targets[0], weights[0])]],
    rowLabels=["token", "model sees", "answer"], loc="center", cellLoc="center",
)
for col, chosen in enumerate(weights[0]):
    if chosen:
        for row in range(3):
            table[row, col].set_facecolor("#fff3b0")
plt.show()

# %% [markdown]
# ## The pre-training loss

# %%
losses = foundation.history.loss
plt.figure(figsize=(7, 3.5))
plt.plot(losses, alpha=0.3, label="each step")
window = 25
plt.plot(range(window - 1, len(losses)), [sum(losses[i - window + 1 : i + 1]) / window for i in range(window - 1, len(losses))], label=f"mean of {window} steps")
plt.xlabel("training step")
plt.ylabel("masked-prediction loss")
plt.legend()
plt.show()
print(f"pre-training took {foundation.seconds:.0f} s for {len(losses)} steps")

# %% [markdown]
# ## The café test

# %%
predictions = fill_mask(foundation, "Today I went to the café and drank [MASK].", top_k=5)
plt.figure(figsize=(6, 2.8))
plt.barh([p.word for p in predictions][::-1], [p.probability for p in predictions][::-1])
plt.xlabel("probability")
plt.title("Today I went to the café and drank [MASK].")
plt.show()
for p in predictions:
    print(f"{p.word:>12} {p.probability:6.1%}")

# %% [markdown]
# ## Held-out cloze sentences and grammar

# %%
print("cloze:", cloze_accuracy(foundation))
print("agreement:", grammar_accuracy(foundation, corpus.grammar_probes(corpus.build_corpus())))

# %% [markdown]
# ## More unlabeled text, better learning

# %%
curve = experiments.scaling_curve()
plt.figure(figsize=(6, 3.5))
plt.semilogx([r["n_texts"] for r in curve], [r["held_out_accuracy"] for r in curve], "o-", label="hidden words recovered")
plt.semilogx([r["n_texts"] for r in curve], [r["cloze_top1"] for r in curve], "s-", label="cloze top-1")
plt.xlabel("unlabeled texts")
plt.ylabel("held-out accuracy")
plt.legend()
plt.show()
