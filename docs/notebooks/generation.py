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
# # Notebook: generating text
#
# The generative foundation model of the [pre-training](../../pre-training/#a-foundation-model-that-writes)
# page, in one notebook that ran when this site was built: its loss, its
# continuations, greedy decoding against sampling, and facts checked against the
# world. Download it with the button at the top of the page and run it with
# `pip install learnjax[docs]` (or from a clone: `pip install -e ".[docs]"`).

# %%
from learnjax import experiments, foundation_model
from learnjax.models.generation import Sampling
from learnjax.site import plots
from learnjax.training.writing import generate_text
from learnjax.training.recipe import NEXT_WORD_RECIPE

# %% [markdown]
# ## The next-word model and its loss

# %%
writer = foundation_model(NEXT_WORD_RECIPE)  # pre-trained once, then loaded from the cache
fig, _ = plots.loss_curve(writer.history.loss, ylabel="next-word loss")
print(f"pre-training took {writer.seconds:.0f} s for {len(writer.history.loss)} steps")

# %% [markdown]
# ## Greedy continuations
#
# The most likely token, every time: the same text on every run.

# %%
for g in generate_text(writer, ["Today I went to the café and drank", "Every day the nurse drives to the", "After sunday comes"]):
    print(f"{g.prompt} -> {g.text}")

# %% [markdown]
# ## Sampling
#
# The same prompt, five seeds, at temperature 1: varied text, which a seed
# makes repeatable.

# %%
for seed in range(5):
    print(generate_text(writer, ["Yesterday my cousins"], sampling=Sampling(temperature=1.0), seed=seed, max_new_tokens=14)[0].text)

# %% [markdown]
# ## Facts by temperature
#
# Continuations of fact prompts, each checked against the world the corpus was
# written from (see `learnjax.data.facts`).

# %%
generation = experiments.generation()
variety = {t: v["distinct"] for t, v in generation["variety"].items()}
fig, _ = plots.fact_shares(generation["facts"]["shares"], variety)
generation["perplexity"]
