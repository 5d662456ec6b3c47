"""Fuzzing every reader of untrusted input: corpus files and folders, labeled
and instruction files, texts to classify, model directories (manifest,
tokenizers of both kinds, parameters), training checkpoints, LoRA adapters and
the cache's records.

    python -m benchmarks.fuzz_readers [--examples 2000] [--only NAME ...]

Each reader gets raw bytes and near-valid inputs: a valid file, saved by
learnjax or written as a user would, then mutated (bytes deleted, inserted,
replaced, repeated; for JSON, a value replaced by another of any type). Every
read must end in success or a one-line ValueError/OSError that names the file
(or its folder), within a deadline, and change no file. `tests/test_fuzz_readers.py`
runs the same readers with few examples each; this script runs many and prints,
per reader, the examples run and how many were read or refused.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Bytes that have tripped text and JSON readers: NUL, undecodable bytes, a BOM,
# line and paragraph separators, quotes, deep nesting, huge numbers.
NASTY = [b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\r", b"\r\n", b"\n\n", b'"', b"\t", b",", b"\\", b"\\u0000",
         "\u2028".encode(), "\x85".encode(), b"[" * 5000, b"{\"a\":" * 3000, b"1" * 5000, b"1e999", b"NaN", b"-0", b"null",
         b"[CLS]", b"[MASK]", b"../", b"/"]
# JSON values that Python's json module parses only to fail later, or refuses with
# something other than a JSONDecodeError: too deep, too many digits, not finite.
RAW_JSON = ["[" * 3000 + "]" * 3000, "1" * 5000, "-" + "9" * 4400, "1e999", "NaN", "-Infinity"]
RAW = "\x00raw\x00"  # stands for one of RAW_JSON until the value is written out

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.sampled_from([10**30, -1, 0, 2**63, "../outside.txt", "/etc/passwd", "params-0000000000000000.msgpack", RAW]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)

@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """`valid` with a few byte-level edits."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "repeat", "truncate"]))
        if edit == "delete":
            del data[at: at + draw(st.integers(1, 16))]
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from(NASTY) | st.binary(min_size=1, max_size=8))
        elif edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "repeat":
            data[at:at] = data[at: at + draw(st.integers(1, 64))] * draw(st.integers(1, 3))
        elif edit == "truncate":
            del data[at:]
    return bytes(data)

def _paths(value, prefix=()) -> Iterator[tuple]:
    """The path (keys and indexes) of every node of a JSON value."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, (*prefix, key))

@st.composite
def json_mutated(draw, valid: bytes) -> bytes:
    """`valid` JSON (one object, or JSON Lines) with one value replaced or removed."""
    try:
        lines = [json.dumps(json.loads(valid))]  # one JSON document, however many lines it spans
    except json.JSONDecodeError:
        lines = valid.decode().splitlines()  # JSON Lines
    line = draw(st.integers(0, len(lines) - 1))
    value = json.loads(lines[line])
    path = draw(st.sampled_from(list(_paths(value))))
    if not path:
        value = draw(st.just(RAW) | JSON_VALUES)
    else:
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(st.just(RAW) | JSON_VALUES)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    lines[line] = json.dumps(value, allow_nan=True).replace(json.dumps(RAW), draw(st.sampled_from(RAW_JSON)), 1)
    return "\n".join(lines).encode() + b"\n"

@dataclasses.dataclass
class Reader:
    """A reader of untrusted input: `build(sandbox)` writes a valid input there
    and returns (what is given to the reader, the file whose bytes are fuzzed);
    `read(given)` reads it as the library or the command line does."""

    name: str
    build: Callable[[Path], tuple[Path, Path]]
    read: Callable[[Path], object]
    is_json: bool = False
    after_write: Callable[[Path, Path], None] | None = None  # e.g. fix a checksum, so the fuzzed file is parsed
    examples: int = 0
    refused: int = 0

# --- Valid inputs ---------------------------------------------------------------

TEXTS = ["Win a free prize now!", "see you at lunch, café at noon?", "naïve über 日本 🙂", "claim your prize today", "the meeting moved to friday"]

def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path

def _corpus_file(sandbox: Path) -> tuple[Path, Path]:
    path = _write(sandbox / "corpus.txt", "\ufeff" + "\n".join(TEXTS) + "\n\n  \nlast line without a newline")
    return path, path

def _corpus_folder(sandbox: Path) -> tuple[Path, Path]:
    folder = sandbox / "corpus"
    _write(folder / "a.txt", "\n".join(TEXTS[:2]) + "\n")
    _write(folder / ".hidden" / "skipped.txt", "never read\n")
    return folder, _write(folder / "notes" / "b.md", "\n".join(TEXTS[2:]) + "\n")

def _table(suffix: str, columns: tuple[str, str], rows: list[tuple[str, str]]) -> Callable[[Path], tuple[Path, Path]]:
    def build(sandbox: Path) -> tuple[Path, Path]:
        path = sandbox / f"examples{suffix}"
        if suffix == ".jsonl":
            text = "".join(json.dumps(dict(zip(columns, row)), ensure_ascii=False) + "\n" for row in rows)
        else:
            import csv
            import io

            out = io.StringIO(newline="")
            csv.writer(out, delimiter="\t" if suffix == ".tsv" else ",").writerows([columns, *rows])
            text = out.getvalue()
        return _write(path, text), path
    return build

LABELED = [(text, "spam" if "prize" in text else "ham") for text in TEXTS] + [('she said "hi",\nthen left', "ham")]
INSTRUCTIONS = [("what day comes after monday?", "tuesday."), ("where does a nurse work?", "at the hospital."),
                ("say, \"hello\"", "hello.")]

_SAVED: dict[str, Path] = {}  # model directories saved once, copied into each example's sandbox

def _saved(kind: str) -> Path:
    """A small saved model directory of `kind`, made once per process."""
    if kind not in _SAVED:
        root = Path(tempfile.mkdtemp(prefix="learnjax-fuzz-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)  # the process's own: gone when it ends
        _SAVED[kind] = _save(kind, root / kind)
    return _SAVED[kind]

def _save(kind: str, directory: Path) -> Path:
    from flax import nnx

    from learnjax import MaskedLanguageModel, Tokenizer, TransformerConfig
    from learnjax.models.lora import add_lora, save_adapter
    from learnjax.models.transformer import EncoderClassifier, Transformer
    from learnjax.storage.checkpoints import TrainingCheckpoints
    from learnjax.storage.progress import History
    from learnjax.training.finetuning import TextClassifier
    from learnjax.training.foundation import Foundation
    from learnjax.training.loops import adamw

    if kind == "subword":
        from learnjax.text.subword import SubwordTokenizer

        tokenizer = SubwordTokenizer.train(TEXTS * 3, vocab_size=80, min_frequency=1)
    else:
        tokenizer = Tokenizer.from_texts(TEXTS)
    config = TransformerConfig(vocab_size=len(tokenizer), max_len=8, d_model=8, n_layers=1, n_heads=2, d_ff=16)
    foundation = Foundation(MaskedLanguageModel(config, rngs=nnx.Rngs(0)), tokenizer, History())
    if kind in ("foundation", "subword"):
        foundation.save(directory)
    elif kind == "classifier":
        model = EncoderClassifier(Transformer(config, rngs=nnx.Rngs(1)), 2, rngs=nnx.Rngs(1))
        TextClassifier(model, tokenizer, ("ham", "spam"), "full", History()).save(directory)
    elif kind == "checkpoint":
        optimizer = nnx.Optimizer(foundation.model, adamw(10, 2), wrt=nnx.Param)
        checkpointing = TrainingCheckpoints(directory, "masked_lm").checkpointing(
            foundation.model, optimizer, tokenizer, {"steps": 10, "seed": 0}, every=2, resume=False)
        checkpointing.save(2, History([2.0, 1.5], [0.1, 0.2]))
    elif kind == "adapter":
        save_adapter(directory, add_lora(foundation.model, rank=2, alpha=4.0), 2, 4.0)
    return directory

def _model_file(kind: str, pattern: str) -> Callable[[Path], tuple[Path, Path]]:
    def build(sandbox: Path) -> tuple[Path, Path]:
        directory = sandbox / "model"
        shutil.copytree(_saved(kind), directory)
        return directory, next(directory.glob(pattern))
    return build

def _fix_checksum(directory: Path, fuzzed: Path) -> None:
    """The manifest's checksum of the fuzzed parameters, so that they are parsed, not refused unread."""
    import hashlib

    from learnjax.storage.checkpoints import MANIFEST

    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["params_sha256"] = hashlib.sha256(fuzzed.read_bytes()).hexdigest()
    (directory / MANIFEST).write_text(json.dumps(manifest))

def _load_foundation(directory: Path):
    from learnjax.training.foundation import Foundation

    return Foundation.load(directory)

def _load_classifier(directory: Path):
    from learnjax.training.finetuning import TextClassifier

    return TextClassifier.load(directory)

def _resume(directory: Path):
    """Resuming a run from the checkpoint, as `pretrain --resume` does: its model, optimizer and step."""
    from flax import nnx

    from learnjax import MaskedLanguageModel, TransformerConfig
    from learnjax.storage.checkpoints import TrainingCheckpoints
    from learnjax.training.loops import adamw

    checkpoints = TrainingCheckpoints(directory, "masked_lm")
    checkpoints.step()
    tokenizer = checkpoints.tokenizer()
    config = TransformerConfig(vocab_size=len(tokenizer), max_len=8, d_model=8, n_layers=1, n_heads=2, d_ff=16)
    model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, adamw(10, 2), wrt=nnx.Param)
    return checkpoints.checkpointing(model, optimizer, tokenizer, {"steps": 10, "seed": 0}, every=None, resume=True)

_FOUNDATION = {}

def _load_adapter(directory: Path):
    from learnjax.models.lora import load_adapter

    if "model" not in _FOUNDATION:
        _FOUNDATION["model"] = _load_foundation(_saved("foundation")).model
    return load_adapter(directory, _FOUNDATION["model"])

def _cache_entry(sandbox: Path) -> tuple[Path, Path]:
    """A cache folder holding one computed entry and its record."""
    from learnjax.storage.cache import RECORD_SUFFIX, cached_json

    root = sandbox / "cache"
    with _cache_at(root):
        cached_json("fuzz", {"n": 3}, _squares)
    return root, next(root.glob(f"*{RECORD_SUFFIX}"))

def _squares(n: int) -> list[int]:
    return [i * i for i in range(n)]

@contextlib.contextmanager
def _cache_at(root: Path) -> Iterator[None]:
    before = os.environ.get("LEARNJAX_CACHE")
    os.environ["LEARNJAX_CACHE"] = str(root)
    try:
        yield
    finally:
        if before is None:
            del os.environ["LEARNJAX_CACHE"]
        else:
            os.environ["LEARNJAX_CACHE"] = before

def _list_cache(root: Path):
    from learnjax.storage.cache import list_entries

    with _cache_at(root):
        return list_entries()

def _labeled(path: Path):
    from learnjax.data.labeled_files import read_labeled

    return read_labeled(path)

def _instructions(path: Path):
    from learnjax.data.labeled_files import example_kind, read_instructions

    example_kind(path)
    return read_instructions(path)

def _texts(path: Path):
    from learnjax.data.labeled_files import iter_texts

    return list(iter_texts(path))

def _corpus(path: Path):
    from learnjax.data.textfiles import TextLines

    return list(TextLines([path]))

READERS = [
    Reader("corpus text file", _corpus_file, _corpus),
    Reader("corpus folder", _corpus_folder, _corpus),
    Reader("labeled CSV", _table(".csv", ("text", "label"), LABELED), _labeled),
    Reader("labeled TSV", _table(".tsv", ("text", "label"), LABELED), _labeled),
    Reader("labeled JSON Lines", _table(".jsonl", ("text", "label"), LABELED), _labeled, is_json=True),
    Reader("instruction CSV", _table(".csv", ("prompt", "response"), INSTRUCTIONS), _instructions),
    Reader("instruction JSON Lines", _table(".jsonl", ("prompt", "response"), INSTRUCTIONS), _instructions, is_json=True),
    Reader("texts to classify (JSON Lines)", _table(".jsonl", ("text", "label"), LABELED), _texts, is_json=True),
    Reader("texts to classify (CSV)", _table(".csv", ("text", "label"), LABELED), _texts),
    Reader("model manifest (foundation)", _model_file("foundation", "learnjax.json"), _load_foundation, is_json=True),
    Reader("model manifest (classifier)", _model_file("classifier", "learnjax.json"), _load_classifier, is_json=True),
    Reader("word tokenizer file", _model_file("foundation", "tokenizer-*.json"), _load_foundation, is_json=True),
    Reader("subword tokenizer file", _model_file("subword", "tokenizer-*.json"), _load_foundation, is_json=True),
    Reader("parameters (msgpack)", _model_file("foundation", "params-*.msgpack"), _load_foundation, after_write=_fix_checksum),
    Reader("training checkpoint manifest", _model_file("checkpoint", "learnjax.json"), _resume, is_json=True),
    Reader("adapter manifest", _model_file("adapter", "adapter.json"), _load_adapter, is_json=True),
    Reader("cache record", _cache_entry, _list_cache, is_json=True),
]

# --- The contract -----------------------------------------------------------------

def _tree(folder: Path) -> dict[str, tuple]:
    """Every file under `folder`, with its size and content hash: what a read must leave as it was."""
    import hashlib

    return {str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}

@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    """A read that hangs fails after `seconds` (where the OS has SIGALRM)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hung(signum, frame):
        raise TimeoutError(f"the read did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

class Hang(AssertionError):
    """A read that did not end within its time."""

def check_one(reader: Reader, content: bytes, hang_after: int = 60) -> None:
    """Builds the reader's input in a fresh sandbox with `content` as its fuzzed
    file, reads it, and checks the outcome (raises AssertionError, or lets the
    reader's unexpected exception through)."""
    with tempfile.TemporaryDirectory(prefix="learnjax-fuzz-") as folder:
        sandbox = Path(folder)
        given_path, fuzzed = reader.build(sandbox)
        fuzzed.write_bytes(content)
        if reader.after_write:
            reader.after_write(given_path, fuzzed)
        (sandbox / "outside.txt").write_text("a file beside the input, never to be touched\n")
        before = _tree(sandbox)
        reader.examples += 1
        try:
            with _alarm(hang_after):
                reader.read(given_path)
        except TimeoutError as e:
            if "did not end within" in str(e):
                raise Hang(f"{reader.name}: {e}") from None
            _check_error(reader, e, given_path)
        except (ValueError, OSError) as e:
            _check_error(reader, e, given_path)
        assert _tree(sandbox) == before, f"{reader.name}: reading changed files"

def _check_error(reader: Reader, error: Exception, given_path: Path) -> None:
    reader.refused += 1
    message = str(error)
    assert message.strip() and "\n" not in message, f"{reader.name}: not a one-line message: {message!r}"
    assert str(given_path) in message, f"{reader.name}: the message does not name {str(given_path)!r}: {message!r}"

def contents(reader: Reader):
    """Raw bytes, or the reader's valid input mutated (bytewise; for JSON, also by value)."""
    with tempfile.TemporaryDirectory() as folder:
        _, fuzzed = reader.build(Path(folder))
        valid = fuzzed.read_bytes()
    options = [st.binary(max_size=512), mutated(valid)]
    if reader.is_json:
        options.append(json_mutated(valid))
    return st.one_of(*options)

def fuzz(reader: Reader, examples: int, deadline_ms: int | None = 10_000) -> Reader:
    """Runs `examples` fuzzed inputs through `reader`; Hypothesis reports the
    smallest input that breaks the contract. Counts this run's examples alone."""
    reader.examples = reader.refused = 0

    @settings(max_examples=examples, deadline=deadline_ms, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(contents(reader))
    def one(content: bytes) -> None:
        check_one(reader, content)

    one()
    return reader

def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per reader")
    parser.add_argument("--only", nargs="*", default=[], help="readers whose name contains one of these words")
    args = parser.parse_args()
    chosen = [r for r in READERS if not args.only or any(word in r.name for word in args.only)]
    print("| reader | examples | read | refused (one line) | seconds | finding |\n|---|---|---|---|---|---|")
    failures, details = 0, []
    for reader in chosen:
        started, finding = time.perf_counter(), "none"
        try:
            fuzz(reader, args.examples, deadline_ms=None)
        except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
            found = list(e.exceptions) if isinstance(e, BaseExceptionGroup) else [e]
            failures += len(found)
            finding = "; ".join(f"{type(f).__name__}: {str(f).splitlines()[0][:120] if str(f) else ''}" for f in found)
            for f in found:  # the smallest input Hypothesis found for each
                details.append(f"{reader.name}: {type(f).__name__}: {str(f)[:300]}\n  " + "\n  ".join(getattr(f, "__notes__", [])))
        print(f"| {reader.name} | {reader.examples} | {reader.examples - reader.refused} | {reader.refused} | "
              f"{time.perf_counter() - started:.1f} | {finding} |", flush=True)
    print("\n".join(["", *details]) if details else "")
    raise SystemExit(1 if failures else 0)

if __name__ == "__main__":
    main()
