"""Batch sizes rounded up to a few shapes, so that a compiled program serves many (no JAX).

The sampler and the classifier's blocks both pad a batch to its bucket. It lives
apart from either so that neither's cache key covers the other's code.
"""


def batch_bucket(n: int) -> int:
    """The next power of two (at least 1): batches of 3 and 4 rows run the same program.

    >>> [batch_bucket(n) for n in (1, 2, 3, 4, 5, 33)]
    [1, 2, 4, 4, 8, 64]
    """
    return 1 << max(0, n - 1).bit_length()
