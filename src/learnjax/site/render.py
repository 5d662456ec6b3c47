"""Markdown for computed results: tables and collapsible notes.

The site's pages print their results as Markdown, which the build renders.
These helpers keep that syntax out of the code a reader is shown, so a block
reads as the lesson (what is measured) rather than as table plumbing.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

_ALIGNMENT = {None: "---", "left": ":---", "center": ":---:", "right": "---:"}
_NOTE_KINDS = ("note", "abstract", "info", "tip", "success", "question", "warning", "failure", "danger", "bug", "example", "quote")


# "79.5% ± 8.4%" is one value: no-break spaces keep a narrow column from splitting it.
PLUS_MINUS = "\u00a0±\u00a0"


def _cell(value: object) -> str:
    # A `|` would end the cell and a line break the row: both are escaped.
    return str(value).replace("|", "\\|").replace("\n", "<br>").replace(" ± ", PLUS_MINUS)


def table(header: Sequence[object], rows: Iterable[Sequence[object]], align: Sequence[str | None] | None = None) -> str:
    """A Markdown table of `rows` under `header`.

    Args:
        header: the column titles.
        rows: one sequence of cells per row, as many as there are titles;
            each cell is shown as `str(cell)`.
        align: per column, "left", "right", "center" or None (the theme's
            default); by default every column is None.

    Returns:
        The table, one line per row, without a trailing newline.

    Example:
        >>> print(table(["word", "share"], [["coffee", "62%"], ["tea", "9%"]], align=[None, "right"]))
        | word | share |
        |---|---:|
        | coffee | 62% |
        | tea | 9% |

        A row must fill the columns, no more and no less:

        >>> table(["word"], [["coffee", "62%"]])
        Traceback (most recent call last):
        ...
        ValueError: row 1 has 2 cells for 1 columns: ['coffee', '62%']
    """
    header = [_cell(title) for title in header]
    align = list(align) if align is not None else [None] * len(header)
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} entries for {len(header)} columns")
    unknown = [a for a in align if a not in _ALIGNMENT]
    if unknown:
        raise ValueError(f"unknown alignment {unknown[0]!r}; expected one of left, right, center or None")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(_ALIGNMENT[a] for a in align) + "|"]
    for number, row in enumerate(rows, 1):
        cells = [_cell(value) for value in row]
        if len(cells) != len(header):
            raise ValueError(f"row {number} has {len(cells)} cells for {len(header)} columns: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def note(title: str, body: str, kind: str = "note", collapsed: bool = True) -> str:
    """A note box with `title` around the Markdown `body`, which the reader
    opens with a click (`collapsed`) or sees open.

    Args:
        title: the line shown on the box.
        body: any Markdown, a table for instance.
        kind: the box's style: "note", "tip", "warning", ... (Material's admonition types).
        collapsed: closed until clicked; False shows it open (still collapsible).

    Returns:
        The box as Markdown (a pymdownx.details block).

    Example:
        >>> print(note("Every answer", "coffee, tea and juice"))
        ??? note "Every answer"
        <BLANKLINE>
            coffee, tea and juice
        >>> print(note("Open", "text", kind="tip", collapsed=False).splitlines()[0])
        ???+ tip "Open"
    """
    if kind not in _NOTE_KINDS:
        raise ValueError(f"unknown note kind {kind!r}; expected one of {', '.join(_NOTE_KINDS)}")
    marker = "???" if collapsed else "???+"
    indented = "\n".join(f"    {line}" if line.strip() else "" for line in body.splitlines())
    title = title.replace('"', "&quot;")  # a " would end the title
    return f'{marker} {kind} "{title}"\n\n{indented}'


# What a live widget's element shows until its script builds the controls.
_WITHOUT_SCRIPT = "This part of the page runs the model with JavaScript, which is turned off or not yet loaded."


def live_widget(widget: str, **data: object) -> str:
    """The element a live widget is built in (docs/javascripts/learnjax-widgets.js),
    its settings as `data-` attributes, escaped: a value computed by the build
    (a preset question, the temperatures of a chart) reaches the page as text.

    Example:
        >>> print(live_widget("ask", model="assistant", known='what is "red"?'))
        <div class="learnjax-live" data-widget="ask" data-model="assistant" data-known="what is &quot;red&quot;?">
        <p>This part of the page runs the model with JavaScript, which is turned off or not yet loaded.</p>
        </div>
    """
    attributes = "".join(f' data-{name}="{html.escape(str(value), quote=True)}"' for name, value in {"widget": widget, **data}.items())
    return f'<div class="learnjax-live"{attributes}>\n<p>{_WITHOUT_SCRIPT}</p>\n</div>'
