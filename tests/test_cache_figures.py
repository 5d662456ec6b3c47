"""The testing how-to's picture of the cache: boxes in columns by what they read,
one box for all tuned models, an arrow for each read, and labels that tell the
foundation models apart."""

import pytest

from learnjax.site.cache_figures import boxes, depths, describe, entry_graph_figure
from learnjax.storage.cache import entry_label

FOUNDATION = {"objective": "next-word", "tokenizer": "word", "faq_share": 0.0}


def row(name, kind, seconds, reads=(), label=None):
    return {"name": name, "kind": kind, "label": label or kind, "seconds": seconds, "reads": list(reads), "status": "current"}


ROWS = [
    row("foundation-a", "foundation", 25.0, label="foundation (next-word)"),
    row("foundation-b", "foundation", 23.0, label="foundation (masked)"),
    row("tuned-1", "tuned", 1.5),
    row("tuned-2", "tuned", 1.0),
    row("preferences-c", "preferences", 7.0, reads=["foundation-a"]),
    row("label-efficiency-d", "label-efficiency", 31.0, reads=["foundation-b"]),
    row("report-e", "report", 0.5, reads=["preferences-c", "label-efficiency-d", "foundation-a"]),
]


def test_the_tuned_models_are_one_box_with_their_seconds_added():
    drawn = boxes(ROWS)
    assert drawn["tuned"]["label"] == "tuned (2 models)" and drawn["tuned"]["seconds"] == 2.5
    assert len(drawn) == 6 and drawn["report-e"]["reads"] == {"preferences-c", "label-efficiency-d", "foundation-a"}


def test_each_box_stands_one_column_right_of_the_deepest_it_reads():
    assert depths(boxes(ROWS)) == {"foundation-a": 0, "foundation-b": 0, "tuned": 0, "preferences-c": 1, "label-efficiency-d": 1, "report-e": 2}


def test_entries_reading_each_other_in_a_circle_are_named():
    circle = [row("a-1", "a", 1.0, reads=["b-1"]), row("b-1", "b", 1.0, reads=["a-1"])]
    with pytest.raises(ValueError, match="circle: a-1 -> b-1 -> a-1"):
        depths(boxes(circle))


def test_the_figure_draws_a_box_with_its_seconds_each_and_an_arrow_each_read_left_to_right():
    fig, ax = entry_graph_figure(ROWS)
    texts = sorted(text.get_text() for text in ax.texts if text.get_text())  # an arrow is a text without words
    assert texts == sorted(["foundation (next-word)  25 s", "foundation (masked)  23 s", "tuned (2 models)  2 s", "preferences  7 s",
                            "label-efficiency  31 s", "report  0 s"])
    arrows = [(a.xyann[0], a.xy[0]) for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == 5 and all(start < end for start, end in arrows)
    fig.clf()
    assert describe(ROWS).endswith("label-efficiency (31 s), foundation (next-word) (25 s), foundation (masked) (23 s).")


def test_foundation_labels_tell_the_recipes_apart():
    labels = {
        entry_label("foundation", {**FOUNDATION, "objective": "masked"}),
        entry_label("foundation", FOUNDATION),
        entry_label("foundation", {**FOUNDATION, "faq_share": 0.1}),
        entry_label("foundation", {**FOUNDATION, "language": "bilingual"}),
        entry_label("foundation", {**FOUNDATION, "tokenizer": "subword"}),
    }
    assert labels == {"foundation (masked)", "foundation (next-word)", "foundation (next-word, FAQ)", "foundation (next-word, bilingual)",
                      "foundation (next-word, subword)"}
    assert entry_label("preferences", {"seed": 0}) == "preferences"
