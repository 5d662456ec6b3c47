"""`batch_indices`, the batch order every training loop draws: shuffled epochs of
fixed-size batches. The loops' own tests compare them with a reference that
draws its batches from `batch_indices` too, so its order is checked here."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnjax.training.loops import batch_indices


def draw(n_examples: int, batch_size: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.stack(list(batch_indices(n_examples, batch_size, steps, seed)))  # (steps, batch_size)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 16), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_every_batch_has_the_same_shape_and_valid_indices(n, batch_size, steps, seed):
    batches = draw(n, batch_size, steps, seed)
    assert batches.shape == (steps, batch_size)
    assert np.issubdtype(batches.dtype, np.integer)
    assert batches.min() >= 0 and batches.max() < n


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 16), st.integers(0, 2**32 - 1))
def test_the_batches_run_through_whole_epochs(n, batch_size, seed):
    """Read one after another, the batches are epochs: each run of n indices, the
    first of them from the first batch, holds every example exactly once."""
    epochs = 3
    steps = -(-epochs * n // batch_size)  # enough batches for three whole epochs
    stream = draw(n, batch_size, steps, seed).reshape(-1)[: epochs * n].reshape(epochs, n)
    for epoch in stream:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n))


@pytest.mark.parametrize("n, batch_size", [(64, 8), (48, 16), (32, 32)])
def test_when_the_batch_divides_the_examples_each_epoch_of_batches_is_a_permutation(n, batch_size):
    per_epoch = n // batch_size  # = ceil(n / batch_size)
    batches = draw(n, batch_size, 4 * per_epoch)
    for first in range(0, len(batches), per_epoch):
        np.testing.assert_array_equal(np.sort(batches[first : first + per_epoch].reshape(-1)), np.arange(n))


def test_the_order_is_shuffled_not_the_file_order():
    n, batch_size = 64, 8
    epochs = draw(n, batch_size, 2 * n // batch_size).reshape(2, n)
    for epoch in epochs:
        assert not np.array_equal(epoch, np.arange(n)), "batches in file order"
        assert not np.array_equal(np.sort(epoch), epoch), "batches in sorted order"
    assert not np.array_equal(epochs[0], epochs[1]), "every epoch in the same order"


def test_the_same_seed_repeats_the_order_and_another_seed_changes_it():
    np.testing.assert_array_equal(draw(50, 8, 20, seed=3), draw(50, 8, 20, seed=3))
    assert not np.array_equal(draw(50, 8, 20, seed=3), draw(50, 8, 20, seed=4))


def test_fewer_examples_than_the_batch_repeat_within_a_batch():
    batches = draw(3, 8, 5)
    assert batches.shape == (5, 8)
    for batch in batches:
        assert set(batch.tolist()) == {0, 1, 2}  # all of them, some twice or more


@pytest.mark.parametrize("n, batch_size, message", [(0, 4, "from 0 examples"), (5, 0, "batch_size must be >= 1, got 0")])
def test_impossible_batches_are_refused_by_name(n, batch_size, message):
    with pytest.raises(ValueError, match=message):
        next(batch_indices(n, batch_size, 1, 0))
