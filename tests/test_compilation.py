"""Each training loop compiles its step once: no retracing from one step to the next."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optax
from flax import nnx

from learnjax.data import corpus
from learnjax.models.transformer import BagOfWordsClassifier, MaskedLanguageModel, TransformerConfig
from learnjax.text.tokenizer import Tokenizer
from learnjax.training.diagnostics import count_compilations
from learnjax.training.loops import train_classifier, train_masked_prediction


def test_masked_prediction_loop_compiles_once():
    texts = corpus.build_corpus(500)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, 32)
    model = MaskedLanguageModel(TransformerConfig(len(tokenizer), 32, 32, 1, 2, 64), rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)
    with count_compilations() as first:
        train_masked_prediction(model, optimizer, tokens, segments, steps=3, batch_size=8)
    with count_compilations() as later:
        history = train_masked_prediction(model, optimizer, tokens, segments, steps=40, batch_size=8, seed=1)
    assert first.count >= 1  # the counter does see compilations
    assert later.count == 0
    assert len(history.loss) == 40


def test_supervised_loop_compiles_once_even_when_labels_are_few():
    model = BagOfWordsClassifier(50, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, 50, size=(5, 16)).astype(np.int32)  # fewer rows than a batch
    labels = np.array([0, 1, 0, 1, 1], np.int32)
    train_classifier(model, optimizer, tokens, labels, steps=2, batch_size=8)
    with count_compilations() as later:
        train_classifier(model, optimizer, tokens, labels, steps=30, batch_size=8)
    assert later.count == 0


def test_fine_tuning_runs_share_one_compiled_step():
    from learnjax import foundation_model
    from learnjax.data import messages
    from learnjax.training.finetuning import FinetuneSettings, finetune

    foundation = foundation_model()
    items = messages.labeled_splits()["pool"][:16]
    texts, labels = [m.text for m in items], [m.label for m in items]
    settings = FinetuneSettings(steps=4)
    finetune(foundation, texts, labels, settings=settings, label_names=messages.LABEL_NAMES)
    with count_compilations() as again:
        finetune(foundation, texts, labels, settings=settings, seed=1, label_names=messages.LABEL_NAMES)
    assert again.count == 0


def test_pretraining_finds_its_programs_compiled_ahead_on_another_thread():
    import jax
    import pytest

    from learnjax.training.loops import adamw, compile_masked_prediction_steps
    from learnjax.training.pretraining import compile_for_pretraining, create_model_and_optimizer, model_shapes

    texts = corpus.build_corpus(500)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, 32)
    config, tx, key = TransformerConfig(len(tokenizer), 32, 32, 1, 2, 64), adamw(10, 2, 0.01), jax.random.key(3)
    with count_compilations() as ahead:
        compile_for_pretraining(config, tx, key, batch_size=8, mask_rate=0.2).result()
    with count_compilations() as later:
        model, optimizer = create_model_and_optimizer(config, tx, key, 1e-3)
        history = train_masked_prediction(model, optimizer, tokens, segments, steps=3, batch_size=8, mask_rate=0.2)
    assert ahead.count == 2  # the initial parameters and the training step
    assert later.count == 0
    assert len(history.loss) == 3
    with pytest.raises(ValueError, match="mask rate"):  # checked before anything is handed to the thread
        compile_masked_prediction_steps(model_shapes(config, tx), batch_size=8, max_len=32, mask_rate=1.5)


def test_next_word_loop_compiles_once():
    from learnjax.models.transformer import NextWordModel
    from learnjax.training.loops import train_next_word

    texts = corpus.build_corpus(500)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, 32, end=True)
    model = NextWordModel(TransformerConfig(len(tokenizer), 32, 32, 1, 2, 64), rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)
    train_next_word(model, optimizer, tokens, segments, steps=3, batch_size=8)
    with count_compilations() as later:
        history = train_next_word(model, optimizer, tokens, segments, steps=45, batch_size=8, seed=1)
    assert later.count == 0
    assert len(history.loss) == 45


def test_runs_at_different_learning_rates_share_one_compiled_step():
    # The peak learning rate is a value in the optimizer's state, not part of the program.
    from learnjax import foundation_model
    from learnjax.data import messages
    from learnjax.training.finetuning import FinetuneSettings, finetune

    foundation = foundation_model()
    items = messages.labeled_splits()["pool"][:16]
    texts, labels = [m.text for m in items], [m.label for m in items]
    finetune(foundation, texts, labels, settings=FinetuneSettings(steps=4), label_names=messages.LABEL_NAMES)
    with count_compilations() as again:
        for rate in (3e-4, 3e-3, 1e-2):
            finetune(foundation, texts, labels, settings=FinetuneSettings(steps=4, learning_rate=rate), label_names=messages.LABEL_NAMES)
    assert again.count == 0


def test_a_program_read_back_from_the_persistent_cache_loads_silently(tmp_path):
    """A second run of a command loads its compiled steps from the persistent
    cache; that must not print to stderr (jax 0.10.0 and 0.10.1 warned there,
    wrongly, that the host lacked a CPU feature, on every such run)."""
    import subprocess
    import sys

    program = ("import sys, jax, jax.numpy as jnp\nfrom learnjax.storage.cache import use_compilation_cache\n"
               "use_compilation_cache(sys.argv[1])\nprint(jax.jit(lambda x: (x * 2).sum())(jnp.ones(3)))")
    runs = [subprocess.run([sys.executable, "-c", program, str(tmp_path)], capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [(r.returncode, r.stdout, r.stderr) for r in runs] == [(0, "6.0\n", "")] * 2
    assert any(tmp_path.iterdir()), "nothing was written to the persistent cache"


def test_a_run_of_the_docs_tests_alone_keeps_its_compiled_programs(tmp_path):
    """`pytest docs/page.md` or `pytest src/module.py`, without `tests/`, still
    loads the project's plugins (the root conftest's `PLUGINS`): the programs it
    compiles are kept for the next run, as a full run keeps them."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:hypothesispytest",  # unused; a second to load
                             "src/learnjax/training/masking.py"], cwd=root,
                            env={**os.environ, "LEARNJAX_CACHE": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any((tmp_path / "xla").iterdir()), "the docstrings' programs were not kept"
