"""Batch work from files: `learnjax classify --input` (plain text, CSV, TSV,
JSON Lines, standard input) streaming CSV, TSV or JSON Lines results, and
`learnjax evaluate` on a labeled test file."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from learnjax.cli import main
from learnjax.evaluation.classifiers import classify_in_batches, scores
from learnjax.training.finetuning import FinetuneSettings, TextClassifier, finetune
from learnjax.training.pretraining import pretrain
from learnjax.training.recipe import PretrainRecipe

CORPUS = ["the cat sat on the mat.", "the dog sat on the rug.", "a bird sang in the tree.", "the bird flew over the cat."] * 20
TEXTS = ["the cat sat on the mat.", "a bird sang, in the tree.", "the dog sat.", "the cat sang in the tree.", "a bird sat on the rug."]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    foundation = pretrain(PretrainRecipe(steps=20, batch_size=8, d_model=16, n_layers=1, d_ff=32), CORPUS)
    classifier = finetune(foundation, ["the cat sat.", "a bird sang.", "the dog sat.", "the bird flew."] * 4,
                          ["cat", "bird", "cat", "bird"] * 4, settings=FinetuneSettings(steps=20, batch_size=8))
    classifier.save(root / "classifier")
    return root / "classifier"


def _csv_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_classify_a_plain_text_file_writes_csv_to_standard_output(classifier_dir, tmp_path, capsys):
    (tmp_path / "inbox.txt").write_text("\n".join(TEXTS[:2]) + "\n\n" + "\n".join(TEXTS[2:]) + "\n", encoding="utf-8")
    assert main(["classify", "--model", str(classifier_dir), "--input", str(tmp_path / "inbox.txt"), "--batch-size", "2"]) == 0
    header, *rows = _csv_rows(capsys.readouterr().out)
    classifier = TextClassifier.load(classifier_dir)
    assert header == ["text", "label", *(f"p({label})" for label in classifier.labels)]
    assert [row[0] for row in rows] == TEXTS  # every text, in order; the blank line skipped
    assert [row[1] for row in rows] == [label for label, _ in classifier.classify(TEXTS)]
    probabilities = np.array([[float(p) for p in row[2:]] for row in rows])
    assert np.allclose(probabilities, classifier.predict_proba(TEXTS), atol=1e-6) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("name, content", [
    ("inbox.csv", "id,text,note\n" + "".join(f'{i},"{t}",x\n' for i, t in enumerate(TEXTS))),
    ("inbox.tsv", "text\tid\n" + "".join(f"{t}\t{i}\n" for i, t in enumerate(TEXTS))),
    ("inbox.jsonl", "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS))),
])
def test_classify_reads_the_text_field_of_tables_and_writes_json_lines(classifier_dir, tmp_path, capsys, name, content):
    (tmp_path / name).write_text(content, encoding="utf-8")
    out = tmp_path / "labels.jsonl"
    assert main(["classify", "--model", str(classifier_dir), "--input", str(tmp_path / name), "--output", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model": str(classifier_dir), "input": str(tmp_path / name), "output": str(out),
                                                    "format": "jsonl", "texts": len(TEXTS)}
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    classifier = TextClassifier.load(classifier_dir)
    assert [r["text"] for r in records] == TEXTS
    assert [r["label"] for r in records] == [label for label, _ in classifier.classify(TEXTS)]
    assert all(set(r["probabilities"]) == set(classifier.labels) for r in records)


def test_classify_reads_standard_input_and_writes_tsv(classifier_dir):
    done = subprocess.run([sys.executable, "-m", "learnjax.cli", "classify", "--model", str(classifier_dir), "--input", "-", "--format", "tsv"],
                          input="\n".join(TEXTS) + "\n", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, *rows = _csv_rows(done.stdout, "\t")
    assert header[:2] == ["text", "label"] and [row[0] for row in rows] == TEXTS


def test_results_are_the_same_whatever_the_batch_size(classifier_dir):
    classifier = TextClassifier.load(classifier_dir)
    texts = TEXTS * 7
    one = np.array([p for _, p in classify_in_batches(classifier, texts, batch_size=len(texts))])
    small = np.array([p for _, p in classify_in_batches(classifier, iter(texts), batch_size=3)])
    assert np.allclose(one, small, atol=1e-6)


def test_an_existing_output_is_replaced_only_when_asked_and_only_by_a_complete_result(classifier_dir, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    out.write_text("earlier results\n", encoding="utf-8")
    (tmp_path / "inbox.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    (tmp_path / "broken.jsonl").write_text(json.dumps({"text": TEXTS[0]}) + "\n" + json.dumps({"body": "no text"}) + "\n", encoding="utf-8")
    args = ["classify", "--model", str(classifier_dir), "--output", str(out)]
    assert main([*args, "--input", str(tmp_path / "inbox.txt")]) == 1
    assert capsys.readouterr().err == f"learnjax classify: error: --output {str(out)!r} exists; replace it with --overwrite, or choose another file\n"
    assert main([*args, "--input", str(tmp_path / "broken.jsonl"), "--overwrite"]) == 1
    assert capsys.readouterr().err == f"learnjax classify: error: {str(tmp_path / 'broken.jsonl')!r} line 2: no 'text' field (found ['body'])\n"
    assert out.read_text(encoding="utf-8") == "earlier results\n"  # nothing lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.jsonl", "inbox.txt", "labels.csv"]  # no temporary file left
    assert main([*args, "--input", str(tmp_path / "inbox.txt"), "--overwrite"]) == 0
    assert len(_csv_rows(out.read_text(encoding="utf-8"))) == len(TEXTS) + 1


def test_evaluate_prints_accuracy_per_class_scores_and_the_confusion_matrix(classifier_dir, tmp_path, capsys):
    labeled = [("the cat sat.", "cat"), ("a bird sang.", "bird"), ("the dog sat on the mat.", "cat"), ("the bird flew over.", "bird"),
               ("a cat sang in the tree.", "cat"), ("the bird sat.", "bird")]
    with open(tmp_path / "test.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *labeled])
    assert main(["evaluate", "--model", str(classifier_dir), "--test", str(tmp_path / "test.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    classifier = TextClassifier.load(classifier_dir)
    predicted = [label for label, _ in classifier.classify([t for t, _ in labeled])]
    truth = [label for _, label in labeled]
    assert report["accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(predicted, truth)]))
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(classifier.labels)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        assert report["per_class"][label] == pytest.approx({"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": support[i]})
    assert report["confusion"] == confusion_matrix(truth, predicted, labels=labels).tolist()
    assert main(["evaluate", "--model", str(classifier_dir), "--test", str(tmp_path / "test.csv")]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"accuracy {report['accuracy']:.1%} on 6 examples") and "confusion matrix (rows: true label, columns: predicted)" in text


def test_scores_of_a_class_never_predicted_are_zero_not_an_error():
    evaluation = scores(np.array([0, 0, 1]), np.array([0, 0, 0]), ("ham", "spam"))
    assert evaluation.per_class["spam"].precision == 0.0 and evaluation.per_class["spam"].recall == 0.0
    assert evaluation.confusion == [[2, 0], [1, 0]] and evaluation.accuracy == pytest.approx(2 / 3)


def test_evaluating_labels_the_model_does_not_have_is_one_line(classifier_dir, tmp_path, capsys):
    (tmp_path / "test.jsonl").write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in [("the cat.", "cat"), ("a dog.", "dog")]))
    assert main(["evaluate", "--model", str(classifier_dir), "--test", str(tmp_path / "test.jsonl")]) == 1
    assert capsys.readouterr().err == "learnjax evaluate: error: the test labels ['dog'] are not among the model's labels ['bird', 'cat']\n"
