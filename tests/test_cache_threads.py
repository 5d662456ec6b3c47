"""`in_threads`: an experiment's independent runs go two at a time, each thread
acting for the computation that started it, and the models come out the same."""

import dataclasses
import json
import threading
import time

import numpy as np
from flax import nnx

from learnjax import Tokenizer, TransformerConfig
from learnjax.data.questions import Example
from learnjax.models.transformer import NextWordModel
from learnjax.storage.cache import RECORD_SUFFIX, cached_json, entries_used, in_threads
from learnjax.storage.progress import History
from learnjax.training.foundation import Foundation
from learnjax.training.sft import SFTSettings, tune
from test_cache import within
from test_model_directories import params


def test_results_come_in_the_order_of_the_items():
    assert in_threads(lambda x: x * x, range(7)) == [x * x for x in range(7)]


def test_two_items_run_at_once():
    meet = threading.Barrier(2, timeout=30)  # one at a time, the first waits alone and breaks it
    in_threads(lambda _: meet.wait(), [0, 1])


def _square(x):
    return x * x


def _slow_square(x):
    time.sleep(0.5)
    return x * x


def _sum_of_squares(n):
    return sum(in_threads(lambda x: cached_json("square", {"x": x}, _square), range(n)))


def _sum_of_slow_squares(n):
    return sum(in_threads(lambda x: cached_json("slow-square", {"x": x}, _slow_square), range(n)))


def _record(tmp_path, kind: str) -> dict:
    records = [json.loads(p.read_text()) for p in tmp_path.glob(f"*{RECORD_SUFFIX}")]
    (record,) = [r for r in records if r["kind"] == kind]
    return record


def test_the_threads_of_a_computation_compute_entries_without_waiting_for_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    result = within(60, lambda: cached_json("sum-of-squares", {"n": 4}, _sum_of_squares), "a thread's entry waited for the computing lock its caller holds")
    assert result == [14]
    # What the threads read is what the computation read: a change to one of them makes it stale.
    read = {r["entry"] for r in _record(tmp_path, "sum-of-squares")["reads"]}
    squares = {p.name.removesuffix(RECORD_SUFFIX) for p in tmp_path.glob(f"square-*{RECORD_SUFFIX}")}
    assert len(squares) == 4 and read == squares


def test_the_entries_the_threads_use_are_collected_with_the_callers(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    with entries_used() as used:
        in_threads(lambda x: cached_json("square", {"x": x}, _square), range(3))
    assert len(used) == 3 and not any(u["cached"] for u in used)


def test_the_seconds_the_threads_spend_computing_are_not_the_callers_own(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    assert cached_json("sum-of-slow-squares", {"n": 4}, _sum_of_slow_squares) == 14
    outer = _record(tmp_path, "sum-of-slow-squares")
    assert outer["seconds"] >= 0.9  # two rounds of two half-second squares
    assert outer["own_seconds"] < 0.3 * outer["seconds"], outer


TEXTS = ["what day comes after monday ? tuesday .", "the cat sat on the mat ."]


def test_models_trained_in_threads_are_the_ones_trained_one_after_the_other():
    tokenizer = Tokenizer.from_texts(TEXTS)
    config = TransformerConfig(vocab_size=len(tokenizer), max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    foundation = Foundation(NextWordModel(config, rngs=nnx.Rngs(0)), tokenizer, History())
    examples = [Example("what day comes after monday ?", "tuesday ."), Example("the cat sat on", "the mat .")]
    settings = SFTSettings(steps=8, batch_size=2, warmup_steps=2)

    def trained(run: tuple) -> list[np.ndarray]:
        mode, seed, learning_rate = run
        model, _ = tune(foundation, examples, mode=mode, seed=seed, settings=dataclasses.replace(settings, learning_rate=learning_rate))
        return params(model)

    runs = [("full", 0, 1e-3), ("lora", 1, 3e-3), ("full", 1, 3e-4), ("scratch", 2, 1e-3)]
    serial = [trained(run) for run in runs]
    for alone, beside in zip(serial, in_threads(trained, runs), strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(alone, beside, strict=True))
