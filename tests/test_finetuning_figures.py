"""The fine-tuning page's figures show what the models really are, and the
figures of learnjax.site.plots keep their legends off the data."""

from types import SimpleNamespace

import numpy as np
import pytest
from flax import nnx

from learnjax.data.questions import Example, chat_rows
from learnjax.models.transformer import MaskedLanguageModel, TransformerConfig
from learnjax.site import finetuning_figures as figures
from learnjax.site import plots
from learnjax.text.tokenizer import Tokenizer
from learnjax.training.finetuning import LORA_RANK, MODES

pytest.importorskip("matplotlib")

CONFIG = TransformerConfig(vocab_size=40, max_len=16, d_model=16, n_layers=2, n_heads=2, d_ff=32)


@pytest.fixture(scope="module")
def foundation():
    return SimpleNamespace(model=MaskedLanguageModel(CONFIG, rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def parts(foundation):
    return figures.mode_parts(foundation)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_each_mode_trains_what_its_optimizer_trains(parts):
    trained = {mode: {part for part, n in groups.items() if n["trained"]} for mode, groups in parts.items()}
    frozen = {mode: {part for part, n in groups.items() if n["frozen"]} for mode, groups in parts.items()}
    assert set(parts) == set(MODES)
    assert trained["full"] == trained["scratch"] == {"embeddings", "Transformer layers", "new head"}
    assert trained["probe"] == {"new head"} and frozen["probe"] == {"embeddings", "Transformer layers"}
    assert trained["lora"] == {"LoRA adapters", "new head"} and frozen["lora"] == {"embeddings", "Transformer layers"}
    assert not frozen["full"] and not frozen["scratch"]


def test_the_counts_are_the_models_weights(foundation, parts):
    every = sum(v[...].size for _, v in nnx.to_flat_state(nnx.state(foundation.model.encoder, nnx.Param)))
    head = CONFIG.d_model * 2 + 2
    for mode in ("full", "probe", "scratch"):
        assert sum(n["trained"] + n["frozen"] for n in parts[mode].values()) == every + head
    # one rank-r adapter pair per projection: (in + out) * r, four projections a block
    d, ff = CONFIG.d_model, CONFIG.d_ff
    per_block = ((d + 3 * d) + (d + d) + (d + ff) + (ff + d)) * LORA_RANK
    assert parts["lora"]["LoRA adapters"]["trained"] == CONFIG.n_layers * per_block


def test_the_modes_figure_says_trained_or_frozen_in_every_cell(parts):
    fig, ax = figures.modes_figure(parts, {m: m for m in MODES})
    texts = _texts(ax)
    assert sum(t.startswith("trained") for t in texts) == sum(1 for g in parts.values() for n in g.values() if n["trained"])
    assert sum(t.startswith("frozen") for t in texts) == sum(1 for g in parts.values() for n in g.values() if n["frozen"] and not n["trained"])
    assert "probe\n(pre-trained start)" in texts and "scratch\n(random start)" in texts
    assert "alt" in plots.to_html(fig, alt="alt")


def test_the_lora_figure_has_the_layers_shapes(foundation):
    layer = figures.lora_layer(foundation)
    n_in, n_out = layer.kernel
    assert layer.a == (n_in, LORA_RANK) and layer.b == (LORA_RANK, n_out)
    fig, ax = figures.lora_figure(layer)
    texts = _texts(ax)
    assert f"W: {n_in} × {n_out}\n{n_in * n_out:,} weights, frozen" in texts
    assert any(t.startswith(f"B: {LORA_RANK} × {n_out}") and "starts at zero" in t for t in texts)


def test_the_chat_strip_marks_the_answer_and_its_end():
    tokenizer = Tokenizer.from_texts(["where does a lifeguard work ?", "at the pool ."])
    tokens, _, learn = chat_rows(tokenizer, [Example("where does a lifeguard work?", "at the pool.")], 16)
    strip = figures.chat_strip(tokenizer, tokens[0], learn[0])
    assert [t for t, counted in strip if counted] == ["at", "the", "pool", ".", "[END]"]
    assert strip[0] == ("[CLS]", False) and len(strip) == int((tokens[0] != 0).sum())
    _, ax = figures.chat_figure(strip)
    assert "the loss counts these 5 tokens" in _texts(ax)


def test_the_forgetting_chart_labels_each_bar_with_its_score():
    rows = [{"model": "before", "domain_top1": 0.1, "general_top1": 0.86},
            {"model": "after: notes", "domain_top1": 0.9, "general_top1": 0.0}]
    _, ax = figures.forgetting_figure(rows)
    assert [t.get_text() for t in ax.texts] == ["10%", "90%", "86%", "0%"]


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_the_temperature_legend_covers_no_bar():
    shares = {t: {"true": a, "false": 0.9 - a, "no fact": 0.1} for t, a in (("0.0", 0.8), ("1.0", 0.5), ("2.0", 0.1))}
    fig, ax = plots.fact_shares(shares, {t: 0.5 for t in shares})
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    bars = [patch.get_window_extent() for patch in ax.patches]
    assert bars and not any(_overlaps(legend, bar) for bar in bars)
    assert not _overlaps(legend, ax.lines[0].get_window_extent())


def test_the_forgetting_legend_covers_no_bar():
    rows = [{"model": m, "domain_top1": d, "general_top1": g} for m, d, g in (("a", 0.95, 0.9), ("b", 0.9, 0.95))]
    fig, ax = figures.forgetting_figure(rows)
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert not any(_overlaps(legend, patch.get_window_extent()) for patch in ax.patches)
    assert np.isclose(sum(p.get_height() for p in ax.patches), 0.95 + 0.9 + 0.9 + 0.95)
