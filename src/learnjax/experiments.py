"""The measured experiments behind the site's claims, cached by recipe and code.

Each function returns plain JSON-ready data, computed once and then read from
the cache by every page, notebook and test that shows or checks it.
"""

from __future__ import annotations

from learnjax.cache import cached_json

LABEL_SIZES = (8, 16, 32, 64, 128, 256, 512)
SEEDS = (0, 1, 2)


def supervised_label_curve(sizes: tuple[int, ...] = LABEL_SIZES, seeds: tuple[int, ...] = SEEDS) -> list[dict]:
    """Held-out accuracy of the from-scratch spam filter against the number of labels."""
    from learnjax.supervised import label_learning_curve

    params = {"sizes": list(sizes), "seeds": list(seeds)}
    return cached_json("supervised-curve", params, lambda: label_learning_curve(sizes, seeds))
