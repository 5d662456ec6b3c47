"""Figures of the Preferences and rewards page: what each way of tuning does to
hallucination and to known answers, and pass@k before and after rewards."""

from __future__ import annotations

from learnjax.site.plots import figure


def hallucination_figure(points: dict[str, dict]):
    """One point per model: its hallucination rate on unknown entities (x) and
    its accuracy on known ones (y), from `measured` scores. Best is top left."""
    fig, ax = figure(height=3.8)
    for name, scores in points.items():
        x, y = scores["unknown"]["wrong"], scores["known"]["right"]
        ax.scatter([x], [y], s=40)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlim(-0.05, 1.1)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("hallucination: unknown entities answered with a fact")
    ax.set_ylabel("known entities answered right")
    return fig, ax


def pass_at_k_figure(curves: dict[str, dict[str, float]]):
    """pass@k against k (log scale) for each model, from `pass_at_k` results."""
    fig, ax = figure(height=3.4)
    for name, passes in curves.items():
        ks = [int(k) for k in passes]
        ax.plot(ks, list(passes.values()), marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("k: answers sampled per question")
    ax.set_ylabel("at least one right (pass@k)")
    ax.legend()
    return fig, ax
