"""The cache's graph as a picture: each current entry a box, placed in the column
of its depth (what it reads stands to its left), with its cold cost in its label
and in its shade; an arrow runs from each entry to every entry that reads it.
The lessons' many fine-tuned models are drawn as one box."""

from __future__ import annotations

from learnjax.site import plots

TUNED = "tuned"


def boxes(rows: list[dict]) -> dict[str, dict]:
    """The boxes to draw, {box: {"label", "seconds", "reads", "count"}}: an entry
    each, the tuned models one box together (their seconds added up)."""
    box_of = {row["name"]: (TUNED if row["kind"] == TUNED else row["name"]) for row in rows}
    nodes: dict[str, dict] = {}
    for row in rows:
        node = nodes.setdefault(box_of[row["name"]], {"label": row["label"], "seconds": 0.0, "reads": set(), "count": 0})
        node["seconds"] += row["seconds"] or 0.0
        node["count"] += 1
        node["reads"] |= {box_of[name] for name in row["reads"] if name in box_of}
    if TUNED in nodes:
        nodes[TUNED]["label"] = f"tuned ({nodes[TUNED]['count']} models)"
    return nodes


def depths(nodes: dict[str, dict]) -> dict[str, int]:
    """Each box's column: 0 for one that reads nothing, else one more than the
    deepest box it reads."""
    found: dict[str, int] = {}

    def depth(node: str, seen: tuple[str, ...] = ()) -> int:
        if node not in found:
            if node in seen:
                raise ValueError(f"the cache's entries read each other in a circle: {' -> '.join((*seen, node))}")
            found[node] = 1 + max((depth(r, (*seen, node)) for r in nodes[node]["reads"]), default=-1)
        return found[node]

    for node in nodes:
        depth(node)
    return found


def entry_graph_figure(rows: list[dict]):
    """(fig, ax): the entries of `rows` (`cache.entry_graph()`'s current ones) as a
    graph from left (read by others) to right (reading them)."""
    nodes = boxes(rows)
    column = depths(nodes)
    order: dict[str, float] = {}
    by_column: dict[int, list[str]] = {}
    for x in sorted(set(column.values())):
        names = [n for n in nodes if column[n] == x]
        # The costliest first in the first column; after it, each box beside the
        # boxes it reads (their mean place), so that few arrows cross.
        if x == 0:
            by_column[x] = sorted(names, key=lambda n: -nodes[n]["seconds"])
        else:
            beside = lambda n: sum(order[read] for read in nodes[n]["reads"]) / len(nodes[n]["reads"])
            by_column[x] = sorted(names, key=lambda n: (beside(n), -nodes[n]["seconds"]))
        order.update({n: i - (len(by_column[x]) - 1) / 2 for i, n in enumerate(by_column[x])})
    tallest = max(len(names) for names in by_column.values())
    fig, ax = plots.figure(width=3.6 * len(by_column), height=0.3 * tallest + 0.6)
    ax.grid(False)
    ax.axis("off")
    ax.set_xlim(-0.1, len(by_column) - 0.25)
    ax.set_ylim(-tallest / 2, tallest / 2)
    colormap = plots.colormap("Blues")
    most = max(node["seconds"] for node in nodes.values()) or 1.0
    drawn = {}
    for node, x in column.items():
        share = nodes[node]["seconds"] / most
        drawn[node] = ax.text(
            x,
            -order[node],
            f"{nodes[node]['label']}  {nodes[node]['seconds']:.0f} s",
            ha="left",
            va="center",
            fontsize=8,
            color="white" if share > 0.55 else "black",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": colormap(0.15 + 0.8 * share), "edgecolor": "0.4", "linewidth": 0.6},
        )
    fig.canvas.draw()  # the boxes' sizes, to draw each arrow from edge to edge
    to_data = ax.transData.inverted()
    right = {node: to_data.transform(text.get_bbox_patch().get_window_extent())[1][0] for node, text in drawn.items()}
    for node in nodes:
        for read in nodes[node]["reads"]:
            ax.annotate(
                "",
                xy=(column[node] - 0.02, -order[node]),
                xytext=(right[read] + 0.02, -order[read]),
                arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.8, "shrinkA": 0, "shrinkB": 0},
            )
    return fig, ax


def describe(rows: list[dict]) -> str:
    """The figure in words (its alt text)."""
    nodes = boxes(rows)
    costliest = sorted(nodes.values(), key=lambda node: -node["seconds"])[:3]
    reading = sum(1 for node in nodes.values() if node["reads"])
    return (
        f"The cache's {len(rows)} current entries as {len(nodes)} boxes; {reading} of them read another entry. "
        "Costliest to compute: " + ", ".join(f"{node['label']} ({node['seconds']:.0f} s)" for node in costliest) + "."
    )
