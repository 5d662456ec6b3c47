"""The Performance page's alternatives compute what the library's step computes,
only slower or faster; and the timing helper ranks what it times."""

import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import learnjax.model
from learnjax import performance, timing
from learnjax.masking import mask_tokens, select_predictions
from learnjax.steps import masked_prediction_step
from learnjax.timing import compare, other_processes_load
from learnjax.training import fused_masked_prediction_step


@pytest.fixture(scope="module")
def setup():
    return performance.Setup(batch_size=8, n_layers=1)


def test_scoring_hidden_positions_only_gives_the_same_loss(setup):
    inputs, targets, weights = mask_tokens(setup.key, setup.rows_tokens, setup.static["vocab_size"], setup.static["rate"])
    assert int(weights.sum(axis=1).max()) <= setup.static["max_predictions"]  # no row loses a prediction
    positions, selected_targets, selected_weights = select_predictions(targets, weights, setup.static["max_predictions"])
    batch = {"inputs": inputs, "segments": setup.rows_segments, "positions": positions,
             "targets": selected_targets, "weights": selected_weights}
    everywhere = performance.every_position_step(*setup.fresh(), inputs, setup.rows_segments, targets, weights)
    selected, _ = masked_prediction_step(*setup.fresh(), batch)
    np.testing.assert_allclose(float(everywhere), float(selected), rtol=1e-5)


def test_3d_products_compute_the_same_step_and_the_switch_is_undone(setup):
    flat = learnjax.model.per_token
    model, optimizer = setup.fresh()
    with performance.products_on_3d_arrays():
        assert learnjax.model.per_token is not flat
        loss_3d, accuracy_3d = performance.step_with_3d_products(model, optimizer, setup.batch)
    assert learnjax.model.per_token is flat
    loss_2d, accuracy_2d = masked_prediction_step(*setup.fresh(), setup.batch)
    np.testing.assert_allclose(float(loss_3d), float(loss_2d), rtol=1e-5)
    assert float(accuracy_3d) == float(accuracy_2d)


def test_argmax_and_max_accuracy_agree(setup):
    argmax = performance.argmax_accuracy_step(*setup.fresh(), setup.batch)
    library = masked_prediction_step(*setup.fresh(), setup.batch)
    assert float(argmax[1]) == float(library[1])
    np.testing.assert_allclose(float(argmax[0]), float(library[0]), rtol=1e-6)


def test_donation_hands_the_old_state_to_the_new_one(setup):
    from flax import nnx

    graphdef, state = nnx.split(setup.fresh())
    _, kept = nnx.split(setup.fresh())
    args = (setup.key, 0, setup.rows_tokens, setup.rows_segments)
    new_state, loss, _ = fused_masked_prediction_step(state, *args, graphdef=graphdef, **setup.static)
    kept_state, kept_loss, _ = performance.fused_step_without_donation(kept, *args, graphdef=graphdef, **setup.static)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(state))
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(kept))
    assert float(loss) == float(kept_loss)
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(kept_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_first_written_loop_trains_the_same_objective(setup):
    first = setup.first_written_loop()
    losses = [float(first()) for _ in range(3)]
    assert all(np.isfinite(losses)) and losses[0] > 1.0  # a fresh model: about log(vocabulary)


def test_compare_ranks_a_slower_candidate_slower():
    result = compare({"2 ms": lambda: time.sleep(0.002), "6 ms": lambda: time.sleep(0.006)}, rounds=3, min_seconds=0.02)
    assert result.speedup("2 ms") == 1.0
    assert result.speedup("6 ms") < 0.7
    assert result.seconds("2 ms") < result.seconds("6 ms")
    assert "| 6 ms |" in result.table()


def test_a_busy_process_beside_the_measurement_counts_as_load():
    busy = "import time\nend = time.time() + 1.0\nwhile time.time() < end: pass"
    with other_processes_load() as load:
        child = subprocess.Popen([sys.executable, "-c", busy])
        time.sleep(1.0)  # this process idles; the child keeps a core busy
    child.wait()
    assert load["cores"] >= 0.5, load


def test_load_is_unknown_where_the_system_does_not_report_it(monkeypatch):
    monkeypatch.setattr(timing, "_machine_busy_seconds", lambda: None)
    with other_processes_load() as load:
        pass
    assert load["cores"] is None
