"""Speed measurements of learnjax: the Performance page's (`benchmarks.performance`),
the step and recipe benchmarks against PyTorch, and the ablations (`variants.py`).

A package, so that the site build and the tests import it from the repository
root; the scripts run from there as `python -m benchmarks.<name>`. Importing it
imports nothing else: the PyTorch processes of the benchmarks load parts of it
without jax.
"""
