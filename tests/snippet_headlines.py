"""What each snippet prints, checked where its page runs it: a page block that
holds a whole snippet runs it as `python snippets/<name>.py` would (see
`docs_harness.ScriptEvaluator`), and the check named here for its file reads
what it printed. A check fails when the claim the page makes of it is false."""

import re

from learnjax.data import world

DRINKS = {a.thing for a in world.ACTIVITIES if a.verb == world.DRINK}


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def fill_mask_cafe(out: str) -> None:
    """Coffee first, by far, and the two runners-up are drinks too."""
    rows = [line.split() for line in out.splitlines()]
    words, probabilities = [w for w, _ in rows], [percent(p) for _, p in rows]
    assert len(rows) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert words[0] == "coffee" and probabilities[0] > 0.5
    assert set(words[:3]) <= DRINKS


def finetune_spam(out: str) -> None:
    """Fine-tuned beats trained-from-scratch by at least 10 points on the held-out messages."""
    scores = dict(re.findall(r"(\w+): held-out accuracy ([\d.]+%)", out))
    assert set(scores) == {"full", "scratch"}, out
    assert percent(scores["full"]) >= percent(scores["scratch"]) + 0.10, scores


def masking_a_sentence(out: str) -> None:
    """The hidden words are the answers: an answer is the token at its position,
    and only chosen positions change; [CLS] and [PAD] are never chosen."""
    rows = [line.split() for line in out.splitlines()[1:]]
    answered = [row for row in rows if len(row) == 3]
    assert answered, "no word was hidden"
    assert all(token == answer for token, _, answer in answered)
    assert all(token == seen for token, seen, *answer in rows if not answer)
    assert all(row[0] not in ("[CLS]", "[PAD]") for row in answered)


def next_word_a_sentence(out: str) -> None:
    """Each answer is the next token: what the model has read on the next line."""
    rows = [re.match(r"(.*\S)\s+(\S+)$", line).groups() for line in out.splitlines()[1:]]
    read, answers = [r.split() for r, _ in rows], [a for _, a in rows]
    assert read[0] == ["[CLS]"] and answers[-1] == "[END]"
    assert read[-1][1:] == ["today", "i", "went", "to", "the", "café", "and", "drank", "coffee", "."]
    for before, answer, after in zip(read, answers, read[1:]):
        assert after == before + [answer]


def pretraining_loop(out: str) -> None:
    """The loss falls and the model comes to recover hidden words."""
    steps = [(float(loss), percent(acc)) for loss, acc in re.findall(r"loss ([\d.]+)\s+hidden words recovered\s+([\d.]+%)", out)]
    assert len(steps) == 5, out
    (first_loss, first_accuracy), (last_loss, last_accuracy) = steps[0], steps[-1]
    assert last_loss < first_loss / 2, steps
    assert first_accuracy < 0.10 and last_accuracy >= 0.50, steps


def supervised_spam_filter(out: str) -> None:
    """Trained on all 512 labels, the filter gets (nearly) every held-out message right."""
    train = percent(re.search(r"training messages: ([\d.]+%)", out).group(1))
    held_out = percent(re.search(r"held-out messages: +([\d.]+%)", out).group(1))
    assert train == 1.0 and held_out >= 0.95, out


CHECKS = {f.__name__ + ".py": f for f in (fill_mask_cafe, finetune_spam, masking_a_sentence, next_word_a_sentence,
                                             pretraining_loop, supervised_spam_filter)}
