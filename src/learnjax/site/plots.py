"""Figures for the site: matplotlib drawn to an `<img>` with the image inline.

An inline data URI keeps every page self-contained (nothing fetched, offline
viewing works) and gives every figure its alt text. Needs the `docs` extra.
"""

from __future__ import annotations

import base64
import html
import io


def _pyplot():
    # No backend is forced: without a display matplotlib draws with Agg, and in a
    # notebook the inline backend shows each figure below its cell.
    import matplotlib.pyplot as plt

    return plt


def figure(width: float = 6.4, height: float = 3.6):
    """A new (figure, axes) pair in the site's style."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def colormap(name: str):
    """Matplotlib's colormap `name`: a function from 0..1 to a colour."""
    return _pyplot().matplotlib.colormaps[name]


def to_html(fig, alt: str, caption: str | None = None) -> str:
    """The figure as an `<img>` (SVG data URI) with `alt` text, in a `<figure>`."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    data = base64.b64encode(buffer.getvalue().encode("utf-8")).decode("ascii")
    img = f'<img alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}" style="max-width:100%">'
    caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{img}{caption_html}</figure>"


def learning_curves(curves: dict[str, list[dict]], *, xlabel: str, ylabel: str, log_x: bool = True):
    """Mean with a spread band per curve; each row holds `x`, `mean` and `std`."""
    fig, ax = figure()
    for name, rows in curves.items():
        xs = [r["x"] for r in rows]
        means = [r["mean"] for r in rows]
        stds = [r.get("std", 0.0) for r in rows]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks([r["x"] for r in next(iter(curves.values()))])
        ax.get_xaxis().set_major_formatter(_pyplot().matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(curves) > 1:
        ax.legend()
    return fig, ax


def loss_curve(losses: list[float], *, smooth: int = 25, ylabel: str = "training loss"):
    """Per-step loss (faint) and its running mean over `smooth` steps."""
    import numpy as np

    fig, ax = figure()
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, alpha=0.25, linewidth=0.8, label="each step")
    if len(losses) >= smooth:
        running = np.convolve(losses, np.ones(smooth) / smooth, mode="valid")
        ax.plot(steps[smooth - 1 :], running, linewidth=2, label=f"mean of {smooth} steps")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig, ax


def top_k_bars(predictions, *, title: str):
    """Horizontal bars of predicted words and their probabilities, best on top."""
    fig, ax = figure(height=2.8)
    words = [p.word for p in predictions][::-1]
    probs = [p.probability for p in predictions][::-1]
    bars = ax.barh(words, probs, color=["#9fa8da"] * (len(words) - 1) + ["#3949ab"])
    ax.bar_label(bars, labels=[f"{p:.1%}" for p in probs], padding=3)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("probability")
    ax.set_title(title, fontsize=10)
    ax.grid(False)
    return fig, ax


def masking_grid(words: list[str], rows: dict[str, list[str]], highlight: list[bool]):
    """A table drawn as a figure: one column per token, one row per view of it."""
    fig, ax = figure(width=max(7.5, 0.8 * len(words)), height=0.6 + 0.5 * (len(rows) + 1))
    ax.axis("off")
    cell_text = [words] + list(rows.values())
    table = ax.table(cellText=cell_text, rowLabels=["token", *rows], loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(11)
    table.scale(1, 1.8)
    for col, chosen in enumerate(highlight):
        if chosen:
            for row in range(len(cell_text)):
                table[row, col].set_facecolor("#fff3b0")
    return fig, ax


def speedup_bars(speedups: dict[str, float], *, xlabel: str = "times faster than before the change"):
    """Horizontal bars of speed-ups, first on top, with a line at 1 (no change)."""
    fig, ax = figure(height=0.5 + 0.45 * len(speedups))
    names = list(speedups)[::-1]
    ax.barh(names, [speedups[n] for n in names], color="#3f51b5")
    ax.axvline(1.0, color="black", linewidth=1)
    for y, name in enumerate(names):
        ax.text(speedups[name], y, f" {speedups[name]:.2f}×", va="center")
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(speedups.values()) * 1.2)
    return fig, ax


def fact_shares(shares: dict[str, dict[str, float]], variety: dict[str, float]):
    """Per sampling temperature: stacked bars of the share of continuations that
    state a true fact, a false one or none, and a line of how varied they are."""
    fig, ax = figure(height=3.4)
    temperatures = list(shares)
    xs = range(len(temperatures))
    bottom = [0.0] * len(temperatures)
    for verdict, colour in (("true", "#43a047"), ("false", "#e53935"), ("no fact", "#bdbdbd")):
        values = [shares[t][verdict] for t in temperatures]
        ax.bar(xs, values, bottom=bottom, color=colour, width=0.6, label=f"states a {verdict} fact" if verdict != "no fact" else "states no fact")
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.plot(xs, [variety[t] for t in temperatures], color="black", marker="o", label="distinct continuations of one prompt")
    ax.set_xticks(list(xs), [f"{float(t):g}" for t in temperatures])
    ax.set_xlabel("sampling temperature (0 = greedy)")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the bars, never over them
    return fig, ax
