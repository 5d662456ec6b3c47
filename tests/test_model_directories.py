"""A model directory is untrusted input, and nothing saved is lost by mistake:
names in a manifest stay inside the directory, concurrent saves leave a whole
model, and `--out` is checked before training and never replaced unasked."""

import json
import multiprocessing
import os
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from cli_process import run_cli
from learnjax import MaskedLanguageModel, Tokenizer, TransformerConfig
from learnjax.models.transformer import EncoderClassifier, Transformer
from learnjax.storage.checkpoints import LOCK, MANIFEST, CheckpointError, check_writable_model_dir, read_manifest
from learnjax.storage.progress import History
from learnjax.training.finetuning import TextClassifier
from learnjax.training.foundation import Foundation
from one_line import is_one_line

WORDS = "the cat sat on a mat while dog ran to red barn and bird sang in tall old tree by river".split()


def tiny_foundation(seed: int = 0) -> Foundation:
    """A small untrained model; each seed has its own vocabulary size and values,
    so parameters and tokenizer of two seeds never fit together."""
    tokenizer = Tokenizer.from_texts([" ".join(WORDS[: 6 + seed])])
    config = TransformerConfig(vocab_size=len(tokenizer), max_len=8, d_model=8, n_layers=1, n_heads=2, d_ff=16)
    return Foundation(MaskedLanguageModel(config, rngs=nnx.Rngs(seed)), tokenizer, History())


def tiny_classifier() -> TextClassifier:
    foundation = tiny_foundation()
    model = EncoderClassifier(Transformer(foundation.model.config, rngs=nnx.Rngs(1)), 2, rngs=nnx.Rngs(1))
    return TextClassifier(model, foundation.tokenizer, ("ham", "spam"), "full", History())


def params(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model))]


def same_model(a: Foundation, b: Foundation) -> bool:
    return a.tokenizer == b.tokenizer and all(np.array_equal(x, y) for x, y in zip(params(a.model), params(b.model), strict=True))


def files_and_contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


learnjax = run_cli


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert is_one_line(result.stderr) and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the model directory that nothing may read, change or delete."""
    path = tmp_path / "victim.txt"
    path.write_text("precious\n", encoding="utf-8")
    return path


def crafted_model_dir(tmp_path: Path) -> Path:
    """A directory whose manifest names a file outside it: saving into it used to
    delete that file, as the manifest's data files are deleted as old."""
    directory = tmp_path / "DIR"
    directory.mkdir()
    manifest = {"format_version": 1, "kind": "masked_lm", "params": "../victim.txt", "tokenizer": "../victim.txt"}
    (directory / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return directory


# --- names in a manifest -------------------------------------------------------------------

BAD_NAMES = [
    ("params", "../victim.txt"),
    ("tokenizer", "../victim.txt"),
    ("params", "/etc/passwd"),
    ("params", "sub/params-0123456789abcdef.msgpack"),
    ("params", "..\\params-0123456789abcdef.msgpack"),
    ("params", "params-0123456789ABCDEF.msgpack"),
    ("tokenizer", "params-0123456789abcdef.msgpack"),
    ("tokenizer", "tokenizer-0123456789abcdef.json\n"),
    ("params", 5),
]


@pytest.mark.parametrize("key, name", BAD_NAMES, ids=[f"{k}={n!r}" for k, n in BAD_NAMES])
def test_loading_refuses_a_manifest_naming_any_file_but_its_own(tmp_path, victim, key, name):
    directory = tiny_foundation().save(tmp_path / "DIR")
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, key: name}))
    with pytest.raises(CheckpointError) as raised:
        Foundation.load(directory)
    assert repr(name) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("key, value", [("vocab_size", "13"), ("config", []), ("metadata", ["labels"])])
def test_loading_refuses_manifest_entries_of_the_wrong_type(tmp_path, key, value):
    directory = tiny_foundation().save(tmp_path / "DIR")
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, key: value}))
    with pytest.raises(CheckpointError, match=f"has {key} {value!r}".replace("[", r"\[")):
        Foundation.load(directory)


def test_saving_into_a_crafted_directory_deletes_nothing_outside_it(tmp_path, victim):
    directory = crafted_model_dir(tmp_path)
    before = files_and_contents(directory)
    with pytest.raises(CheckpointError, match=r"names params file '\.\./victim\.txt'"):
        tiny_foundation().save(directory)
    assert victim.read_text() == "precious\n"
    assert {k: v for k, v in files_and_contents(directory).items() if k != LOCK} == before, "nothing written before the check"


def test_a_data_file_linking_out_of_the_directory_is_neither_read_nor_deleted(tmp_path, victim):
    directory = tiny_foundation().save(tmp_path / "DIR")
    name = json.loads((directory / MANIFEST).read_text())["params"]
    outside = tmp_path / "outside.msgpack"
    (directory / name).rename(outside)
    (directory / name).symlink_to(outside)
    with pytest.raises(CheckpointError, match="outside the model directory"):
        Foundation.load(directory)
    with pytest.raises(CheckpointError, match="outside the model directory"):
        tiny_foundation(seed=1).save(directory)
    assert outside.exists() and (directory / name).is_symlink()


def test_a_link_planted_at_a_temporary_file_name_is_not_written_through(tmp_path, victim):
    """The manifest used to be written to `.learnjax.json.tmp-<pid>` first: a
    link left at that name had the save overwrite the file it points to."""
    directory = tmp_path / "DIR"
    directory.mkdir()
    (directory / f".{MANIFEST}.tmp-{os.getpid()}").symlink_to(victim)
    tiny_foundation().save(directory)
    assert victim.read_text() == "precious\n"
    assert same_model(Foundation.load(directory), tiny_foundation())


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_the_cli_refuses_a_crafted_directory_and_deletes_nothing(tmp_path, victim, command):
    """`learnjax pretrain --steps 2 --batch-size 8 --out DIR` deleted ../victim.txt and exited 0."""
    directory = crafted_model_dir(tmp_path)
    (tmp_path / "labeled.csv").write_text("text,label\nfree money,spam\nsee you,ham\n" * 4, encoding="utf-8")
    extra = ["--train", tmp_path / "labeled.csv"] if command == "finetune" else ["--batch-size", 8]
    for overwrite in ([], ["--overwrite"]):
        result = learnjax(command, "--steps", 2, *extra, *overwrite, "--out", directory)
        assert_one_line_error(result, "'../victim.txt'")
        assert victim.read_text() == "precious\n"


# --- concurrent saves ----------------------------------------------------------------------

WRITERS, ROUNDS, SAVES_PER_ROUND = 3, 25, 2


def _save_in_rounds(directory: str, models_saved_in: list[str], barrier) -> None:
    """Saves, each round, its two models in turn, at the same moment as the other writers."""
    models = [Foundation.load(path) for path in models_saved_in]  # faster than building them in a new process
    for round in range(ROUNDS):
        barrier.wait()  # every writer starts at once
        for save in range(SAVES_PER_ROUND):
            models[(round + save) % 2].save(directory)
        barrier.wait()  # the test looks at the directory before the next round


def test_concurrent_saves_always_leave_one_whole_model(tmp_path):
    """Without the lock, one writer skipped a data file that existed, another
    deleted it as old, and the directory was left partial (3 rounds in 100 with
    4 writers saving 3 times a round), or held other writers' files besides the
    model (in the first round of every run)."""
    candidates = [tiny_foundation(seed) for seed in range(2 * WRITERS)]
    saved_alone = [str(c.save(tmp_path / f"alone-{i}")) for i, c in enumerate(candidates)]
    whole_models = {(m["params"], m["tokenizer"]) for m in map(read_manifest, saved_alone)}
    directory = tmp_path / "model"
    spawn = multiprocessing.get_context("spawn")  # JAX is multi-threaded: never fork it
    barrier = spawn.Barrier(WRITERS + 1, timeout=120)
    writers = [spawn.Process(target=_save_in_rounds, args=(str(directory), saved_alone[i::WRITERS], barrier)) for i in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:
        for round in range(ROUNDS):
            barrier.wait()
            barrier.wait()
            manifest = read_manifest(directory)  # checks that the files it names are there
            assert (manifest["params"], manifest["tokenizer"]) in whole_models, f"round {round}: a mixture of models"
            left = {p.name for p in directory.iterdir()} - {MANIFEST, LOCK, manifest["params"], manifest["tokenizer"]}
            assert not left, f"round {round}: other writers' files left behind: {sorted(left)}"
    except BaseException:
        barrier.abort()  # the writers stop waiting for this test
        raise
    finally:
        for writer in writers:
            writer.join(60)
    assert [w.exitcode for w in writers] == [0] * WRITERS
    assert any(same_model(Foundation.load(directory), c) for c in candidates)


def test_loading_writes_nothing_and_works_in_a_read_only_directory(tmp_path):
    directory = tiny_foundation().save(tmp_path / "model")
    (directory / LOCK).unlink(missing_ok=True)  # loading must not need it
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    directory.chmod(0o555)
    try:
        assert same_model(Foundation.load(directory), tiny_foundation())
    finally:
        directory.chmod(0o755)
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before, "loading takes no lock and writes no file"


# --- checking --out before training ---------------------------------------------------------

def test_out_may_be_a_new_directory_or_one_without_a_model(tmp_path):
    assert check_writable_model_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists(), "checking creates nothing"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / LOCK).touch()  # left by an earlier save that failed: not a model
    check_writable_model_dir(tmp_path / "notes")


@pytest.mark.parametrize("out, message", [("file.txt", "'{tmp}/file.txt' is a file"), ("file.txt/model", "'{tmp}/file.txt' is a file")])
def test_out_must_be_a_directory(tmp_path, out, message):
    (tmp_path / "file.txt").write_text("not a directory")
    with pytest.raises(CheckpointError, match="cannot save to") as raised:
        check_writable_model_dir(tmp_path / out)
    assert message.format(tmp=tmp_path) in str(raised.value)


def test_out_must_be_writable(tmp_path):
    (tmp_path / "locked").mkdir(mode=0o555)
    if os.access(tmp_path / "locked", os.W_OK):
        pytest.skip("permissions do not stop this user (root) from writing")
    with pytest.raises(CheckpointError, match="is not writable"):
        check_writable_model_dir(tmp_path / "locked" / "model")


@pytest.mark.parametrize("make, kind", [(tiny_foundation, "masked_lm"), (tiny_classifier, "classifier")])
def test_a_saved_model_is_replaced_only_with_overwrite(tmp_path, make, kind):
    directory = make().save(tmp_path / "model")
    with pytest.raises(CheckpointError) as raised:
        check_writable_model_dir(directory)
    assert f"{str(directory)!r} already holds a {kind!r} model" in str(raised.value) and "--overwrite" in str(raised.value)
    assert check_writable_model_dir(directory, overwrite=True) == directory


def notes_folder(tmp_path: Path) -> Path:
    """A user's folder of their own files, which no save may write among."""
    notes = tmp_path / "my-notes"
    (notes / "drafts").mkdir(parents=True)
    for name in ("todo.txt", "ideas.md", "budget.csv", "z.txt"):
        (notes / name).write_text(f"{name} stays as it is\n", encoding="utf-8")
    return notes


def test_a_folder_of_other_files_is_refused_even_with_overwrite(tmp_path):
    notes = notes_folder(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(CheckpointError) as raised:
            check_writable_model_dir(notes, overwrite=overwrite)
        message = str(raised.value)
        assert f"{str(notes)!r} is not empty and holds no learnjax model ('budget.csv', 'drafts/', 'ideas.md' and 2 more)" in message
        assert is_one_line(message + "\n")


def test_a_folder_holding_only_what_learnjax_leaves_is_not_refused(tmp_path):
    """A lock from an earlier save, or a run's checkpoints (--resume) before its model is saved."""
    tiny_foundation().save(tmp_path / "out" / "checkpoint")
    (tmp_path / "out" / LOCK).touch()
    assert check_writable_model_dir(tmp_path / "out") == tmp_path / "out"
    (tmp_path / "out" / "checkpoint" / "notes.txt").touch()
    with pytest.raises(CheckpointError, match="'checkpoint/notes.txt'"):
        check_writable_model_dir(tmp_path / "out")


def test_the_cli_never_writes_among_a_users_files(tmp_path, small_corpus):
    notes = notes_folder(tmp_path)
    before = {str(p.relative_to(notes)): p.read_bytes() if p.is_file() else None for p in notes.rglob("*")}
    (tmp_path / "labeled.csv").write_text("text,label\nfree money,spam\nsee you,ham\n", encoding="utf-8")
    commands = [("pretrain", "--corpus", small_corpus, "--steps", 2, "--batch-size", 8),
                ("finetune", "--model", tmp_path / "nowhere", "--train", tmp_path / "labeled.csv")]
    for command in commands:
        for overwrite in ([], ["--overwrite"]):
            result = learnjax(*command, *overwrite, "--out", notes)
            assert_one_line_error(result, f"{str(notes)!r} is not empty and holds no learnjax model ('budget.csv', 'drafts/'")
    assert {str(p.relative_to(notes)): p.read_bytes() if p.is_file() else None for p in notes.rglob("*")} == before


def test_out_is_not_the_model_being_read(tmp_path):
    directory = tiny_foundation().save(tmp_path / "model")
    for spelled in (directory, tmp_path / "." / "model", Path(os.path.relpath(directory))):
        with pytest.raises(CheckpointError, match="is the model being read"):
            check_writable_model_dir(spelled, overwrite=True, reading_from=directory)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("the cat sat on the mat.\nthe dog sat on the rug.\n" * 20, encoding="utf-8")
    return path


def test_cli_checks_out_before_training(tmp_path, small_corpus):
    """--batch-size 64 is larger than this corpus: training would fail, so an
    error about --out shows that --out was checked first."""
    (tmp_path / "file.txt").write_text("not a directory")
    result = learnjax("pretrain", "--corpus", small_corpus, "--batch-size", 64, "--out", tmp_path / "file.txt")
    assert_one_line_error(result, "is a file")
    (tmp_path / "labeled.csv").write_text("text,label\nfree money,spam\nsee you,ham\n", encoding="utf-8")
    result = learnjax("finetune", "--model", tmp_path / "nowhere", "--train", tmp_path / "labeled.csv", "--out", tmp_path / "file.txt")
    assert_one_line_error(result, "is a file")


def test_finetune_refuses_to_replace_its_own_foundation(tmp_path):
    directory = tiny_foundation().save(tmp_path / "model")
    before = files_and_contents(directory)
    (tmp_path / "labeled.csv").write_text("text,label\nfree money,spam\nsee you,ham\n", encoding="utf-8")
    for overwrite in ([], ["--overwrite"]):
        result = learnjax("finetune", "--model", directory, "--train", tmp_path / "labeled.csv", *overwrite, "--out", directory)
        assert_one_line_error(result, str(directory), "is the model being read")
    assert files_and_contents(directory) == before


def test_pretrain_replaces_a_saved_model_only_with_overwrite(tmp_path, small_corpus):
    directory = tiny_classifier().save(tmp_path / "model")
    before = files_and_contents(directory)
    args = ["pretrain", "--corpus", small_corpus, "--steps", 2, "--batch-size", 8, "--out", directory]
    assert_one_line_error(learnjax(*args), f"{str(directory)!r} already holds a 'classifier' model", "--overwrite")
    assert files_and_contents(directory) == before
    replaced = learnjax(*args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert len(Foundation.load(directory).tokenizer) > 0
    assert len([p for p in directory.iterdir() if not p.name.startswith(".")]) == 3, "the classifier's files are gone"


@pytest.mark.parametrize("metadata", [{"recipe": {"evil": 1}}, {"history": {"loss": [1.0], "extra": 2}}, {"recipe": "not a dict"}, []])
def test_malformed_metadata_is_a_one_line_checkpoint_error(tmp_path, metadata):
    import json

    from learnjax import foundation_model
    from learnjax.storage.checkpoints import CheckpointError
    from learnjax.training.foundation import Foundation

    path = foundation_model().save(tmp_path / "model")
    manifest = json.loads((path / "learnjax.json").read_text())
    manifest["metadata"] = metadata
    (path / "learnjax.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="metadata"):
        Foundation.load(path)


def test_the_config_s_former_name_still_works():
    """`EncoderConfig` was renamed `TransformerConfig` (it shapes decoders too); a
    model directory stores the config's fields, not its class's name, so saved
    models load unchanged, and code written with the former name still runs."""
    from learnjax import EncoderConfig, TransformerConfig

    assert EncoderConfig is TransformerConfig
    assert EncoderConfig(vocab_size=20, d_model=16, n_heads=2, d_ff=32) == TransformerConfig(vocab_size=20, d_model=16, n_heads=2, d_ff=32)
