"""Figures of the fine-tuning page, drawn at build time from the real models.

Each function that reads a model (`mode_parts`, `lora_layer`, `chat_strip`)
returns plain numbers and words; each `*_figure` function draws them with
`learnjax.site.plots`' style, so a figure shows what the code does rather than
what a diagram claims. Needs the `docs` extra (matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flax import nnx
from matplotlib.patches import Rectangle

from learnjax.site.plots import figure
from learnjax.training.finetuning import MODES, build_classifier

PARTS = ("embeddings", "Transformer layers", "LoRA adapters", "new head")
COLUMN = 1.3  # the width of a part's column in the modes figure
TRAINED, FROZEN = "#ffb74d", "#cfd8dc"  # light fills: the black text on them stays readable


def _part(path: tuple, variable: nnx.Variable) -> str:
    if isinstance(variable, nnx.LoRAParam):
        return "LoRA adapters"
    if path[0] == "head":
        return "new head"
    if str(path[-2]).endswith("embed"):  # token_embed, position_embed
        return "embeddings"
    return "Transformer layers"


def parameter_groups(model: nnx.Module, trainable) -> dict[str, dict[str, int]]:
    """The weights of `model` in `PARTS`: per part, how many the optimizer's
    filter `trainable` trains and how many it leaves frozen."""
    trained = {path for path, _ in nnx.to_flat_state(nnx.state(model, trainable))}
    groups = {part: {"trained": 0, "frozen": 0} for part in PARTS}
    for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        groups[_part(path, variable)]["trained" if path in trained else "frozen"] += variable[...].size
    return groups


def mode_parts(foundation) -> dict[str, dict[str, dict[str, int]]]:
    """`parameter_groups` of the classifier each fine-tuning mode builds."""
    return {mode: parameter_groups(*build_classifier(foundation, mode)) for mode in MODES}


def modes_figure(parts: dict[str, dict[str, dict[str, int]]], names: dict[str, str]):
    """One row per mode, one column per part: trained or frozen, with its weight count."""
    fig, ax = figure(width=8.0, height=1.0 + 0.62 * len(parts))
    ax.grid(False)
    ax.axis("off")
    for row, (mode, groups) in enumerate(parts.items()):
        y = len(parts) - 1 - row
        start = "random start" if mode == "scratch" else "pre-trained start"
        ax.text(-0.1, y, f"{names.get(mode, mode)}\n({start})", ha="right", va="center", fontsize=9)
        for col, part in enumerate(PARTS):
            counts = groups[part]
            total = counts["trained"] + counts["frozen"]
            x = (col + 0.5) * COLUMN
            if not total:
                ax.text(x, y, "none", ha="center", va="center", fontsize=8, color="#424242")
                continue
            state = "trained" if counts["trained"] == total else "frozen" if not counts["trained"] else "partly trained"
            ax.add_patch(_box(x - 0.45 * COLUMN, y - 0.4, 0.9 * COLUMN, 0.8, TRAINED if counts["trained"] else FROZEN))
            ax.text(x, y, f"{state}\n{total:,} weights", ha="center", va="center", fontsize=8)
    for col, part in enumerate(PARTS):
        ax.text((col + 0.5) * COLUMN, len(parts) - 0.45, part.replace(" ", "\n"), ha="center", va="bottom", fontsize=9, weight="bold")
    ax.set_xlim(-1.9, len(PARTS) * COLUMN)
    ax.set_ylim(-0.6, len(parts) + 0.35)
    return fig, ax


def _box(x: float, y: float, width: float, height: float, colour: str, hatch: str | None = None):
    return Rectangle((x, y), width, height, facecolor=colour, edgecolor="#455a64", hatch=hatch, linewidth=0.8)


@dataclass(frozen=True)
class LoraLayer:
    """One layer of a LoRA classifier: its name, the shapes of its frozen
    kernel W (in, out) and of its adapters A (in, r) and B (r, out), and the scale."""

    name: str
    kernel: tuple[int, int]
    a: tuple[int, int]
    b: tuple[int, int]
    scale: float


def lora_layer(foundation, block: int = 0, name: str = "ff1") -> LoraLayer:
    """The shapes of one adapted layer of the LoRA classifier built from `foundation`."""
    model, _ = build_classifier(foundation, "lora")
    layer = getattr(model.encoder.blocks[block], name)
    return LoraLayer(
        f"block {block}, {name}",
        tuple(layer.base_module.kernel[...].shape),
        tuple(layer.lora_a[...].shape),
        tuple(layer.lora_b[...].shape),
        layer.scale,
    )


def lora_figure(layer: LoraLayer):
    """W (frozen) beside A and B (trained), each drawn to scale."""
    (n_in, n_out), rank = layer.kernel, layer.a[1]
    fig, ax = figure(width=7.6, height=3.4)
    ax.grid(False)
    ax.axis("off")
    unit = 2.4 / max(n_in, n_out)  # the largest side is 2.4 units long
    w_x, a_x = 0.0, n_out * unit + 1.1
    b_x = a_x + rank * unit + 0.35
    top = n_in * unit
    ax.add_patch(_box(w_x, 0, n_out * unit, n_in * unit, FROZEN, hatch="//"))
    ax.add_patch(_box(a_x, 0, rank * unit, n_in * unit, TRAINED))
    ax.add_patch(_box(b_x, top - rank * unit, n_out * unit, rank * unit, TRAINED))
    ax.text(w_x + n_out * unit / 2, -0.15, f"W: {n_in} × {n_out}\n{n_in * n_out:,} weights, frozen", ha="center", va="top", fontsize=9)
    ax.text(a_x + rank * unit / 2, -0.15, f"A: {n_in} × {rank}\n{n_in * rank:,}, trained", ha="center", va="top", fontsize=9)
    ax.text(
        b_x + n_out * unit / 2,
        top - rank * unit - 0.12,
        f"B: {rank} × {n_out}\n{rank * n_out:,}, trained,\nstarts at zero",
        ha="center",
        va="top",
        fontsize=9,
    )
    ax.text((n_out * unit + a_x) / 2, top / 2, "+", ha="center", va="center", fontsize=20)
    ax.text(a_x - 0.08, top + 0.12, f"× {layer.scale:g} (alpha / r)", ha="left", va="bottom", fontsize=9)
    ax.set_title(
        f"y = x W + (alpha / r) x A B, in {layer.name}: the adapters add {(n_in + n_out) * rank / (n_in * n_out):.0%} to the layer's weights",
        fontsize=10,
    )
    ax.set_xlim(-0.2, b_x + n_out * unit + 0.2)
    ax.set_ylim(-1.0, top + 0.5)
    ax.set_aspect("equal")
    return fig, ax


def chat_strip(tokenizer, tokens, learn) -> list[tuple[str, bool]]:
    """The tokens of one chat-template row, each with whether the loss counts it."""
    return [(tokenizer.vocab[int(t)], bool(counted)) for t, counted in zip(tokens, learn) if t]


def chat_figure(strip: list[tuple[str, bool]]):
    """The row as one strip of boxes, the tokens the loss counts filled and bracketed."""
    widths = [0.22 + 0.085 * len(token) for token, _ in strip]
    fig, ax = figure(width=min(12.0, 0.6 + sum(widths) * 0.95), height=1.5)
    ax.grid(False)
    ax.axis("off")
    x = 0.0
    counted = []
    for (token, counts), width in zip(strip, widths):
        ax.add_patch(_box(x, 0, width - 0.05, 0.5, TRAINED if counts else "white"))
        ax.text(x + (width - 0.05) / 2, 0.25, token, ha="center", va="center", fontsize=8)
        if counts:
            counted.append((x, x + width - 0.05))
        x += width
    if counted:
        left, right = counted[0][0], counted[-1][1]
        ax.plot([left, left, right, right], [-0.08, -0.16, -0.16, -0.08], color="black", linewidth=1)
        ax.text((left + right) / 2, -0.22, f"the loss counts these {len(counted)} tokens", ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.05, x)
    ax.set_ylim(-0.6, 0.6)
    return fig, ax


def forgetting_figure(rows: list[dict]):
    """Grouped bars per model: clinic cloze and general cloze, top-1."""
    fig, ax = figure(width=7.6, height=3.6)
    xs = np.arange(len(rows))
    for offset, key, label, colour, hatch in (
        (-0.2, "domain_top1", "clinic sentences", "#3949ab", None),
        (0.2, "general_top1", "general sentences", "#ffb74d", "//"),
    ):
        values = [r[key] for r in rows]
        bars = ax.bar(xs + offset, values, width=0.4, label=label, color=colour, hatch=hatch, edgecolor="#263238")
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], padding=2, fontsize=8)
    ax.set_xticks(xs, [r["model"].replace(": ", ":\n") for r in rows], fontsize=8)
    ax.set_ylabel("fill-in-the-blank top-1 accuracy")
    ax.set_ylim(0, 1.25)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    return fig, ax
