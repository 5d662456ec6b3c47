"""The generated mail (`learnjax.data.mail`) has the properties of real mail
that a spam filter's reading depends on."""

import itertools
import re
import statistics

import pytest

from learnjax.data.mail import HAM, SPAM, MailWriter, write_mails


@pytest.fixture(scope="module")
def mails():
    return MailWriter(0, 1).labeled(400)


def _telling_words(writer: MailWriter, label: str) -> set[str]:
    return {word for topic in writer.topics[label] for word in topic} | set(writer.style[label])


def test_lengths_are_like_real_mail(mails):
    lengths = sorted(len(m.text) for m in mails)
    assert 800 <= statistics.median(lengths) <= 1400
    assert lengths[-1] > 4 * statistics.median(lengths)  # a long tail
    assert all("\n" not in m.text for m in mails)  # one message per line


def test_mail_holds_markup_links_quotes_and_signatures(mails):
    text = " ".join(m.text for m in mails)
    for mark in ("<br>", "https://www.", "@", " wrote: > ", "Tel. +", "Subject: "):
        assert mark in text, mark


def test_what_tells_spam_from_ham_comes_after_the_first_lines(mails):
    writer = MailWriter(0, 1)
    for label in (SPAM, HAM):
        telling = _telling_words(writer, label)
        of_label = [m for m in mails if m.label == label]
        assert len(of_label) == 200
        assert not any(telling & set(re.findall(r"\w+", m.text[:250].rsplit(" ", 1)[0])) for m in of_label)  # the subject and first lines (whole words) say nothing
        assert sum(bool(telling & set(re.findall(r"\w+", m.text))) for m in of_label) >= 190  # the rest does


def test_the_same_seed_and_stream_write_the_same_mail(tmp_path):
    first, second = write_mails(tmp_path / "a.txt", 0.05), write_mails(tmp_path / "b.txt", 0.05)
    assert first["messages"] == second["messages"] > 10
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    other = MailWriter(0, 2).labeled(4)
    assert {m.text for m in other}.isdisjoint(m.text for m in MailWriter(0, 1).labeled(4))  # another stream, other messages
    assert MailWriter(0, 2).topics == MailWriter(0, 1).topics  # of the same mail


def test_telling_words_are_real_words_in_runs(mails):
    """Real spam's words are real words, and words of a topic stand together:
    not pseudo-words a subword vocabulary splits into pieces every topic shares."""
    writer = MailWriter(0, 1)
    spam = _telling_words(writer, SPAM)
    assert {"pharmacy", "loan", "lottery", "bitcoin", "password", "replica", "free"} <= spam
    assert {"meeting", "invoice", "flight", "interview", "birthday", "attached"} <= _telling_words(writer, HAM)
    words = [re.findall(r"\w+", m.text) for m in mails if m.label == SPAM]
    pairs = sum(a in spam and b in spam for ws in words for a, b in itertools.pairwise(ws))
    alone = sum(w in spam for ws in words for w in ws)
    assert pairs > 0.3 * alone  # a telling word is often next to another


def test_a_balanced_draw_holds_as_much_spam_as_ham(mails):
    from learnjax.data.mail import balanced_mails

    drawn = balanced_mails(mails, 32, seed=1)
    assert sorted(m.label for m in drawn) == [HAM] * 16 + [SPAM] * 16
    assert drawn == balanced_mails(mails, 32, seed=1) != balanced_mails(mails, 32, seed=2)
