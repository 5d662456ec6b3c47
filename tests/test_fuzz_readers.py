"""Every reader of untrusted input, fuzzed (`benchmarks/fuzz_readers.py`): raw
bytes and mutated valid files end in a read or a one-line error naming the
file, within a deadline, with no file changed. CI runs a few examples per
reader; `python -m benchmarks.fuzz_readers` runs thousands. Each test records
how many examples it ran (`user_properties`), and the run's summary lists them."""

import pytest

from benchmarks.fuzz_readers import READERS, check_one, fuzz

# Examples per reader: a model directory costs a load (tens of ms), a text file little.
MODEL_READERS = ("manifest", "tokenizer", "parameters", "checkpoint", "adapter")


def _examples(name: str) -> int:
    return 12 if any(word in name for word in MODEL_READERS) else 40


@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
def test_a_fuzzed_input_is_read_or_refused_in_one_line(reader, record_property):
    n = _examples(reader.name)
    fuzz(reader, n)
    record_property("fuzz", f"{reader.name}: {reader.examples} examples, {reader.examples - reader.refused} read, {reader.refused} refused")
    assert reader.examples >= n


DEEP, DIGITS = b"[" * 3000 + b"]" * 3000, b"1" * 5000  # json.loads: RecursionError; ValueError naming no file

# What fuzzing found, as the smallest inputs Hypothesis gave: each once broke its reader.
FINDINGS = [
    ("labeled JSON Lines", DEEP),
    ("labeled JSON Lines", b'{"text": "hi", "label": ' + DIGITS + b"}\n"),
    ("instruction JSON Lines", b'{"prompt": ' + DEEP + b"}\n"),
    ("texts to classify (JSON Lines)", b'{"text": ' + DIGITS + b"}\n"),
    ("model manifest (foundation)", DEEP),
    ("model manifest (classifier)", b'{"format_version": ' + DIGITS + b"}"),
    ("word tokenizer file", DEEP),
    ("subword tokenizer file", DEEP),
    ("training checkpoint manifest", DEEP),
    ("parameters (msgpack)", b"\x82\xa4bias\x01\x01\x02"),  # {"bias": 1, 1: 2}: keys that cannot be sorted
    ("adapter manifest", b""),
    ("adapter manifest", b"\x80"),
    ("adapter manifest", b"0"),
    ("adapter manifest", b'{"kind": "lora_adapter"}'),
    ("adapter manifest", b'{"kind": "lora_adapter", "params": null, "rank": 2, "alpha": 0, "foundation": "d5643e796bf1a5b2"}'),
    ("adapter manifest", b'{"kind": "lora_adapter", "params": "adapter-0000000000000000.msgpack", "rank": 0, "alpha": 1, "foundation": ""}'),
    ("adapter manifest", b'{"kind": "lora_adapter", "params": "adapter-0000000000000000.msgpack", "rank": 1000000000, "alpha": 1, "foundation": ""}'),
    ("cache record", b"[]"),
    ("cache record", DEEP),
    ("cache record", b'{"code": "0000000000000000", "source": {"function": "_squares"}}'),
]


@pytest.mark.parametrize("name, content", FINDINGS, ids=[f"{name}: {content[:24]!r}" for name, content in FINDINGS])
def test_what_fuzzing_found_is_read_or_refused_in_one_line(name, content):
    check_one(next(r for r in READERS if r.name == name), content)


def _checkpoint_manifest(**training) -> bytes:
    """The fuzzed checkpoint's manifest with some of its training state replaced."""
    import json

    from benchmarks.fuzz_readers import _saved

    manifest = json.loads((_saved("checkpoint") / "learnjax.json").read_text())
    manifest["metadata"]["training"].update(training)
    return json.dumps(manifest, allow_nan=True).encode()


@pytest.mark.parametrize("training", [{"history": 1.5}, {"every": 0}, {"step": float("inf")}, {"settings": []}], ids=str)
def test_a_checkpoint_with_a_malformed_training_state_is_refused_in_one_line(training):
    check_one(next(r for r in READERS if r.name == "training checkpoint manifest"), _checkpoint_manifest(**training))
