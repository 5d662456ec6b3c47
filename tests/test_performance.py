"""The Performance page's variants of the step compute what the library's step
computes, only slower or faster; the timing helpers rank what they time and
measure the machine's load; and the page's cached figures change with the code
that measures them."""

import doctest
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import learnjax.models.transformer
import learnjax.storage.cache
import learnjax.training.steps
from benchmarks import harness, performance, timing
from benchmarks.timing import compare, other_processes_load
from learnjax.training.loops import STEPS_PER_CALL
from learnjax.training.masking import mask_tokens, max_predictions_for, select_predictions
from learnjax.training.steps import masked_prediction_step, masked_prediction_update


@pytest.fixture(scope="module")
def setup():
    return performance.Setup(batch_size=8, n_layers=1)


def test_scoring_hidden_positions_only_gives_the_same_loss(setup):
    inputs, targets, weights = mask_tokens(setup.key, setup.rows_tokens, setup.static["vocab_size"], setup.static["rate"])
    assert int(weights.sum(axis=1).max()) <= setup.static["max_predictions"]  # no row loses a prediction
    positions, selected_targets, selected_weights = select_predictions(targets, weights, setup.static["max_predictions"])
    batch = {"inputs": inputs, "segments": setup.rows_segments, "positions": positions,
             "targets": selected_targets, "weights": selected_weights}
    everywhere = nnx.jit(performance.every_position_update)(*setup.fresh(), inputs, setup.rows_segments, targets, weights)
    selected, _ = masked_prediction_step(*setup.fresh(), batch)
    np.testing.assert_allclose(float(everywhere), float(selected), rtol=1e-5)


def test_3d_products_compute_the_same_step_and_the_switch_is_undone(setup):
    flat = learnjax.models.transformer.per_token
    model, optimizer = setup.fresh()
    step_3d = performance.compile_ahead(performance.step_with_3d_products, model, optimizer, setup.batch,
                                        switch=performance.products_on_3d_arrays()).result()
    assert learnjax.models.transformer.per_token is flat
    loss_3d, accuracy_3d = step_3d(model, optimizer, setup.batch)
    loss_2d, accuracy_2d = masked_prediction_step(*setup.fresh(), setup.batch)
    np.testing.assert_allclose(float(loss_3d), float(loss_2d), rtol=1e-5)
    assert float(accuracy_3d) == float(accuracy_2d)
    # The switch changed the program: more layout copies around 3-D products.
    assert step_3d.as_text().count(" transpose(") > masked_prediction_step.lower(*setup.fresh(), setup.batch).compile().as_text().count(" transpose(")


def test_argmax_and_max_accuracy_agree_and_the_switch_is_undone(setup):
    library_loss = learnjax.training.steps.masked_prediction_loss
    with performance.accuracy_from_argmax():
        assert learnjax.training.steps.masked_prediction_loss is performance.argmax_masked_prediction_loss
        argmax = nnx.jit(masked_prediction_update)(*setup.fresh(), setup.batch)
    assert learnjax.training.steps.masked_prediction_loss is library_loss
    library = masked_prediction_step(*setup.fresh(), setup.batch)
    assert float(argmax[1]) == float(library[1])
    np.testing.assert_allclose(float(argmax[0]), float(library[0]), rtol=1e-6)


def test_the_library_loop_called_for_one_step_donates_the_state(setup):
    nodes = setup.fresh()
    leaves = jax.tree.leaves(nnx.state(nodes))
    losses = setup.library_loop(nodes, steps=1)()
    assert all(leaf.is_deleted() for leaf in leaves)
    assert np.isfinite(float(losses[0])) and np.isnan(np.asarray(losses[1:])).all()  # one step ran, of a stack of STEPS_PER_CALL
    assert losses.shape == (STEPS_PER_CALL,)


def test_the_first_written_loop_trains_the_same_objective(setup):
    """From the same fresh model, the loop as first written and the library's loop
    mask the same words and compute the same losses, step after step."""
    nodes = setup.fresh()
    step = performance.compile_ahead(performance.first_written_step, *nodes, *setup.masked_rows(), switch=performance.products_on_3d_arrays())
    first = setup.first_written_loop(nodes, step.result())
    first_written = [float(first()) for _ in range(3)]
    library = np.asarray(setup.library_loop(setup.fresh(), steps=3)())[:3]
    assert first_written[0] > 1.0  # a fresh model: about log(vocabulary)
    np.testing.assert_allclose(first_written[0], library[0], rtol=1e-5)
    np.testing.assert_allclose(first_written, library, rtol=1e-4)  # then the same updates


def test_the_loops_run_the_twenty_steps_per_call_the_pages_name():
    assert STEPS_PER_CALL == 20, "the Performance and Fine-tuning pages say twenty steps per call"


def test_compare_ranks_a_slower_candidate_slower():
    result = compare({"2 ms": lambda: time.sleep(0.002), "6 ms": lambda: time.sleep(0.006)}, rounds=3, min_seconds=0.02)
    assert result.speedup("2 ms") == 1.0
    assert result.speedup("6 ms") < 0.7
    assert result.speedup("2 ms", over="6 ms") > 1.4
    assert result.seconds("2 ms") < result.seconds("6 ms")


def test_the_timing_module_s_example_runs():
    result = doctest.testmod(timing)
    assert result.attempted > 0 and result.failed == 0


def test_a_busy_process_beside_the_measurement_counts_as_load():
    busy = "import time\nend = time.time() + 1.0\nwhile time.time() < end: pass"
    with other_processes_load() as load:
        child = subprocess.Popen([sys.executable, "-c", busy])
        time.sleep(1.0)  # this process idles; the child keeps a core busy
    child.wait()
    assert load["cores"] >= 0.5, load


def test_load_is_unknown_where_the_system_does_not_report_it(monkeypatch):
    monkeypatch.setattr(timing, "busy_cpu_seconds", lambda: None)
    with other_processes_load() as load:
        pass
    assert load["cores"] is None


def test_the_benchmarks_use_the_library_s_own_functions_without_importing_jax():
    code = ("import sys, numpy as np\nfrom benchmarks import harness\n"
            "batches = harness.library_function('training.loops', 'batch_indices', np=np)(10, 4, 5, 3)\n"
            "print([b.tolist() for b in batches], harness.LARGE.max_predictions, 'jax' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=harness.ROOT, capture_output=True, text=True, check=True)
    from learnjax.training.loops import batch_indices

    expected = [b.tolist() for b in batch_indices(10, 4, 5, 3)]
    assert done.stdout.split() == f"{expected} {max_predictions_for(harness.LARGE.max_len, harness.LARGE.mask_rate)} False".split()


def test_the_page_s_figures_are_keyed_by_the_code_that_measures_them(monkeypatch):
    calls = []
    monkeypatch.setattr(learnjax.storage.cache, "cached_json", lambda kind, params, compute, **kw: calls.append((kind, compute, kw)))
    performance.measured()
    [(kind, compute, kw)] = calls
    assert (kind, compute) == ("performance", performance.measure)
    assert {Path(f).resolve() for f in kw["extra_files"]} == {Path(performance.__file__).resolve(), Path(timing.__file__).resolve()}


_COMPUTED = []


def _count_a_computation() -> int:
    _COMPUTED.append(1)
    return len(_COMPUTED)


def test_cached_json_computes_again_when_an_extra_file_changes_and_lists_it_current(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    extra = tmp_path / "measuring.py"
    _COMPUTED.clear()
    compute = _count_a_computation
    extra.write_text("x = 1\n")
    first = learnjax.storage.cache.cached_json("extra", {}, compute, extra_files=(extra,))
    assert [e.status for e in learnjax.storage.cache.list_entries() if e.name.startswith("extra")] == ["current"]
    extra.write_text("x = 1  # a comment\n")
    again = learnjax.storage.cache.cached_json("extra", {}, compute, extra_files=(extra,))
    extra.write_text("x = 2\n")
    assert [e.status for e in learnjax.storage.cache.list_entries() if e.name.startswith("extra")] == ["stale"]
    changed = learnjax.storage.cache.cached_json("extra", {}, compute, extra_files=(extra,))
    assert (first, again, changed) == (1, 1, 2)
