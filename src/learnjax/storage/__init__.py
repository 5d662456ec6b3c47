"""Saved models, the cache of computed results, and the import graph that keys it."""
