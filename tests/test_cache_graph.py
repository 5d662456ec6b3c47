"""Cache keys cover exactly the code an entry runs (the import graph), and an
entry read by another counts by its content: computed again with the same
result, its readers stay valid (early cutoff)."""

import ast
import inspect
import json
import shutil
from pathlib import Path

import pytest

import learnjax
from learnjax.storage import cache
from learnjax.storage.cache import cached_json, computation, entries_used, entry_content, list_entries
from learnjax.storage.code_graph import definition_closure, files_held, import_graph, imports_of

PACKAGE = Path(learnjax.__file__).parent


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package's source that the cache reads its code from, to plant changes in."""
    copy = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    return copy


def _pretrain_source() -> dict:
    """Where pretrain lives, relative to the package: found in whichever copy `cache.PACKAGE` is."""
    from learnjax.training.pretraining import pretrain

    return {"file": Path(inspect.getsourcefile(pretrain)).relative_to(PACKAGE).as_posix(), "in_package": True, "function": "pretrain"}


def _foundation_code() -> str:
    return computation(_pretrain_source()).code()


def _plant(file: Path, line: str) -> str:
    """Appends `line` to `file`; returns the text before."""
    before = file.read_text(encoding="utf-8")
    file.write_text(before + "\n" + line + "\n", encoding="utf-8")
    return before


def _inside(source: str, function: str, line: str) -> str:
    """`source` with `line` added as the last statement of `function`'s body."""
    import ast

    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == function)
    last = node.body[-1]
    lines = source.splitlines()
    lines.insert(last.end_lineno, " " * last.col_offset + line)
    return "\n".join(lines) + "\n"


def test_the_foundation_key_covers_every_module_its_training_runs_and_no_other(package_copy):
    graph = import_graph(package_copy)
    runs = computation(_pretrain_source()).modules
    assert {m.rsplit(".", 1)[-1] for m in runs} >= {"sharding", "lora", "subword", "loops", "steps", "transformer", "checkpoints"}
    before = _foundation_code()
    for module in sorted(runs):
        text = _plant(graph.files[module], "_PLANTED = 1")
        assert _foundation_code() != before, f"a change to {module} left the foundation's key as it was"
        graph.files[module].write_text(text, encoding="utf-8")
    others = sorted(set(graph.files) - runs)
    assert any(m.endswith(".cli") for m in others)
    # Training never writes text: a change to the sampler leaves the foundation models as they are.
    assert any(m.endswith(".models.generation") for m in others)
    for module in others:  # all at once: one check
        _plant(graph.files[module], "_PLANTED = 1")
    assert _foundation_code() == before, f"a change to modules training never imports ({others}) changed the foundation's key"
    # In pretrain's own module, its own definitions count, others not.
    own = package_copy / _pretrain_source()["file"]
    text = own.read_text(encoding="utf-8")
    own.write_text(text.replace("def pretrain(", "def _planted():\n    return 1\n\n\ndef pretrain(", 1), encoding="utf-8")
    assert _foundation_code() == before
    own.write_text(_inside(text, "pretrain", "_planted = 1"), encoding="utf-8")
    assert _foundation_code() != before
    own.write_text(text + "\n# a comment only\n", encoding="utf-8")
    assert _foundation_code() == before


def test_an_entry_is_computed_again_after_a_change_to_code_it_imports_and_reused_after_others(tmp_path, package_copy, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    module = tmp_path / "tiny_entry.py"
    module.write_text("RUNS = []\n\ndef rank(r):\n    from learnjax.models.lora import add_lora\n    RUNS.append(r)\n    return r\n", encoding="utf-8")
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("tiny_entry", module)
    tiny = module_from_spec(spec)
    spec.loader.exec_module(tiny)
    graph = import_graph(package_copy)
    lora = next(f for f in graph.files.values() if f.name == "lora.py")
    cli = graph.files["learnjax.cli"]

    assert cached_json("tiny", {"r": 4}, tiny.rank) == 4 and tiny.RUNS == [4]
    _plant(cli, "_PLANTED = 1")
    assert cached_json("tiny", {"r": 4}, tiny.rank) == 4 and tiny.RUNS == [4], "a change to a module it never imports: reused"
    _plant(lora, "_PLANTED = 1")
    assert cached_json("tiny", {"r": 4}, tiny.rank) == 4 and tiny.RUNS == [4, 4], "a change to the module it imports: computed again"


def test_while_the_files_are_held_the_import_graph_is_read_once(package_copy):
    """A build holds the package's files (`files_held`): the import graph is the
    one of its start, however the folder changes; after it, the folder as it is."""
    new = package_copy / "models" / "planted.py"
    with files_held():
        assert "learnjax.models.planted" not in import_graph(package_copy).files
        new.write_text("from learnjax.models import lora\n", encoding="utf-8")
        with files_held():  # nested: still the outer one's
            assert "learnjax.models.planted" not in import_graph(package_copy).files
    assert "learnjax.models.lora" in import_graph(package_copy).edges["learnjax.models.planted"], "released: the folder as it is"


def test_imports_are_resolved_in_any_package_layout(tmp_path):
    """Sub-packages, relative imports, imports inside functions, re-exported
    names, modules run by name; imports for type checkers only do not count."""
    package = tmp_path / "pkg"
    files = {
        "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.data.loader import load\n",
        "data/__init__.py": "",
        "data/loader.py": "from ..text import words\n\ndef load():\n    return words.split_words('a b')\n",
        "text/__init__.py": "from .words import split_words\n",
        "text/words.py": "def split_words(s):\n    from . import helpers\n    return s.split()\n",
        "text/helpers.py": "",
        "models/train.py": "from pkg import load\nfrom pkg.text import split_words\n\ndef run():\n    import subprocess\n    subprocess.run(['python', '-m', 'pkg.cli'])\n",
        "cli.py": "",
        "unused.py": "import pkg.models.train\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text, encoding="utf-8")
    graph = import_graph(package)
    assert graph.edges["pkg"] == frozenset(), "an import for type checkers never runs"
    assert graph.edges["pkg.data.loader"] == {"pkg", "pkg.text", "pkg.text.words"}
    assert graph.edges["pkg.text.words"] == {"pkg", "pkg.text", "pkg.text.helpers"}
    assert graph.edges["pkg.models.train"] == {"pkg", "pkg.data", "pkg.data.loader", "pkg.text", "pkg.text.words", "pkg.cli"}
    assert "pkg.unused" not in graph.closure(["pkg.models.train"])
    assert graph.closure(["pkg.data.loader"], stop_at=["pkg.text.words"]) == {"pkg", "pkg.text", "pkg.data.loader"}
    statements = definition_closure((package / "data/loader.py").read_text(encoding="utf-8"), "load")
    assert imports_of(statements, package, "pkg.data.loader") == {"pkg", "pkg.text", "pkg.text.words"}
    assert imports_of("from pkg.text import helpers", package) == {"pkg", "pkg.text", "pkg.text.helpers"}


def test_only_the_definitions_a_function_uses_count_in_its_own_file():
    source = ('"""A module."""\nimport os\nimport sys\nLIMIT = 3\nOTHER = 4\nsys.setrecursionlimit(LIMIT * 1000)\n\n'
              'def helper():\n    return LIMIT\n\ndef main():\n    return helper() + len(os.sep)\n\ndef unused():\n    return OTHER\n\n'
              'if __name__ == "__main__":\n    unused()\n')
    kept = definition_closure(source, "main")
    assert [ast.unparse(s).splitlines()[0] for s in kept] == [
        "import os", "import sys", "LIMIT = 3", "sys.setrecursionlimit(LIMIT * 1000)", "def helper():", "def main():"]


# --- Early cutoff ------------------------------------------------------------------

READER = """
from importlib.util import module_from_spec, spec_from_file_location
from learnjax.storage.cache import cached_json

RUNS = []

def _writer():
    spec = spec_from_file_location("writer", {writer!r})
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def read(x):
    RUNS.append(x)
    return cached_json("writer", {{"x": x}}, _writer().write) + 1
"""


def _load(path: Path, name: str):
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location(name, path)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_entry_computed_again_with_the_same_result_keeps_its_readers(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    writer, runs = tmp_path / "writer.py", tmp_path / "runs.txt"
    writer.write_text(f"def write(x):\n    open({str(runs)!r}, 'a').write('w')\n    return 2 * x\n", encoding="utf-8")
    (tmp_path / "reader.py").write_text(READER.format(writer=str(writer)), encoding="utf-8")
    reader = _load(tmp_path / "reader.py", "reader")

    def statuses():
        return {e.kind: e.status for e in list_entries()}

    assert cached_json("reader", {"x": 5}, reader.read) == 11
    assert runs.read_text() == "w" and reader.RUNS == [5]
    assert statuses() == {"reader": "current", "writer": "current"}

    # A refactoring of the entry read: its key changes, it is computed again, comes out the same.
    writer.write_text(f"def write(x):\n    open({str(runs)!r}, 'a').write('w')\n    return x + x\n", encoding="utf-8")
    assert statuses() == {"reader": "waiting", "writer": "stale"}
    with entries_used() as used:
        assert cached_json("reader", {"x": 5}, reader.read) == 11
    assert runs.read_text() == "ww", "the entry read was computed again"
    assert reader.RUNS == [5], "its reader was not: what it read is the same"
    assert used[-1]["cached"]
    assert sorted(e.status for e in list_entries()) == ["current", "current", "stale"]

    # A change of its result: the reader is computed again.
    writer.write_text(f"def write(x):\n    open({str(runs)!r}, 'a').write('w')\n    return 3 * x\n", encoding="utf-8")
    assert cached_json("reader", {"x": 5}, reader.read) == 16
    assert runs.read_text() == "www" and reader.RUNS == [5, 5]


def test_an_entry_whose_input_holds_something_else_now_is_outdated_and_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    writer, factor = tmp_path / "writer.py", tmp_path / "factor.txt"
    writer.write_text(f"def write(x):\n    return x * int(open({str(factor)!r}).read())\n", encoding="utf-8")
    factor.write_text("2", encoding="utf-8")
    (tmp_path / "reader.py").write_text(READER.format(writer=str(writer)), encoding="utf-8")
    reader = _load(tmp_path / "reader.py", "reader")
    assert cached_json("reader", {"x": 1}, reader.read) == 3
    written = next(e for e in list_entries() if e.kind == "writer")
    for path in written.paths:  # deleted, to be measured again: it comes out differently
        path.unlink()
    factor.write_text("5", encoding="utf-8")
    assert cached_json("writer", {"x": 1}, _load(writer, "writer").write) == 5
    assert {e.kind: e.status for e in list_entries()} == {"reader": "outdated", "writer": "current"}
    removed, _ = cache.prune()
    assert [e.kind for e in removed] == ["reader"]
    assert cached_json("reader", {"x": 1}, reader.read) == 6 and reader.RUNS == [1, 1]


def test_a_foundation_model_trained_again_holds_the_same_content(tmp_path, monkeypatch):
    """Training is deterministic: what early cutoff relies on. The time it took is not content."""
    from learnjax import PretrainRecipe, foundation_model

    tiny = PretrainRecipe(n_texts=200, steps=2, batch_size=8)
    contents = []
    for name in ("first", "second"):
        monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / name))
        cache.forget_read_models()
        with entries_used() as used:
            foundation_model(tiny, progress=False)
        contents.append(entry_content(used[-1]["entry"], "foundation"))
    cache.forget_read_models()
    assert contents[0] is not None and contents[0] == contents[1]


def test_page_outputs_stay_until_pruned_and_prune_keeps_those_the_last_build_used(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    blocks = tmp_path / cache.SITE_OUTPUTS / "blocks"
    blocks.mkdir(parents=True)
    for name in ("used", "of-an-older-edit"):
        (blocks / f"{name}.json").write_text("{}", encoding="utf-8")
    (tmp_path / cache.SITE_OUTPUTS / cache.SITE_USED).write_text('["blocks/used.json"]', encoding="utf-8")
    assert sorted((e.kind, e.status, len(e.paths)) for e in list_entries()) == [("page outputs", "current", 1), ("page outputs", "stale", 1)]
    removed, kept = cache.prune()
    assert [p.name for e in removed for p in e.paths] == ["of-an-older-edit.json"]
    assert [p.name for p in blocks.iterdir()] == ["used.json"]


def test_the_graph_command_shows_what_each_entry_read_its_seconds_and_status(tmp_path, monkeypatch, capsys):
    from learnjax.cli import main

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    writer = tmp_path / "writer.py"
    writer.write_text("def write(x):\n    return 2 * x\n", encoding="utf-8")
    (tmp_path / "reader.py").write_text(READER.format(writer=str(writer)), encoding="utf-8")
    cached_json("reader", {"x": 1}, _load(tmp_path / "reader.py", "reader").read)
    writer.write_text("def write(x):\n    return x + x\n", encoding="utf-8")

    assert main(["cache", "graph", "--json"]) == 0
    rows = {row["kind"]: row for row in json.loads(capsys.readouterr().out)["entries"]}
    assert rows["reader"]["reads"] == [rows["writer"]["name"]] and rows["writer"]["reads"] == []
    assert (rows["reader"]["status"], rows["writer"]["status"]) == ("waiting", "stale")
    assert all(row["seconds"] > 0 for row in rows.values())
    assert main(["cache", "graph"]) == 0
    lines = capsys.readouterr().out.splitlines()
    reader = next(line for line in lines if line.startswith("reader-"))
    assert "waiting" in reader and f"reads {rows['writer']['name']}" in reader and f"{rows['reader']['seconds']:.1f} s" in reader
    assert lines[-1].startswith("2 entries in ")


def _tuned_source() -> dict:
    """Where a tuned model's training lives, relative to the package (as `_pretrain_source`)."""
    from learnjax.experiments.tuned_runs import train_and_save

    return {"file": Path(inspect.getsourcefile(train_and_save)).relative_to(PACKAGE).as_posix(), "in_package": True, "function": "train_and_save"}


def _tuned_code() -> str:
    return computation(_tuned_source()).code()


def test_a_tuned_models_key_covers_its_training_code_and_not_the_sampler(package_copy):
    graph = import_graph(package_copy)
    before = _tuned_code()
    runs = computation(_tuned_source()).modules
    assert {m.rsplit(".", 1)[-1] for m in runs} >= {"sft", "loops", "lora", "checkpoints"}
    for name in ("learnjax.models.generation", "learnjax.training.writing", "learnjax.training.instruction_tuning"):
        assert name not in runs, f"a tuned model's key covers {name}: a change to how assistants answer would train them again"
        _plant(graph.files[name], "_PLANTED = 1")
    assert _tuned_code() == before
    _plant(graph.files["learnjax.training.sft"], "_PLANTED = 1")
    assert _tuned_code() != before, "a change to the training left the tuned models' key as it was"


def test_a_tuned_model_is_trained_once_then_read_back_bit_for_bit(tmp_path, monkeypatch):
    from learnjax import NEXT_WORD_RECIPE, foundation_model
    from learnjax.data import questions
    from learnjax.experiments.tuned_runs import tuned_assistant
    from learnjax.models.lora import trainable_share
    from learnjax.storage.checkpoints import params_fingerprint
    from learnjax.training.instruction_tuning import instruction_tune
    from learnjax.training.sft import SFTSettings

    foundation = foundation_model(NEXT_WORD_RECIPE)
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    examples, settings = questions.training_examples(16, seed=0), SFTSettings(steps=6)
    asked = [e.prompt for e in questions.questions("dev")[:8]]
    direct = instruction_tune(foundation, examples, mode="lora", settings=settings)
    with entries_used() as first_use:
        first = tuned_assistant(foundation, examples, mode="lora", settings=settings)
    cache.forget_read_models()
    with entries_used() as second_use, cache.entries_read() as reads:
        second = tuned_assistant(foundation, examples, mode="lora", settings=settings)
    assert [u["cached"] for u in first_use] == [False] and [u["cached"] for u in second_use] == [True]
    assert params_fingerprint(first.model) == params_fingerprint(second.model) == params_fingerprint(direct.model)
    assert trainable_share(second.model) == trainable_share(direct.model) and trainable_share(second.model)["adapters"] > 0, "read back with its adapters"
    assert second.answer(asked) == direct.answer(asked)
    assert reads == [], "keyed by its inputs' content: not a read that its reader must check again"
    with entries_used() as other:
        tuned_assistant(foundation, questions.training_examples(16, seed=1), mode="lora", settings=settings)
    assert other[0]["entry"] != first_use[0]["entry"], "other examples: another model"


def _slow_inner():
    import time

    time.sleep(0.3)
    return 1


def _slow_outer():
    import time

    time.sleep(0.1)
    return cached_json("timing-inner", {}, _slow_inner) + 1


def test_an_entry_computed_inside_another_counts_its_seconds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    assert cached_json("timing-outer", {}, _slow_outer) == 2
    seconds = {row["kind"]: row["seconds"] for row in cache.entry_graph()}
    assert seconds["timing-inner"] >= 0.3 and 0.1 <= seconds["timing-outer"] < 0.3, seconds
    outer = next(json.loads(p.read_text()) for p in tmp_path.glob("timing-outer-*.record.json"))
    assert outer["seconds"] >= 0.4, "the whole computation, the inner entry's included"
