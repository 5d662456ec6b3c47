"""The build keeps XLA's compiled programs in the learnjax cache (`<cache>/xla`).

Every executed block runs in the build's own process, and the experiments they
read compile their training steps and samplers there. A build after a code
change recomputes the entries that change touched; the programs it did not
touch (a training step, when the sampler changed) are then read from disk
rather than compiled again. JAX keys each program by its code, the flags and
its own version, so a stale one is never read.
"""

from __future__ import annotations


def on_config(config):
    from learnjax.storage.cache import use_compilation_cache

    use_compilation_cache()
    return config
